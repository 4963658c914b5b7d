"""Relays that deliver to themselves, directly or round a ring of relays.

A relay that listens (``Relay(listen=...)``) takes events on its ingest
endpoint and delivers them upstream. Pointed at its own address, or at a
relay that (through others) points back at it, every event goes round for
ever: each hop answers 202, ``delivered`` climbs everywhere and nothing
reaches the service. No per-event storage is needed to catch that:

* every delivery of a listening relay carries its **mark** (a random value per
  process) in :data:`RELAY_LOOP_HEADER`;
* a relay's endpoint answers a marked request with :data:`RELAY_PATH_HEADER`:
  its own mark and the marks it has learned lie downstream of it for that
  destination (PagerDuty or BigPanda);
* a relay learns its downstream marks from the last such answer of its default
  upstream (an answer without the header, as from the service itself, means
  none: the set is replaced, never grown, so a ring that was mended is
  forgotten on the next delivery);
* its endpoint refuses (400, not retryable, so the sender dead-letters the event
  with the reason) a request marked with its own mark or with one of its
  downstream marks: that sender delivers to it while it delivers, through
  others, to that sender.

In a ring of two the second hop is refused; a longer ring converges within two
rounds. At most :data:`MAX_PATH` marks travel, so a ring of more relays than
that is not caught. A chain (relays in front of a relay that delivers to the
service) is never refused: no mark of a sender lies downstream of its receiver.
Marks are not secrets: random, per process, and they authorise nothing.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from .outbox.machine import Destination

__all__ = [
    "MAX_PATH",
    "RELAY_LOOP_HEADER",
    "RELAY_PATH_HEADER",
    "Refusal",
    "RelayLoopGuard",
    "parse_path",
]

#: On every delivery of a listening relay: its mark (docs/ingest.md, "The guarantee").
RELAY_LOOP_HEADER: Final = "X-Alertwire-Relay"
#: On a listening relay's answers to another relay: its mark, then its downstream marks.
RELAY_PATH_HEADER: Final = "X-Alertwire-Relay-Path"
#: The most marks an answer carries (each 32 hex digits): a ring longer than this is missed.
MAX_PATH: Final = 16

Refusal = Literal["itself", "ring"]

_HEX: Final = frozenset("0123456789abcdef")


def _is_mark(text: str) -> bool:
    return len(text) == 32 and _HEX.issuperset(text)


def parse_path(value: str | None) -> frozenset[str]:
    """The well-formed marks of a :data:`RELAY_PATH_HEADER` value, at most :data:`MAX_PATH`
    (anything else in it is ignored: the header comes from whatever answered)."""
    if not value:
        return frozenset()
    marks = [part for part in (p.strip() for p in value.split(",")) if _is_mark(part)]
    return frozenset(marks[:MAX_PATH])


class RelayLoopGuard:
    """One listening relay's mark and what it has learned lies downstream of it.

    Used from the relay's event loop only (its sends and its endpoint share it).
    """

    __slots__ = ("_downstream", "mark")

    def __init__(self, mark: str | None = None) -> None:
        self.mark: str = mark if mark is not None else secrets.token_hex(16)
        self._downstream: dict[str, frozenset[str]] = {}

    def __repr__(self) -> str:
        return f"RelayLoopGuard(mark={self.mark!r}, downstream={self._downstream!r})"

    def learn(self, destination: Destination, path: str | None) -> None:
        """The default upstream for ``destination`` answered 2xx with ``path`` (or none)."""
        self._downstream[destination] = parse_path(path)

    def downstream(self, destination: Destination) -> frozenset[str]:
        return self._downstream.get(destination, frozenset())

    def refusal(self, destination: Destination, sender: str) -> Refusal | None:
        """Why a request marked ``sender`` must be refused, or ``None`` to take it."""
        if sender == self.mark:
            return "itself"
        if sender in self.downstream(destination):
            return "ring"
        return None

    def path(self, destination: Destination) -> str:
        """This relay's answer to a marked request: its mark, then its downstream marks."""
        rest = sorted(self.downstream(destination) - {self.mark})
        return ",".join([self.mark, *rest][:MAX_PATH])
