"""The credentials tests use, defined once: fakes with the shapes of the real ones.

None of these reach a real service (tests send to loopback servers only). A
test that proves a key never shows in output searches for these strings, so
each is distinctive and long enough not to occur by chance.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BIGPANDA_TOKEN",
    "MIXED_CASE_ROUTING_KEY",
    "OTHER_ROUTING_KEY",
    "REST_API_TOKEN",
    "ROUTING_KEY",
]

#: A PagerDuty Events API integration (routing) key: 32 characters.
ROUTING_KEY: Final = "R0123456789abcdef0123456789abcde"
#: A second routing key, for tests of several keys side by side.
OTHER_ROUTING_KEY: Final = "Q0123456789abcdef0123456789abcde"
#: A routing key with upper and lower case (the model and protocol tests keep case).
MIXED_CASE_ROUTING_KEY: Final = "R0uT1nGkEy0123456789abcdefABCDEF"
#: A BigPanda organisation token (Bearer).
BIGPANDA_TOKEN: Final = "bp-token-0123456789-secret"
#: A PagerDuty REST API token: 20 characters, the shape of a real one.
REST_API_TOKEN: Final = "y_NbAkKc66ryYTWUXYEu"
