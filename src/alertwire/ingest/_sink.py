"""The outbox as a sink for the wire routes: accepted means committed to disk.

The routes (:mod:`alertwire.wire`) have already read, parsed and validated
the request with the sandbox's rules and assigned a missing dedup key (so
the key answered is the key delivered). This sink only:

1. refuses credentials outside the allow-lists (403, before anything is
   stored);
2. turns the request into outbox rows from the parts the routes read
   (:meth:`~alertwire.outbox.Outbox.prepare_incoming_pagerduty` /
   :meth:`~alertwire.outbox.Outbox.prepare_incoming_bigpanda`), without
   parsing or validating again: the client's bytes are stored as sent, plus
   the assigned dedup key (a batch: one row per alert, split by the routes),
   and nothing is stamped (model events get ``payload.timestamp`` at
   enqueue; raw bodies do not);
3. waits for the group commit (:mod:`._commit`), and only then returns, so
   the routes answer 202/201 for events that are on disk.

A store failure (disk full, read-only file, lock timeout) becomes
:class:`~alertwire.wire.SinkUnavailable`: 503 with a reason and
``Retry-After``, so the sending tool retries. The reason is the store's
diagnosis ("the disk ... is full"), never the file path or a row.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from .._errors import OutboxError
from ..outbox import Outbox
from ..outbox.machine import NewEvent, Store
from ..outbox.metrics import OutboxMetrics
from ..wire import (
    IncomingBigPanda,
    IncomingPagerDuty,
    SinkForbidden,
    SinkUnavailable,
)
from ._allow import Allowlist
from ._commit import CommitterClosed, GroupCommitter

if TYPE_CHECKING:  # imported where the metrics are made, not when this module is
    from prometheus_client import Counter

__all__ = ["UNAVAILABLE_RETRY_AFTER", "OutboxSink", "store_failure_reason"]

logger = logging.getLogger("alertwire.ingest")

#: Retry-After (seconds) when the outbox cannot store: long enough for an operator
#: or a log rotation to free space, short enough that a page is not held for long.
UNAVAILABLE_RETRY_AFTER: Final = 10.0


def store_failure_reason(exc: BaseException, store: Store) -> str:
    """What went wrong with the outbox, in words for a client or a health check.

    The store's own diagnosis (:meth:`~alertwire.outbox.Store.explain`: SQLite
    says "the disk ... is full"), never the path; a committer that is closing
    says so.
    """
    if isinstance(exc, CommitterClosed):
        return "the relay is shutting down"
    return store.explain(exc)


class OutboxSink:
    """A :class:`~alertwire.wire.Sink` that commits to an :class:`Outbox` (group commit)."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        allow_routing_keys: Allowlist | None = None,
        allow_bigpanda_tokens: Allowlist | None = None,
        metrics: OutboxMetrics | None = None,
        committer: GroupCommitter,
        on_stored: Callable[[], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.allow_routing_keys = allow_routing_keys
        self.allow_bigpanda_tokens = allow_bigpanda_tokens
        self.metrics = metrics
        self.committer = committer
        self._on_stored = on_stored
        #: The last store failure (reason, monotonic time), cleared by the next commit.
        self.last_failure: tuple[str, float] | None = None
        #: ``metrics.accepted`` per destination, looked up once: ``labels()`` takes a
        #: lock and builds a key on every call, for one of two children.
        self._accepted: dict[str, Counter] = {}

    async def accept_pagerduty(self, event: IncomingPagerDuty) -> None:
        if self.allow_routing_keys is not None and not self.allow_routing_keys.allows(
            event.routing_key
        ):
            raise SinkForbidden("This routing key is not allowed by this relay")
        row = self.outbox.prepare_incoming_pagerduty(
            event.wire,
            routing_key=event.routing_key,
            change=event.kind == "change",
            dedup_key=event.dedup_key,
        )
        await self._store([row], "pagerduty")

    async def accept_bigpanda(self, request: IncomingBigPanda) -> None:
        if self.allow_bigpanda_tokens is not None and not self.allow_bigpanda_tokens.allows(
            request.token
        ):
            raise SinkForbidden("This token is not allowed by this relay")
        rows = self.outbox.prepare_incoming_bigpanda(
            zip(request.alerts, request.bodies, strict=True),
            token=request.token,
            app_key=request.app_key,
        )
        await self._store(rows, "bigpanda")

    async def _store(self, rows: list[NewEvent], destination: str) -> None:
        try:
            await self.committer.submit(rows)
        except (OutboxError, CommitterClosed) as exc:
            reason = store_failure_reason(exc, self.outbox.store)
            self.last_failure = (reason, time.monotonic())
            logger.error("event=ingest_not_stored destination=%s reason=%r", destination, reason)
            raise SinkUnavailable(
                f"The relay could not store the event ({reason}); it was NOT accepted, retry later",
                retry_after=UNAVAILABLE_RETRY_AFTER,
            ) from None
        self.last_failure = None
        if self.metrics is not None:
            accepted = self._accepted.get(destination)
            if accepted is None:
                accepted = self._accepted[destination] = self.metrics.accepted.labels(destination)
            accepted.inc(len(rows))
        if self._on_stored is not None:
            self._on_stored()
