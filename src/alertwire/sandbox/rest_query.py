"""Query strings of the sandbox's REST list routes, read the way PagerDuty reads them.

Pure functions over a multi-valued mapping (aiohttp's ``request.query``), so
the rules are tested without a server. A bad value raises
:class:`InvalidInput` naming the parameter and the rule; the routes answer
it with PagerDuty's 400 (``Invalid Input Provided``, code 2001).

Decisions, where PagerDuty's reference is silent or the sandbox simplifies:

* ``limit`` defaults to 25; above 100 it is lowered to 100 and the answer
  echoes 100 (PagerDuty documents 100 as the maximum); ``offset`` + ``limit``
  may not pass 10,000, PagerDuty's classic pagination ceiling;
* ``total=true`` fills ``total``; anything else (``false``, absent) leaves it
  ``null``;
* array parameters are read with or without the ``[]`` suffix
  (``statuses[]=triggered`` and ``statuses=triggered``);
* ``since``/``until`` take ISO 8601 date-times (a date alone means midnight
  UTC; no zone means UTC). Without either, incidents of the last 30 days are
  listed; ``date_range=all`` lifts the window. A window over 6 months is
  refused, as PagerDuty documents;
* ``sort_by`` takes up to two of ``incident_number``, ``created_at``,
  ``resolved_at``, ``urgency``, each with ``:asc`` (default) or ``:desc``,
  comma-separated. Without it, incidents come oldest first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from multidict import MultiMapping

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "IncidentQuery",
    "InvalidInput",
    "Page",
    "incident_query",
    "page",
]

DEFAULT_LIMIT: Final = 25
MAX_LIMIT: Final = 100
#: PagerDuty refuses classic pagination beyond this many records.
MAX_RECORDS: Final = 10_000
DEFAULT_WINDOW: Final = timedelta(days=30)
MAX_WINDOW: Final = timedelta(days=183)
INCIDENT_STATUSES: Final = ("triggered", "acknowledged", "resolved")
SORT_FIELDS: Final = ("incident_number", "created_at", "resolved_at", "urgency")


Query = MultiMapping[str]


class InvalidInput(ValueError):
    """A parameter PagerDuty would refuse; ``errors`` are the lines of its ``errors`` list."""

    def __init__(self, *errors: str) -> None:
        super().__init__("; ".join(errors))
        self.errors = list(errors)


@dataclass(frozen=True, slots=True)
class Page:
    offset: int
    limit: int
    total: bool

    def cut(self, items: list[Any], render: Callable[[Any], Any], key: str) -> dict[str, Any]:
        """PagerDuty's classic pagination wrapper around one page of ``items``."""
        chosen = items[self.offset : self.offset + self.limit]
        return {
            key: [render(item) for item in chosen],
            "limit": self.limit,
            "offset": self.offset,
            "more": self.offset + len(chosen) < len(items),
            "total": len(items) if self.total else None,
        }


@dataclass(frozen=True, slots=True)
class IncidentQuery:
    page: Page
    statuses: frozenset[str]
    service_ids: frozenset[str]
    incident_key: str | None
    #: ``urgencies[]``: once ignored, so a test filtering on it saw every incident.
    urgencies: frozenset[str]
    since: datetime | None
    until: datetime | None
    sort: tuple[tuple[str, bool], ...]  # (field, descending)


def _values(query: Query, name: str) -> list[str]:
    return [v for k in (f"{name}[]", name) for v in query.getall(k, [])]


def _integer(query: Query, name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a non-negative integer, got {raw[:40]!r}") from None
    if value < 0:
        raise InvalidInput(f"{name} must be a non-negative integer, got {value}")
    return value


def page(query: Query) -> Page:
    offset = _integer(query, "offset", 0)
    limit = min(_integer(query, "limit", DEFAULT_LIMIT), MAX_LIMIT)
    if limit == 0:
        raise InvalidInput("limit must be between 1 and 100")
    if offset + limit > MAX_RECORDS:
        raise InvalidInput(f"offset + limit must not exceed {MAX_RECORDS} (classic pagination)")
    total = str(query.get("total", "false")).lower()
    if total not in ("true", "false"):
        raise InvalidInput(f"total must be true or false, got {total[:20]!r}")
    return Page(offset=offset, limit=limit, total=total == "true")


def _time(query: Query, name: str) -> datetime | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    text = raw.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{name} must be an ISO 8601 date-time (e.g. 2026-01-31T12:00:00Z), got {raw[:40]!r}"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _sort(query: Query) -> tuple[tuple[str, bool], ...]:
    parts = [p.strip() for v in _values(query, "sort_by") for p in v.split(",") if p.strip()]
    if len(parts) > 2:
        raise InvalidInput("sort_by takes at most two fields")
    sort: list[tuple[str, bool]] = []
    for part in parts:
        name, _, direction = part.partition(":")
        if name not in SORT_FIELDS or direction not in ("", "asc", "desc"):
            raise InvalidInput(
                f"sort_by {part[:40]!r} is invalid: use one of {', '.join(SORT_FIELDS)},"
                " optionally followed by :asc or :desc"
            )
        sort.append((name, direction == "desc"))
    return tuple(sort)


def incident_query(query: Query, now: datetime) -> IncidentQuery:
    """Read ``GET /incidents``' parameters; every problem found is reported at once."""
    errors: list[str] = []

    def attempt(read: Callable[[], Any]) -> Any:
        try:
            return read()
        except InvalidInput as exc:
            errors.extend(exc.errors)
            return None

    paging = attempt(lambda: page(query))
    statuses = frozenset(_values(query, "statuses"))
    bad = sorted(statuses - set(INCIDENT_STATUSES))
    if bad:
        errors.append(
            f"statuses[] {bad[0][:40]!r} is invalid: use triggered, acknowledged or resolved"
        )
    urgencies = frozenset(_values(query, "urgencies"))
    bad_urgencies = sorted(urgencies - {"high", "low"})
    if bad_urgencies:
        errors.append(f"urgencies[] {bad_urgencies[0][:40]!r} is invalid: use high or low")
    since = attempt(lambda: _time(query, "since"))
    until = attempt(lambda: _time(query, "until"))
    sort = attempt(lambda: _sort(query))
    date_range = query.get("date_range")
    if date_range not in (None, "", "all"):
        errors.append(f"date_range must be 'all', got {str(date_range)[:40]!r}")
    if errors:
        raise InvalidInput(*errors)
    if date_range == "all":
        since = until = None
    else:
        until = until or now
        try:
            since = since or until - DEFAULT_WINDOW
        except OverflowError:  # an until in the first month of year 1
            since = datetime.min.replace(tzinfo=timezone.utc)
        if since > until:
            raise InvalidInput("since must not be after until")
        if until - since > MAX_WINDOW:
            raise InvalidInput("the since/until window may not be longer than 6 months")
    return IncidentQuery(
        page=paging,
        statuses=statuses,
        service_ids=frozenset(_values(query, "service_ids")),
        incident_key=query.get("incident_key") or None,
        urgencies=urgencies,
        since=since,
        until=until,
        sort=sort,
    )
