"""``--queue``: store validated events in the outbox instead of sending them now.

Called from the one dispatch step every sending command ends in, so every
command has it. All the run's events go into the outbox in ONE transaction,
and each outcome is an
:class:`~alertwire.EventResult` with ``status="queued"``, the outbox id in
``message`` and the dedup key (assigned now for a keyless trigger) so the
caller can acknowledge or resolve it later. ``http_status`` is 0: no HTTP
exchange happened yet; ``alertwire relay`` does that. (``send --queue``
streams its input in short chunks instead: :mod:`._queue_stream`.)

The destination URL is stored with the event only when this command was
told one (``--pagerduty-url`` / ``--region`` or their variables); otherwise
the relay's own setting decides. An outbox that cannot store raises
:class:`~alertwire.OutboxError` and nothing of that transaction is queued:
exit code 5 when the cause passes (a lock held past the busy timeout, a full
disk: retry the same command), 2 when it needs a person (read-only, not an
outbox, a directory).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from .. import _config
from .._errors import AlertwireError, ValidationError
from ..models.results import EventResult

__all__ = ["enqueue_jobs", "explicit_url", "prepare_row", "queued_result", "wants_queue"]


def _args(clients: Any) -> argparse.Namespace:
    """The parsed options the run's :class:`~alertwire.cli._clients.Clients` was made from."""
    args: argparse.Namespace = clients.args
    return args


def wants_queue(clients: Any) -> bool:
    """Whether this run stores (``--queue``) rather than sends."""
    return bool(getattr(_args(clients), "queue", False))


def explicit_url(args: argparse.Namespace, destination: str, client: Any) -> str | None:
    if destination == "pagerduty":
        url = _config.resolve(getattr(args, "pagerduty_url", None), _config.ENV_PAGERDUTY_URL, None)
    else:
        url = _config.resolve(getattr(args, "bigpanda_url", None), _config.ENV_BIGPANDA_URL, None)
    region = _config.resolve(getattr(args, "region", None), _config.ENV_REGION, None)
    return str(client.base_url) if (url or region) else None


def prepare_row(args: argparse.Namespace, job: Any, client: Any) -> Any:
    """The outbox row for one validated job (``client`` holds its credentials); raises the
    library's ValidationError (or ConfigurationError) that keeps it out."""
    from ..outbox import Outbox

    url = explicit_url(args, job.destination, client)
    if job.destination == "pagerduty":
        return Outbox.prepare_pagerduty(job.event, routing_key=client.routing_key, base_url=url)
    return Outbox.prepare_bigpanda(
        job.event, token=client.token, app_key=client.app_key, base_url=url
    )


def queued_result(item: Any) -> EventResult:
    """A stored event's outcome: the outbox id and the dedup key, no HTTP exchange yet."""
    return EventResult(
        status="queued",
        message=f"queued in the outbox as event {item.id}",
        dedup_key=item.dedup_key,
        http_status=0,
    )


def enqueue_jobs(jobs: Sequence[Any], clients: Any) -> list[Any]:
    """One outcome per job: a queued result, or the ValidationError that kept it out."""
    args = _args(clients)
    from ..outbox import Outbox
    from ..outbox.machine import NewEvent

    outcomes: list[Any] = [None] * len(jobs)
    rows: list[NewEvent] = []
    slots: list[int] = []
    for index, job in enumerate(jobs):
        try:
            row = prepare_row(args, job, clients.get(job.destination))
        except ValidationError as exc:
            outcomes[index] = exc
            continue
        rows.append(row)
        slots.append(index)
    if rows:
        with Outbox.open(getattr(args, "outbox", None)) as outbox:
            queued = outbox.put(rows)
        for index, item in zip(slots, queued, strict=True):
            outcomes[index] = queued_result(item)
    assert all(isinstance(o, (EventResult, AlertwireError)) for o in outcomes)
    return outcomes
