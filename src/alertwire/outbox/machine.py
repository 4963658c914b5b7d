"""The outbox state machine: the rules, written once, for every store.

A row of the outbox is one delivery (destination kind, credential, complete
wire body). Its life::

    PENDING ──claim──▶ LEASED ──2xx──────────────▶ DELIVERED
       ▲                 │ ──400/401/…, or too old──▶ DEAD ──queue retry──▶ PENDING
       └──retryable──────┘   (not_before = now + RetryPolicy delay)
       └──lease expired: another relay may claim it again

Rules (and why):

* **Per-key order by heads.** Every row has an ``order_key`` (a digest of
  the destination, the credential and the event's own identity: PagerDuty's
  dedup key, BigPanda's incident). Only the *head* of a key may be claimed:
  the oldest row of that key that is neither delivered nor dead. A head that
  is leased, or waiting for ``not_before``, blocks its key and nothing else
  (Procrastinate's ``lock`` semantics). Ids are monotonic, so "oldest" is
  "smallest id". One more case: ``queue retry`` can make an earlier dead
  event the head again while a later event of its key is in flight; the
  head then waits until that lease ends (delivered, failed or expired), so
  a key never has two events in flight.
* **Leases with an owner.** A claim writes ``lease_owner`` and
  ``lease_expires``. An expired lease may be taken over by any relay: a relay
  killed with SIGKILL leaves nothing stuck for longer than one lease. Every
  later write (delivered, reschedule, dead) checks the owner (Graphile
  Worker's owner-checked unlock), so a relay that stalled past its lease
  cannot overwrite what the relay that took over decided. A lease must be
  longer than the HTTP timeout (checked by the relay), so a live relay never
  loses a lease in mid-send.
* **Retries scheduled in the row.** A retryable failure sets ``not_before``
  from the shared :class:`~alertwire.RetryPolicy` (``next_delay``: jittered
  backoff, ``Retry-After`` honoured); nothing sleeps, and the key waits in
  place. Elapsed time counts from enqueue (or from the last ``queue retry``),
  so the policy's ``max_elapsed`` and the outbox's ``max_age`` are one bound.
* **Dead letters.** A non-retryable answer (400, 401/403, an unexpected
  status) is final: the row becomes DEAD with the service's own error text.
  A row older than ``max_age`` (default 24 h) is dead-lettered instead of
  sent: hours-old pages flooding on-call after an outage help nobody
  (Alertmanager #5134). An event that only closes an incident (a resolve) is
  held to ``resolve_max_age`` instead (default 7 days, never less than
  ``max_age``): a late resolve pages nobody, while a dropped one leaves the
  incident open that its trigger opened before the outage.
* **Pacing per route.** A *route* is a destination credential (a PagerDuty
  routing key; a BigPanda token + app key). With pacing on, a route gets at
  most one claim per ``60 / rate`` seconds (PagerDuty allows about 120 events
  per minute per key). A 429 pauses its route until the delay has passed,
  whatever the pacing setting: a rate limit on one key never slows another.

The store (:class:`Store`) holds only SQL and connections; it receives the
concrete values these rules computed (times, owners, states) and applies them
atomically. Times are Unix epoch seconds (floats) in storage and in this
interface: portable across SQLite and PostgreSQL and cheap to compare; the
public API converts to aware datetimes. With several hosts (PostgreSQL) the
relays' clocks must agree to well within a lease (NTP does).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final, Literal, Protocol, TypeAlias, cast, runtime_checkable

from .._config import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_AGE,
    DEFAULT_RATE_LIMIT_PER_MINUTE,
    DEFAULT_RESOLVE_MAX_AGE,
)
from .._errors import ConfigurationError, DeliveryError, OutboxError, RateLimited
from .._record_methods import slot_setters
from .._retry import RetryPolicy
from .._secret import Secret
from .states import SQL_DEAD, SQL_DELIVERED, SQL_LEASED, State

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_MAX_AGE",
    "DEFAULT_RATE_LIMIT_PER_MINUTE",
    "DEFAULT_RESOLVE_MAX_AGE",
    "OUTCOME_NAMES",
    "UNSENT",
    "ClaimTerms",
    "Claimed",
    "DeadEvent",
    "DeadReason",
    "Delivered",
    "Destination",
    "Kind",
    "Machine",
    "MarkDead",
    "NewEvent",
    "Outcome",
    "OutcomeGroup",
    "QueueStats",
    "Reclaims",
    "Release",
    "Reschedule",
    "RowGroup",
    "RowParts",
    "State",
    "Store",
    "new_owner",
    "order_key",
    "order_keys",
    "route_key",
]

logger = logging.getLogger("alertwire.outbox")

#: Retries are bounded by age, not by count: this only keeps the policy's own bound finite.
RELAY_MAX_ATTEMPTS: Final = 1_000_000

#: What a row delivers to; the relay picks the sans-IO protocol module by it.
Kind: TypeAlias = Literal["pagerduty.alert", "pagerduty.change", "bigpanda.alert"]
KINDS: Final[tuple[Kind, ...]] = ("pagerduty.alert", "pagerduty.change", "bigpanda.alert")
#: The service a row (or a CLI line, or an ingest request) goes to: a kind's first part.
#: Spelled here only; the CLI, ingest, the relay's loop guard and the metrics' label import it.
Destination: TypeAlias = Literal["pagerduty", "bigpanda"]


def _part(text: str) -> bytes:
    data = text.encode("utf-8")
    return len(data).to_bytes(4, "big") + data


def _digests(*leading: str) -> Callable[[str], str]:
    """The one recipe of every stored key (route and order keys): SHA-256 over the parts,
    each length-prefixed (4 bytes, big-endian), first 40 hex digits. Fixed-size and
    non-reversible, so credentials never appear in index values or logs; stored keys
    depend on these exact bytes, so they never change (tests/outbox/test_outbox_prepare.py
    pins them).

    Returns the digest of ``(*leading, last)`` for a ``last`` given later: the leading
    parts are hashed once, and each key is a copy of that state (never a tally).
    """
    leading_state = hashlib.sha256(b"".join([_part(p) for p in leading]))

    def digest(last: str) -> str:
        state = leading_state.copy()
        state.update(_part(last))
        return state.hexdigest()[:40]

    return digest


@functools.lru_cache(maxsize=1024)
def _route_digest(family: str, credential: str, scope: str) -> str:
    # Producers send to a handful of credentials over and over: hash each once.
    return _digests(family, credential)(scope)


def route_key(kind: Kind, credential: Secret, scope: str = "") -> str:
    """The pacing unit: one PagerDuty routing key (alerts and changes share PagerDuty's
    per-key limit), or one BigPanda token + app key (``scope``)."""
    return _route_digest(kind.split(".", 1)[0], credential.reveal(), scope)


def order_key(route: str, identity: str) -> str:
    """The ordering unit: a route plus the event's identity (dedup key, incident...)."""
    return order_keys(route)(identity)


@functools.lru_cache(maxsize=1024)
def order_keys(route: str) -> Callable[[str], str]:
    """:func:`order_key` for many identities of one route: the route's part hashed once
    per route (a handful per process, as for :func:`_route_digest`; a route is itself a
    digest, never a credential), not once per event."""
    return _digests(route)


def new_owner() -> str:
    """A lease owner id: host and pid for people reading the table, a random part for
    uniqueness (pids are reused)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def to_datetime(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=timezone.utc)


# ---------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True, init=False)
class NewEvent:
    """One delivery to store: everything the relay needs, nothing it must recompute.

    ``body`` is the complete wire body (for PagerDuty it includes the routing
    key, as PagerDuty expects it); ``credential`` is the routing key or the
    BigPanda token; ``base_url`` is ``None`` to use the relay's configured
    destination.
    """

    kind: Kind
    route: str
    order_key: str
    credential: Secret
    body: bytes = field(repr=False)
    base_url: str | None = None
    dedup_key: str | None = None

    def __init__(  # noqa: PLR0917 - the generated __init__'s signature, positional as before
        self,
        kind: Kind,
        route: str,
        order_key: str,
        credential: Secret,
        body: bytes,
        base_url: str | None = None,
        dedup_key: str | None = None,
    ) -> None:
        # The generated __init__'s assignments, through the slots' own setters: one
        # row per event enqueued (0.44 instead of 0.79 us; _record_methods.slot_setters).
        _set_kind(self, kind)
        _set_route(self, route)
        _set_order_key(self, order_key)
        _set_credential(self, credential)
        _set_body(self, body)
        _set_base_url(self, base_url)
        _set_dedup_key(self, dedup_key)


(
    _set_kind,
    _set_route,
    _set_order_key,
    _set_credential,
    _set_body,
    _set_base_url,
    _set_dedup_key,
) = slot_setters(NewEvent)

#: What is a row's own among rows with one destination (:class:`RowGroup`): its kind
#: (the group's), order key, dedup key and body.
RowParts: TypeAlias = tuple[Kind, str, str | None, bytes]


@dataclass(frozen=True, slots=True)
class RowGroup:
    """New rows with one destination (kind, route, credential, base URL), each given by
    its own parts only: a batch of alerts to one routing key (``Outbox.enqueue_many``).

    :meth:`events` says the same rows as :class:`NewEvent`\\ s. Why a group and not
    those: a store binds the shared values once per statement anyway (the SQLite
    store's shared ``INSERT``), and a :class:`NewEvent` per event (seven slot
    setters) plus the store comparing every row's destination with the first's
    cost about 7,000 instructions of an event's 124,000 in the benchmark's
    100-event ``enqueue_many`` (callgrind, user space; docs/cli.md, ``send
    --queue``). A store with ``enqueue_group`` takes the group as it is; the others
    get :meth:`events`.
    """

    kind: Kind
    route: str
    credential: Secret
    base_url: str | None
    parts: Sequence[RowParts]

    def events(self) -> list[NewEvent]:
        """The same rows, one :class:`NewEvent` each, in order."""
        kind, route, credential, url = self.kind, self.route, self.credential, self.base_url
        return [
            NewEvent(kind, route, key, credential, body, url, d) for _, key, d, body in self.parts
        ]


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row this relay now holds a lease on and must deliver."""

    id: int
    kind: Kind
    route: str
    order_key: str
    credential: Secret
    body: bytes = field(repr=False)
    base_url: str | None
    dedup_key: str | None
    created_at: float
    age_from: float
    attempts: int
    """Tries so far, this one included."""

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Claimed:
        """A claimed event from a row both stores return as ``id, kind, route,
        order_key, credential, body, base_url, dedup_key, created_at, age_from,
        attempts`` (the claim's ``RETURNING`` list), so the mapping is written once."""
        return cls(
            id=row[0],
            kind=cast(Kind, row[1]),
            route=row[2],
            order_key=row[3],
            credential=Secret(row[4]),
            body=bytes(row[5]),
            base_url=row[6],
            dedup_key=row[7],
            created_at=row[8],
            age_from=row[9],
            attempts=row[10],
        )


@dataclass(frozen=True, slots=True)
class Delivered:
    id: int
    at: float
    http_status: int


@dataclass(frozen=True, slots=True)
class Reschedule:
    """Back to PENDING until ``not_before``; ``pause_route_until`` for a 429."""

    id: int
    not_before: float
    error: str
    http_status: int | None
    pause_route_until: float | None = None


#: Why an event was dead-lettered: the ``reason`` label of the relay's dead-letter
#: counter and of its WARNING lines (docs/relay.md lists them).
DeadReason: TypeAlias = Literal["rejected", "max_age", "attempts"]


@dataclass(frozen=True, slots=True)
class MarkDead:
    """Dead-letter a leased row. ``sent=False``: it expired before this claim's send, so
    the try the claim counted did not happen and the store takes it back (``queue dead``
    then shows the tries that were really made)."""

    id: int
    at: float
    error: str
    http_status: int | None
    body: str = ""
    reason: DeadReason = "rejected"
    sent: bool = True

    @property
    def unsent(self) -> int:
        """``1`` when the claim's count of tries must be taken back (the stores' SQL)."""
        return 0 if self.sent else 1


@dataclass(frozen=True, slots=True)
class Release:
    """Give a leased row back unsent: PENDING again at once, the claim's count of tries
    taken back, nothing else changed (a relay that claimed ahead of its free send slots
    and stops before sending it; the row is due now, for any relay)."""

    id: int


Outcome: TypeAlias = Delivered | Reschedule | MarkDead | Release


@dataclass(frozen=True, slots=True)
class ClaimTerms:
    """One claim as the machine decides it; a store only runs it (:meth:`Store.claim`).

    Who leases (``owner``), at what time (``now``), until when
    (``lease_until``), how many heads at most (``limit``) and the pacing
    (``pace_interval`` seconds between two claims on one route, 0: off).
    """

    owner: str
    now: float
    lease_until: float
    limit: int
    pace_interval: float

    @property
    def paced(self) -> bool:
        """At most one head per route, and each route claimed waits ``pace_interval``."""
        return self.pace_interval > 0

    @property
    def next_allowed(self) -> float:
        """When a route claimed now (paced) may be claimed again."""
        return self.now + self.pace_interval

    @property
    def window(self) -> int:
        """How many of the oldest due heads an unpaced claim looks at before it reads
        route by route: enough to fill ``limit`` past heads of paused routes, and a
        bounded index range read whatever the backlog."""
        return max(self.limit * 4, 64)


#: The names of :func:`outcome_params` each kind of outcome writes (besides ``owner``),
#: in the order a store binds them: both stores record a group at a time, one
#: statement for the batch's outcomes of a kind (:func:`outcome_groups`; a delivery
#: or a retry that takes tries back is in a group of its kind that adds :data:`UNSENT`).
OUTCOME_NAMES: Final[dict[type[Outcome], tuple[str, ...]]] = {
    Delivered: ("id", "state", "at", "status"),
    Reschedule: ("id", "state", "not_before", "error", "status"),
    MarkDead: ("id", "state", "at", "error", "status", "body", "unsent"),
    Release: ("id", "state", "unsent"),
}

#: The name of the tries a statement takes back from the row's ``attempts``: the tries
#: its count holds that no send made. A statement that binds it (every one for a
#: :class:`MarkDead` or a :class:`Release`; for the others, a group of outcomes that
#: take tries back: :func:`outcome_groups`) sets ``attempts = attempts - unsent``,
#: never below 0; one that does not leaves ``attempts`` as the claim counted it.
UNSENT: Final = "unsent"

#: Per event id, the tries its outcome takes back for claims that sent nothing
#: (``reclaims`` of :meth:`Machine.cycle`); ``None``, nearly always: none.
Reclaims: TypeAlias = Mapping[int, int] | None

#: Outcomes of one kind that one owner-checked statement records: the kind, the names
#: each row binds (in order; the statement takes tries back when :data:`UNSENT` is
#: among them), and the rows' :func:`outcome_params`.
OutcomeGroup: TypeAlias = tuple[type[Outcome], tuple[str, ...], list[dict[str, Any]]]


def outcome_groups(
    outcomes: Sequence[Outcome], owner: str, reclaims: Reclaims = None
) -> list[OutcomeGroup]:
    """The batch's :func:`outcome_params`, a group per kind, each in the batch's order,
    for a store that records a group at a time (both do).

    ``reclaims``: for an event id, how many times the relay recording its outcome
    claimed it again while its send was in flight (see :meth:`Machine.cycle`): each
    such claim counted a try no send made, and its outcome takes them back (adds
    them to :data:`UNSENT`). Rare: only then do a delivery and a retry bind it, in
    a group of their own; every other batch is grouped as if it were not there.

    What such a write would get wrong is refused here, before anything is written:
    two outcomes for one event (both would be reported recorded, and which one
    the row keeps would depend on the order of the kinds, not of the batch) and an
    outcome of a type no statement records (it would be skipped, reported as a lost
    lease). The relay sends neither; a caller of ``Store.settle`` might.
    """
    grouped: dict[type[Outcome], list[dict[str, Any]]] = {}
    seen: set[int] = set()
    for outcome in outcomes:
        kind = type(outcome)
        if kind not in OUTCOME_NAMES:
            raise TypeError(f"cannot record an outcome of type {kind.__name__}")
        if outcome.id in seen:
            raise ValueError(f"two outcomes for event {outcome.id} in one batch")
        seen.add(outcome.id)
        grouped.setdefault(kind, []).append(outcome_params(outcome, owner))
    groups = [(kind, OUTCOME_NAMES[kind], rows) for kind, rows in grouped.items()]
    return _taking_back(groups, reclaims) if reclaims else groups


def _taking_back(groups: list[OutcomeGroup], reclaims: Mapping[int, int]) -> list[OutcomeGroup]:
    """``groups`` with the tries ``reclaims`` counts taken back (:func:`outcome_groups`):
    a kind that binds :data:`UNSENT` anyway adds them to it; a delivery or a retry
    that takes any back goes to a group of its kind that binds it (0 never)."""
    taken: list[OutcomeGroup] = []
    for kind, names, rows in groups:
        plain: list[dict[str, Any]] = []
        back: list[dict[str, Any]] = []
        for values in rows:
            if times := reclaims.get(values["id"], 0):
                values[UNSENT] = values.get(UNSENT, 0) + times
                back.append(values)
            else:
                plain.append(values)
        if UNSENT in names:
            taken.append((kind, names, rows))
            continue
        taken += [(kind, n, r) for n, r in ((names, plain), ((*names, UNSENT), back)) if r]
    return taken


def outcome_params(outcome: Outcome, owner: str) -> dict[str, Any]:
    """The named parameters of the owner-checked statement that records ``outcome``.

    Both stores write an outcome with the same names (``state``, ``at``,
    ``not_before``, ``error``, ``status``, ``body``, ``unsent``, ``id``, ``owner``;
    a :class:`Release` writes only ``state``, and ``unsent`` for its claim's try);
    only their SQL differs, so the values are decided here once. Both record
    outcomes a group at a time (:func:`outcome_groups`), one statement per group
    for the whole batch.
    """
    values: dict[str, Any]
    if isinstance(outcome, Delivered):
        values = {"state": int(State.DELIVERED), "at": outcome.at, "status": outcome.http_status}
    elif isinstance(outcome, Reschedule):
        values = {
            "state": int(State.PENDING),
            "not_before": outcome.not_before,
            "error": outcome.error,
            "status": outcome.http_status,
        }
    elif isinstance(outcome, MarkDead):
        values = {
            "state": int(State.DEAD),
            "at": outcome.at,
            "error": outcome.error,
            "status": outcome.http_status,
            "body": outcome.body,
            "unsent": outcome.unsent,
        }
    elif isinstance(outcome, Release):
        values = {"state": int(State.PENDING), "unsent": 1}  # its claim's try: not made
    else:  # pragma: no cover - the Outcome union is closed
        raise TypeError(f"unknown outcome {type(outcome).__name__}")
    values.update(id=outcome.id, owner=owner)
    return values


@dataclass(frozen=True, slots=True)
class DeadEvent:
    """A dead letter as ``queue dead`` lists it (no credential).

    ``superseded``: a later event of its key (same dedup key and routing key, or
    the same BigPanda alert) was delivered after it died, or is being sent now
    (leased: it may reach the service any moment, and the retried one would only
    go after it). Sending it would undo that later event, the way a trigger sent
    after its resolve re-opens the incident, so :meth:`Store.retry_dead` leaves
    it dead unless called with ``superseded=True``.
    """

    id: int
    kind: Kind
    dedup_key: str | None
    created_at: datetime
    dead_at: datetime | None
    attempts: int
    error: str
    http_status: int | None
    superseded: bool = False

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> DeadEvent:
        """A dead letter from a row selected by both stores as ``id, kind, dedup_key,
        created_at, finished_at, attempts, last_error, http_status, superseded`` (times
        in epoch seconds, as stored)."""
        created = to_datetime(row[3])
        assert created is not None
        return cls(
            id=row[0],
            kind=row[1],
            dedup_key=row[2],
            created_at=created,
            dead_at=to_datetime(row[4]),
            attempts=row[5],
            error=row[6] or "",
            http_status=row[7],
            superseded=bool(row[8]),
        )


def superseded_dead_sql(table: str) -> str:
    """The ids of ``table``'s superseded dead letters (:attr:`DeadEvent.superseded`), as a
    query without parameters that SQLite and PostgreSQL both take as it is.

    One pass over the delivered and leased rows (the last such id per key), joined to
    the dead ones: ``queue dead`` and ``queue retry`` are run by people, and no index
    keeps finished rows by key (none is worth writing at every delivery for them).

    ``+d.id``, not ``d.id``: the unary plus keeps SQLite from taking ``l.last >
    d.id`` for a range of the primary key. Given that range, its planner could
    (and for ``queue retry ID``, whose statement also says ``id = ?``, did) read
    every row below each key's last delivery, once per key: some 10^9 rows for
    100,000 delivered rows over 20,000 keys, minutes with the write lock held,
    while every producer's enqueue waited out its busy timeout (NOT stored).
    PostgreSQL reads ``+`` as the number itself.
    """
    return (
        f"SELECT d.id FROM {table} d JOIN (SELECT order_key, max(id) AS last FROM {table}"  # noqa: S608 - a table name and state numbers from this package only
        f" WHERE state IN ({SQL_DELIVERED}, {SQL_LEASED}) GROUP BY order_key) l"
        " ON l.order_key = d.order_key"
        f" WHERE d.state = {SQL_DEAD} AND l.last > +d.id"
    )


@dataclass(frozen=True, slots=True)
class QueueStats:
    pending: int
    leased: int
    delivered: int
    dead: int
    oldest_pending_at: datetime | None

    @classmethod
    def from_counts(cls, counts: Mapping[State, int], oldest_open: float | None) -> QueueStats:
        """The stats from a count per state and the oldest open event's ``created_at``
        (epoch seconds, as stored): how each store counts differs, the result does not."""
        return cls(
            pending=counts[State.PENDING],
            leased=counts[State.LEASED],
            delivered=counts[State.DELIVERED],
            dead=counts[State.DEAD],
            oldest_pending_at=to_datetime(oldest_open),
        )

    def oldest_pending_age(self, now: datetime | None = None) -> float | None:
        """Seconds the oldest undelivered event has waited (``None`` when none waits)."""
        if self.oldest_pending_at is None:
            return None
        now = now or datetime.now(timezone.utc)
        return max((now - self.oldest_pending_at).total_seconds(), 0.0)

    def as_dict(self) -> dict[str, object]:
        age = self.oldest_pending_age()
        return {
            "pending": self.pending,
            "leased": self.leased,
            "delivered": self.delivered,
            "dead": self.dead,
            "oldest_pending_at": (
                None if self.oldest_pending_at is None else self.oldest_pending_at.isoformat()
            ),
            "oldest_pending_age_seconds": None if age is None else round(age, 3),
        }


# ---------------------------------------------------------------------------- the store


@runtime_checkable
class Store(Protocol):
    """SQL and connections only; every decision arrives as a value.

    Each method is one transaction. Implementations must make :meth:`claim`
    atomic against other relays (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL:
    ``FOR UPDATE SKIP LOCKED`` plus a unique index on in-flight keys), and
    must raise :class:`~alertwire.OutboxError` (never return quietly) when an
    enqueue was not durably stored.
    """

    #: A display form of where the store lives, without credentials.
    location: str

    def enqueue_many(self, events: Sequence[NewEvent], *, now: float) -> list[int]:
        """Insert all rows in ONE transaction (group commit); ids in input order."""
        ...

    def claim(self, terms: ClaimTerms) -> list[Claimed]:
        """Lease up to ``terms.limit`` claimable heads to ``terms.owner`` until
        ``terms.lease_until``, oldest first, and return them.

        Claimable at ``now`` (``terms.now``): the smallest id of its ``order_key``
        among PENDING/LEASED rows, and either PENDING with ``not_before <= now``
        or LEASED with ``lease_expires <= now``; no other row of its key LEASED
        with ``lease_expires > now``; its route not paused (``next_allowed > now``).
        When ``terms.paced``: at most one row per route, and the route's
        ``next_allowed`` becomes ``terms.next_allowed`` in the same transaction.
        Each claimed row gets ``attempts + 1`` (a try that a relay which only renewed
        its own lease takes back with the outcome: ``reclaims`` of :meth:`Machine.cycle`).
        """
        ...

    def settle(
        self, outcomes: Sequence[Outcome], *, owner: str, reclaims: Reclaims = None
    ) -> list[bool]:
        """Apply outcomes in one transaction, each only if ``owner`` still holds the lease.

        Returns, per outcome, whether it was applied (``False``: the lease was lost).
        A :class:`Reschedule` with ``pause_route_until`` also pushes the route's
        ``next_allowed`` to at least that time; a :class:`Release` makes the row
        PENDING and changes nothing else. A group of :func:`outcome_groups` (given
        ``reclaims``) that binds :data:`UNSENT` also takes that many from ``attempts``.
        """
        ...

    def settle_and_claim(
        self,
        outcomes: Sequence[Outcome],
        terms: ClaimTerms,
        *,
        reclaims: Reclaims = None,
    ) -> tuple[list[bool], list[Claimed]]:
        """:meth:`settle` (owned by ``terms.owner``) then :meth:`claim` in ONE
        transaction: the relay's cycle.

        Returns what each would. One transaction instead of two is one commit
        (on SQLite one fsync) per relay cycle, which bounds the relay's throughput.
        """
        ...

    def next_due(self, *, now: float) -> float | None:
        """The earliest time something may become claimable (``None``: nothing waits)."""
        ...

    def stats(self) -> QueueStats: ...

    def open_counts(self, *, per_route: bool) -> tuple[int, dict[str, int]]:
        """Events not yet delivered or dead (PENDING + LEASED): the total, read from the
        counters (cheap), and with ``per_route`` also per route (one pass over the open
        rows: callers cache it; ``{}`` without ``per_route``)."""
        ...

    def list_dead(self, *, limit: int | None = None) -> list[DeadEvent]: ...

    def retry_dead(self, ids: Sequence[int] | None, *, now: float, superseded: bool = False) -> int:
        """DEAD -> PENDING (``None``: all), attempts reset, age counted from ``now``;
        returns how many moved.

        A superseded dead letter (:attr:`DeadEvent.superseded`: a later event of its
        key is DELIVERED, or LEASED: being sent) stays dead unless ``superseded``:
        delivered after that later event, it would undo it (a trigger after its
        resolve re-opens a resolved incident). A later event still pending has not
        reached the service, and the retried one goes before it. Once delivered
        rows are purged, nothing is known to supersede a dead letter any more.
        """
        ...

    def purge_delivered(self, *, before: float) -> int: ...

    def migrate(self) -> int:
        """Create or upgrade the schema now (idempotent); returns the schema version."""
        ...

    def check_writable(self) -> None:
        """Prove the store takes a write now (``/healthz``), changing no row; raise
        :class:`~alertwire.OutboxError` when it cannot (a full disk, a read-only file)."""
        ...

    def is_passing(self, exc: OutboxError) -> bool:
        """Whether ``exc`` (raised by this store) should clear by itself: a lost
        connection, a full disk, a lock. ``exc.retryable``, or a cause this store
        knows to be passing that a path raised without the flag: the relay waits
        such a failure out even before the store ever answered (docs/relay.md).
        """
        ...

    def explain(self, exc: BaseException) -> str:
        """What went wrong with this store, in words for a client or a health check.

        Never a path, a password or a row: the answer goes to whoever sent an
        event (a 503's reason). :func:`public_reason` is the fallback when the
        store has nothing more precise to say.
        """
        ...

    def close(self) -> None: ...


def public_reason(exc: BaseException) -> str:
    """A store failure named by its kind and whether it passes, never by its message
    (which names the file or the server): the words when a store knows no better."""
    if isinstance(exc, OutboxError):
        return "the outbox is unavailable for now" if exc.retryable else "the outbox is unusable"
    return type(exc).__name__


# ---------------------------------------------------------------------------- the rules


def _resolves(row: Claimed) -> bool:
    """Whether ``row`` only closes an incident (read from its stored body: the
    wire format's own test, in :mod:`alertwire.protocol`)."""
    if row.kind == "pagerduty.alert":
        from ..protocol import pagerduty

        return pagerduty.resolves(row.body)
    if row.kind == "bigpanda.alert":
        from ..protocol import bigpanda

        return bigpanda.resolves(row.body)
    return False


@dataclass(frozen=True, slots=True)
class Machine:
    """The relay's decisions, applied to whatever :class:`Store` it is given.

    ``retry`` defaults to a policy bounded by ``max_age`` rather than by
    attempt count: an alert worth sending is worth trying for as long as it
    is still news. A resolve stays news longer: it is held to
    ``max(max_age, resolve_max_age)``, both for being sent at all and for its
    retries (the policy's ``max_elapsed`` is raised to that for it, unless it
    was shorter than ``max_age``: a shorter budget is the caller's). Whether
    a row is a resolve is read from its body only once it is past
    ``max_age``, so delivery never parses a body.
    """

    store: Store
    owner: str = field(default_factory=new_owner)
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    max_age: float = DEFAULT_MAX_AGE
    resolve_max_age: float = DEFAULT_RESOLVE_MAX_AGE
    rate_limit_per_minute: float = DEFAULT_RATE_LIMIT_PER_MINUTE
    retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(
            max_attempts=RELAY_MAX_ATTEMPTS, max_backoff=300.0, max_elapsed=DEFAULT_MAX_AGE
        )
    )
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        if self.lease_seconds <= 0:
            raise ConfigurationError("lease_seconds must be positive")
        if self.max_age <= 0:
            raise ConfigurationError("max_age must be positive")
        if self.resolve_max_age <= 0:
            raise ConfigurationError("resolve_max_age must be positive")
        if self.rate_limit_per_minute < 0:
            raise ConfigurationError("rate_limit_per_minute must be 0 (off) or positive")

    @property
    def pace_interval(self) -> float:
        """Seconds between two claims on one route (0: pacing off)."""
        return 0.0 if self.rate_limit_per_minute == 0 else 60.0 / self.rate_limit_per_minute

    def claim(self, limit: int) -> tuple[list[Claimed], list[tuple[Claimed, MarkDead]]]:
        """Lease up to ``limit`` heads; those older than ``max_age`` are dead-lettered
        at once (returned second) instead of being handed out for sending."""
        _, fresh, expired = self.cycle((), limit)
        return fresh, expired

    def cycle(
        self,
        outcomes: Sequence[Outcome],
        limit: int,
        *,
        held: Container[int] = frozenset(),
        reclaims: Reclaims = None,
    ) -> tuple[list[bool], list[Claimed], list[tuple[Claimed, MarkDead]]]:
        """Record ``outcomes``, then claim up to ``limit`` heads: the relay's one step.

        With outcomes to record, both happen in one transaction
        (:meth:`Store.settle_and_claim`: on SQLite one fsync per cycle, not two).
        Returns (applied per outcome, rows to send, rows dead of old age).
        ``held``: ids the caller is still sending (their leases lapsed, so the claim may
        return them again); such a row is returned to send, never dead-lettered of old
        age here, since the send in flight may be delivering it (the caller does not
        send it twice: see ``alertwire.relay._loop``).

        ``reclaims``: how many times the caller claimed an event of ``outcomes`` again
        while it held it, by id (ids not claimed again need no entry). Each such claim
        counted a try that no send made; recording the outcome takes them back, in
        the same owner-checked statement (a row another relay holds now is not
        touched), so the row's ``attempts`` is the tries made, and the next retry's
        backoff and a custom ``RetryPolicy.max_attempts`` count only those. The
        outcome itself was decided on the count of the claim that sent (right).
        Taken back, not the sending claim's count written back: a try another relay
        made meanwhile (it took the lapsed lease over, failed, and the caller's claim
        took the row back) stays counted. The stored count never goes below 0 (more
        to take back than counted can only come of several relays and a
        ``queue retry`` within one send). See docs/relay.md (leases).
        """
        now = self.clock()
        terms = ClaimTerms(
            owner=self.owner,
            now=now,
            lease_until=now + self.lease_seconds,
            limit=limit,
            pace_interval=self.pace_interval,
        )
        rows: list[Claimed]
        if limit <= 0:
            applied, rows = self.settle(outcomes, reclaims=reclaims), []
        elif outcomes:
            applied, rows = self.store.settle_and_claim(outcomes, terms, reclaims=reclaims)
            self._warn_lost(outcomes, applied)
        else:
            applied = self.settle(outcomes)
            rows = self.store.claim(terms)
        fresh: list[Claimed] = []
        expired: list[tuple[Claimed, MarkDead]] = []
        for row in rows:
            age = now - row.age_from
            if age > self.max_age and row.id not in held and age > (bound := self._late_bound(row)):
                expired.append((row, self._expired(row, now, age, bound)))
            else:
                fresh.append(row)
        if expired:
            self.store.settle([dead for _, dead in expired], owner=self.owner)
        return applied, fresh, expired

    @property
    def _resolve_bound(self) -> float:
        """The age a resolve is held to: never shorter than everything else's."""
        return max(self.max_age, self.resolve_max_age)

    def _late_bound(self, row: Claimed) -> float:
        """``row``'s max age, asked once it is past ``max_age`` (the body is read
        only then): a resolve's own, longer bound, else ``max_age``."""
        if self._resolve_bound > self.max_age and _resolves(row):
            return self._resolve_bound
        return self.max_age

    def _expired(self, row: Claimed, now: float, age: float, bound: float) -> MarkDead:
        """Too old to send (past ``bound``, its :meth:`_late_bound`). ``row.attempts``
        counts this claim, which sends nothing: the tries made are one fewer, and an
        event never tried says so in words."""
        tries = row.attempts - 1
        limit = f"max age {bound:g} s" if bound == self.max_age else f"resolve max age {bound:g} s"
        if tries == 0:
            text = f"expired before delivery: not tried within {limit} (queued {age:.0f} s ago)"
        else:
            text = (
                f"not delivered within {limit}"
                f" (queued {age:.0f} s ago, {tries} tr{'y' if tries == 1 else 'ies'})"
            )
        return MarkDead(row.id, now, text, None, reason="max_age", sent=False)

    def release(self, row: Claimed) -> Release:
        """``row`` was claimed but will not be sent by this relay (it is stopping)."""
        return Release(row.id)

    def delivered(self, row: Claimed, http_status: int) -> Delivered:
        return Delivered(row.id, self.clock(), http_status)

    def failed(self, row: Claimed, error: DeliveryError) -> Reschedule | MarkDead:
        """Retry later, or dead-letter: the same policy the clients use, without sleeping."""
        now = self.clock()
        elapsed = now - row.age_from
        wait = self.retry.next_delay(error, row.attempts, elapsed) if error.retryable else None
        bound = self.max_age
        if (
            error.retryable
            and (wait is None or elapsed + wait > bound)
            and self.retry.max_elapsed >= self.max_age
        ):
            # Past max_age at the next try: a resolve is held to its own, longer bound.
            # Only when the policy's time budget is the age's: a caller who gave a
            # shorter one asked to give up sooner, resolves included.
            bound = self._late_bound(row)
            if bound > self.max_age:
                policy = dataclasses.replace(self.retry, max_elapsed=bound)
                wait = policy.next_delay(error, row.attempts, elapsed)
        if wait is None or elapsed + (wait or 0.0) > bound:
            if not error.retryable:
                return MarkDead(row.id, now, error.message, error.http_status, error.body)
            text = f"gave up after {row.attempts} tries over {elapsed:.0f} s: {error.message}"
            # Out of tries (a custom RetryPolicy's max_attempts), else out of time.
            why: DeadReason = "attempts" if row.attempts >= self.retry.max_attempts else "max_age"
            return MarkDead(row.id, now, text, error.http_status, error.body, reason=why)
        pause = now + wait if isinstance(error, RateLimited) else None
        return Reschedule(row.id, now + wait, error.message, error.http_status, pause)

    def settle(self, outcomes: Sequence[Outcome], *, reclaims: Reclaims = None) -> list[bool]:
        """Record ``outcomes`` (``reclaims``: see :meth:`cycle`)."""
        if not outcomes:
            return []
        applied = self.store.settle(outcomes, owner=self.owner, reclaims=reclaims)
        self._warn_lost(outcomes, applied)
        return applied

    @staticmethod
    def _warn_lost(outcomes: Sequence[Outcome], applied: Sequence[bool]) -> None:
        for outcome, ok in zip(outcomes, applied, strict=True):
            if not ok:
                logger.warning(
                    "lease on event %d was lost before its outcome was recorded"
                    " (another relay took it over; it may be delivered twice)",
                    outcome.id,
                )

    def next_wait(self, *, ceiling: float) -> float:
        """Seconds until something may be claimable, at most ``ceiling``."""
        now = self.clock()
        due = self.store.next_due(now=now)
        if due is None:
            return ceiling
        return min(max(due - now, 0.0), ceiling)
