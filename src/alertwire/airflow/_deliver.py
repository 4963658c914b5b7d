"""Getting a page out of an Airflow worker without ever losing it silently.

No Airflow import here: the hooks and notifiers call these two functions,
and the tests drive them against the real sandbox and a real SQLite outbox.

The order of attempts, and why:

1. **An outbox is configured**: store the page there (one fsync) and return
   at once. ``alertwire relay`` delivers it, with retries far longer than a
   callback can wait, and through a restart of the worker.
2. **No outbox, or storing failed** (disk full, database down, bad URL):
   send directly, with the client's bounded retries. A failed store is
   logged (WARNING for a passing cause: a lock, a full disk, a database that
   is down; ERROR for one that fails every page until a person acts: a bad
   setting, a wrong password, a file that is not an outbox) and is *not*
   the end: the page may still get through.
3. **Neither worked**: one ERROR line with every reason (never the key),
   then the exception propagates, so Airflow records the callback as failed
   instead of a run that looks no different from one whose page arrived.

Clients and outboxes are opened per page and closed after it: a callback
runs rarely, and a pool kept in a long-lived worker would be one more
thing to go stale. The heavy imports (urllib3, sqlite3, psycopg) happen
here, on first use, never when a DAG file imports ``alertwire.airflow``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from .._errors import AlertwireError, ConfigurationError, OutboxError, ValidationError
from ..models.bigpanda import BigPandaAlert
from ..models.pagerduty import PagerDutyEvent
from ..models.results import EventResult
from ._settings import Destination

if TYPE_CHECKING:
    from ..outbox import Outbox

__all__ = [
    "PageOutcome",
    "deliver_bigpanda",
    "deliver_pagerduty",
    "describe",
    "send_now",
    "send_pagerduty",
]

logger = logging.getLogger("alertwire.airflow")

_T = TypeVar("_T")


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class PageOutcome:
    """What happened to a page: delivered now (``result``) or stored (``outbox_id``)."""

    dedup_key: str | None
    result: EventResult | None = None
    outbox_id: int | None = None

    @property
    def queued(self) -> bool:
        return self.outbox_id is not None

    def __repr__(self) -> str:
        how = f"outbox_id={self.outbox_id}" if self.queued else f"result={self.result!r}"
        return f"PageOutcome(dedup_key={self.dedup_key!r}, {how})"


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _store(what: str, dest: Destination, put: Callable[[Outbox], _T]) -> tuple[_T | None, str]:
    """Run ``put(outbox)``; on failure log why and return ``(None, reason)``."""
    assert dest.outbox is not None
    from ..outbox import Outbox

    try:
        with Outbox.open(dest.outbox) as box:
            return put(box), ""
    except ConfigurationError as exc:
        logger.error("%s: the outbox setting is unusable (%s); sending directly", what, exc)
        return None, f"outbox unusable ({describe(exc)})"
    except ValidationError as exc:
        logger.error("%s: the outbox refused it (%s); sending directly", what, exc)
        return None, f"not stored ({describe(exc)})"
    except OutboxError as exc:
        if not exc.retryable:
            # Not a passing cause (a wrong password, a file that is no outbox, a
            # path under a file): every page will fail the same way until a person
            # changes the setting, as the CLI's exit code 2 says for it.
            logger.error(
                "%s: the outbox cannot store pages until someone acts (%s); sending directly",
                what,
                exc,
            )
            return None, f"outbox unusable ({describe(exc)})"
        logger.warning("%s: could not store it in the outbox (%s); sending directly", what, exc)
        return None, f"not stored ({describe(exc)})"


def send_now(what: str, send: Callable[[], _T], *, stored_reason: str = "") -> _T:
    """Call ``send``; on any alertwire error log one ERROR with every reason, then re-raise."""
    try:
        return send()
    except AlertwireError as exc:
        reasons = f"{stored_reason}; " if stored_reason else ""
        logger.error(
            "%s was NOT delivered and NOT stored: %snot delivered (%s)",
            what,
            reasons,
            describe(exc),
        )
        raise


def _store_or_send(
    what: str,
    dest: Destination,
    put: Callable[[Outbox], PageOutcome],
    send: Callable[[], PageOutcome],
    *,
    keyed: bool,
) -> PageOutcome:
    """The order of attempts above, for any destination: ``put`` into the outbox, else ``send``.

    ``keyed``: the outcome carries a dedup key worth logging (PagerDuty's).
    """
    stored_reason = ""
    if dest.outbox is not None:
        outcome, stored_reason = _store(what, dest, put)
        if outcome is not None:
            key_note = f", dedup key {outcome.dedup_key}" if keyed else ""
            logger.info(
                "%s stored in the outbox (id %d%s); `alertwire relay` delivers it",
                what,
                outcome.outbox_id,
                key_note,
            )
            return outcome
    outcome = send_now(what, send, stored_reason=stored_reason)
    logger.info("%s delivered%s", what, f" (dedup key {outcome.dedup_key})" if keyed else "")
    return outcome


def deliver_pagerduty(what: str, event: PagerDutyEvent, dest: Destination) -> PageOutcome:
    """Store ``event`` in the outbox when one is set, else (or if that fails) send it now."""

    def put(box: Outbox) -> PageOutcome:
        queued = box.enqueue(
            event, routing_key=dest.key, base_url=dest.queued_base_url("pagerduty")
        )
        return PageOutcome(dedup_key=queued.dedup_key, outbox_id=queued.id)

    def send() -> PageOutcome:
        result = send_pagerduty(event, dest)
        return PageOutcome(dedup_key=result.dedup_key, result=result)

    return _store_or_send(what, dest, put, send, keyed=True)


def send_pagerduty(event: PagerDutyEvent, dest: Destination) -> EventResult:
    """One direct send with the client's bounded retries; raises what the client raises."""
    from .._pagerduty_client import PagerDuty

    with PagerDuty(dest.key, region=dest.region, base_url=dest.base_url, retry=dest.retry) as pd:
        return pd.send(event)


def deliver_bigpanda(what: str, alert: BigPandaAlert, dest: Destination) -> PageOutcome:
    """:func:`deliver_pagerduty` for a BigPanda alert (``dest.app_key`` is required)."""
    if dest.app_key is None:
        raise ConfigurationError("no BigPanda app key: set the connection's login or app_key=")
    app_key = dest.app_key

    def put(box: Outbox) -> PageOutcome:
        queued = box.enqueue_bigpanda(
            alert, token=dest.key, app_key=app_key, base_url=dest.queued_base_url("bigpanda")
        )
        return PageOutcome(dedup_key=None, outbox_id=queued.id)

    def send() -> PageOutcome:
        from .._bigpanda_client import BigPanda

        with BigPanda(
            dest.key, app_key, region=dest.region, base_url=dest.base_url, retry=dest.retry
        ) as bp:
            return PageOutcome(dedup_key=None, result=bp.send(alert))

    return _store_or_send(what, dest, put, send, keyed=False)
