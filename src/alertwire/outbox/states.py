"""The outbox row's states and the moves between them: the contract every store keeps.

This is the one place where a state gets its number. The stores' SQL (DDL,
partial indexes, triggers, queries) is built from the names below with
f-strings, so no state number is written by hand in SQL, and a test reads
the stores' sources to keep it that way (``tests/outbox/test_outbox_states.py``).
The numbers are stored in existing outboxes: they never change.

::

                 claim                       2xx
    PENDING ────────────▶ LEASED ─────────────────────▶ DELIVERED ──purge──▶ (gone)
       ▲                  │  ▲ │
       │   retryable      │  └─┘ lease expired: another relay claims it again
       └──────────────────┘    │
       ▲                       │ 400/401/…, or older than max age
       │      queue retry      ▼
       └──────────────────── DEAD

*Active* rows (PENDING, LEASED) take part in per-key order: the *head* of a
key is its smallest-id active row, and only a head may be claimed. The
stores keep the head flag with triggers: a row entering the active states
(insert, ``queue retry``) becomes the head if nothing earlier of its key is
active; a row leaving them (delivered, dead) hands the head to the next
active row of its key. *Finished* rows (DELIVERED, DEAD) are history.

Every move not in :data:`TRANSITIONS` is refused by the stores' statements
(each ``UPDATE`` names the state it starts from), which the contract tests
check by driving every move through each store.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Final

__all__ = [
    "ACTIVE",
    "FINISHED",
    "SQL_ACTIVE",
    "SQL_DEAD",
    "SQL_DELIVERED",
    "SQL_FINISHED",
    "SQL_LEASED",
    "SQL_PENDING",
    "TRANSITIONS",
    "State",
    "sql_list",
]


class State(enum.IntEnum):
    """The integer ``state`` column: compact, indexable, the same in every store."""

    PENDING = 0
    LEASED = 1
    DELIVERED = 2
    DEAD = 3


#: Rows that take part in per-key order (a key's head is its smallest-id active row).
ACTIVE: Final = frozenset({State.PENDING, State.LEASED})
#: Rows whose delivery is over, one way or the other.
FINISHED: Final = frozenset({State.DELIVERED, State.DEAD})

#: Every allowed move, from -> the states it may become (see the module diagram).
#: LEASED -> LEASED is a takeover of an expired lease by another relay.
TRANSITIONS: Final[Mapping[State, frozenset[State]]] = {
    State.PENDING: frozenset({State.LEASED}),
    State.LEASED: frozenset({State.LEASED, State.PENDING, State.DELIVERED, State.DEAD}),
    State.DELIVERED: frozenset(),
    State.DEAD: frozenset({State.PENDING}),
}


def sql_list(states: Iterable[State]) -> str:
    """The states as an SQL list body, in number order: ``state IN ({sql_list(...)})``."""
    return ", ".join(str(int(s)) for s in sorted(states))


#: SQL literals, for f-strings building the stores' statements.
SQL_PENDING: Final = str(int(State.PENDING))
SQL_LEASED: Final = str(int(State.LEASED))
SQL_DELIVERED: Final = str(int(State.DELIVERED))
SQL_DEAD: Final = str(int(State.DEAD))
SQL_ACTIVE: Final = sql_list(ACTIVE)
SQL_FINISHED: Final = sql_list(FINISHED)
