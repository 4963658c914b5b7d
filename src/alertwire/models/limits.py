"""The services' limits, written once: the models and the wire (sandbox, ingest) share them.

Every limit the wire server refuses a body for is a constant here, and the
models enforce the same constant at construction, so that an event the
models accept (and ``--queue`` stores) is never refused later by our own
ingest or sandbox. docs/sandbox.md lists them.
"""

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
#: PagerDuty refuses a whole event over 512 KB; our wire applies the same cap to BigPanda.
EVENT_MAX_BYTES: Final = 512 * 1024
#: Objects and arrays nested deeper than this are refused; the event's top-level
#: object is level 1, so ``payload.custom_details`` (level 3) may hold 61 more levels.
#: PagerDuty documents no limit; ours keeps every accepted event re-serialisable
#: (orjson writes at most 254 levels) and any recursive consumer safe.
MAX_NESTING_DEPTH: Final = 64
BIGPANDA_DESCRIPTION_MAX: Final = 2048
BIGPANDA_TAG_VALUE_MAX: Final = 512
BIGPANDA_TAG_VALUES_MAX: Final = 30
#: Room kept for the ``app_key`` the client splices in front of a BigPanda alert:
#: an alert must fit in :data:`EVENT_MAX_BYTES` with an app key this long.
BIGPANDA_APP_KEY_ROOM: Final = 128
#: Ellipsis used when a summary or description is shortened instead of refused.
ELLIPSIS: Final = "…"
