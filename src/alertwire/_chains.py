"""Per-key chains: the events of one key are sent in input order, one at a time, and
after a failure the rest of that key are held back (:class:`~alertwire.HeldBack`).

Why: sent side by side, a trigger and its resolve could reach the service in
either order, and a resolve that comes first is dropped (nothing is open yet),
leaving open the incident its trigger then opens, with every outcome a
success; and a resolve sent after its trigger failed, followed by a re-send of
the failed trigger (which an outcome per event invites), opens an incident
that was over. Different keys are independent, so they go at once.

Three senders follow the rule: ``PagerDuty.send_many``, ``AsyncPagerDuty.send_many``
and the CLI's sending of many lines (``alertwire send``). They differ in what
makes a key (the library chains by dedup key; the CLI chains BigPanda alerts too,
by the properties that name their entity: ``cli._deliver.order_key``) and in
what they keep besides outcomes (the CLI marks what started, for Ctrl-C), so the
key and the bookkeeping are the callers'; the grouping (:func:`chains`) and the
walk with its holding back (:func:`send_chain`) are here. Every sender has its
whole input before the first send (``send_many`` takes the batch; ``alertwire
send`` reads and validates every line first), so grouping up front takes nothing
from streaming. (``send --queue`` streams lines into the outbox, which keeps each
key's order itself, by its ``order_key``: no chains there.)

The async client walks its chains in its own loop, the same rule awaited
(``AsyncPagerDuty.send_many``). :func:`send_chain` cannot ``await``; an async
twin here would be this walk written a second time all the same, and called
through callbacks it would add a call or a coroutine frame per event to a path
whose per-event cost was cut to the microsecond (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

from ._errors import DeliveryError

if TYPE_CHECKING:
    from threading import Event

__all__ = ["chains", "send_chain"]

T = TypeVar("T")
R = TypeVar("R")


def chains(items: Iterable[T], key: Callable[[T], Hashable | None]) -> list[list[int]]:
    """The items' indices, one list per key in input order, the lists in order of the
    key's first item. An item whose key is ``None`` (a change event; a trigger whose
    dedup key is assigned as it is sent) is a chain of its own."""
    found: dict[Hashable, list[int]] = {}
    for index, item in enumerate(items):
        item_key = key(item)
        found.setdefault(index if item_key is None else item_key, []).append(index)
    return list(found.values())


def send_chain(
    chain: Sequence[int],
    send: Callable[[int], R | None],
    record: Callable[[int, R], None],
    *,
    hold: Callable[[int, DeliveryError], R],
    stop: Event | None = None,
) -> None:
    """Walk one chain in order, giving each item's outcome to ``record``.

    ``send(index)`` sends the item and returns its outcome, a failure as a value,
    or ``None`` when ``stop`` cut the send short (nothing is recorded for it and
    the chain ends: the caller says what is known of it). After a failure, each
    later item is not sent: its outcome is ``hold(index of the failed one,
    failure)``, a :class:`~alertwire.HeldBack`. With ``stop`` set, the items not
    yet reached are left unrecorded.
    """
    failed: tuple[int, DeliveryError] | None = None
    for index in chain:
        if stop is not None and stop.is_set():
            return
        outcome: R | None
        if failed is None:
            outcome = send(index)
            if outcome is None:
                return
            if isinstance(outcome, DeliveryError):
                failed = (index, outcome)
        else:
            outcome = hold(*failed)
        record(index, outcome)
