"""The services' limits, written once (protocols.md)."""

from __future__ import annotations

from typing import Final

ROUTING_KEY_LENGTH: Final = 32
#: Room left in a PagerDuty event's size check for what is spliced in front of the
#: body when it is sent: ``"routing_key":"<32>",`` and, for a keyless trigger,
#: ``"dedup_key":"<32 hex>",`` (96 bytes; the event must still fit EVENT_MAX_BYTES).
#: The models' check and the outbox's check of a stamped event both count it.
ROUTING_KEY_OVERHEAD: Final = (
    len('"routing_key":"",') + ROUTING_KEY_LENGTH + len('"dedup_key":"",') + 32
)
#: A key of about this length is a REST API token pasted where the integration key belongs.
REST_TOKEN_LENGTH: Final = 20
SUMMARY_MAX: Final = 1024
DEDUP_KEY_MAX: Final = 255
#: PagerDuty refuses a whole event over 512 KB.
EVENT_MAX_BYTES: Final = 512 * 1024
BIGPANDA_DESCRIPTION_MAX: Final = 2048
BIGPANDA_TAG_VALUE_MAX: Final = 512
BIGPANDA_TAG_VALUES_MAX: Final = 30
#: Ellipsis used when a summary or description is shortened instead of refused.
ELLIPSIS: Final = "…"
