"""PagerDuty REST API v2, sans-IO: requests built, answers classified, pages walked.

The sync :class:`~alertwire.rest.PagerDutyAPI` and the async
:class:`~alertwire.rest.AsyncPagerDutyAPI` differ only in ``await``: every
decision (headers, which URL a path means, how a query is encoded, which
error an answer is, how long a 429 asks us to wait, which entity wrapper a
path uses, what the next page's query is, how a bulk update is split) is
made here, once, and unit-tested without a socket. The facts these rules
rest on are written down in ``docs/rest.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote, urlsplit

from .. import _json
from .._errors import (
    BadRequest,
    Forbidden,
    NotFound,
    ResponseError,
    ServerError,
    Unauthorized,
    UnexpectedResponse,
    ValidationError,
)
from .._numbers import is_whole
from .._secret import Secret, credential
from ..models.limits import REST_TOKEN_LENGTH, ROUTING_KEY_LENGTH
from ..transport import Request, Response
from .http import USER_AGENT, json_body, parse_retry_after, rate_limited, scrubbed, timed_out

__all__ = [
    "ACCEPT",
    "BULK_UPDATE_MAX",
    "CURSOR_PATHS",
    "EU_BASE_URL",
    "ITERATION_LIMIT",
    "MAX_PAGE_SIZE",
    "PAGING_KEYS",
    "REGIONS",
    "SERVICE",
    "US_BASE_URL",
    "Pager",
    "build_headers",
    "build_request",
    "canonical_path",
    "check_token",
    "chunks",
    "encode_params",
    "entity_wrappers",
    "error_for_rest_response",
    "incidents_from",
    "is_cursor_path",
    "json_of",
    "pick_incident",
    "rate_limit_delay",
    "resolve_path",
    "status_updates",
    "unwrap",
    "wrap",
]

US_BASE_URL: Final = "https://api.pagerduty.com"
EU_BASE_URL: Final = "https://api.eu.pagerduty.com"
REGIONS: Final = {"us": US_BASE_URL, "eu": EU_BASE_URL}
SERVICE: Final = "PagerDuty REST API"
ACCEPT: Final = "application/vnd.pagerduty+json;version=2"
#: Classic pagination: PagerDuty's largest ``limit``.
MAX_PAGE_SIZE: Final = 100
#: Classic pagination: ``offset + limit`` may not exceed this (PagerDuty answers 400 past it).
ITERATION_LIMIT: Final = 10_000
#: ``PUT /incidents`` takes at most this many incidents (more: 413).
BULK_UPDATE_MAX: Final = 250
#: The keys of a list answer that are about paging, not content.
PAGING_KEYS: Final = frozenset({"limit", "offset", "more", "total", "next_cursor"})

#: The list paths whose ``GET`` pages with ``cursor``/``next_cursor`` instead of
#: ``offset``/``more``: every path of PagerDuty's published OpenAPI schema that
#: takes a ``cursor`` query parameter (snapshot of 2026-08-14), plus the incident
#: review paths the official client also pages by cursor.
CURSOR_PATHS: Final = (
    "/audit/records",
    "/automation_actions/actions",
    "/automation_actions/runners",
    "/enrichment/schemas/{id}/records",
    "/escalation_policies/{id}/audit/records",
    "/incident_workflows/actions",
    "/incident_workflows/triggers",
    "/incidents/reviews",
    "/incidents/reviews/action_items",
    "/incidents/{id}/review/action_items",
    "/ip_allow_lists/{id}/audit/records",
    "/recommendations/event_orchestrations/rules",
    "/schedules/{id}/audit/records",
    "/services/{id}/audit/records",
    "/teams/{id}/audit/records",
    "/users/{id}/audit/records",
    "/users/{id}/oauth_delegations",
    "/v3/schedules/{id}/audit/records",
    "/workflows/integrations",
    "/workflows/integrations/connections",
    "/workflows/integrations/{id}/connections",
)

#: Endpoints whose entity wrapping does not follow the naming rule (see
#: :func:`entity_wrappers`): (request wrapper, response wrapper); ``None`` = no wrapper.
_WRAPPER_EXCEPTIONS: Final[Mapping[str, tuple[str | None, str | None]]] = {
    "PUT /incidents/{id}/merge": ("source_incidents", "incident"),
    "POST /incidents/{id}/snooze": (None, "incident"),
    "POST /incidents/{id}/responder_requests": (None, "responder_request"),
    "POST /incidents/{id}/status_updates": (None, "status_update"),
    "GET /incidents/{id}/related_change_events": ("change_events", "change_events"),
    "GET /users/me": ("user", "user"),
    "POST /change_events": (None, None),
}

_COLLECTION = re.compile(r"[a-z][a-z0-9_]*")


# --- credentials and headers -------------------------------------------------------


def check_token(token: str | Secret, *, oauth: bool) -> Secret:
    """The token as a :class:`Secret`, or a ValidationError naming ``token`` and the rule.

    A 32-character letters-and-digits value is, in practice, an Events API
    integration key pasted where the REST API token belongs (REST API keys
    are about 20 characters): say so instead of letting PagerDuty answer
    an unexplained 401. Whitespace inside would end up in a header.
    """
    secret = credential(token, "token")
    value = secret.reveal().strip()
    if not value:
        raise ValidationError("token", "is required and must not be blank")
    if any(c.isspace() or not c.isprintable() or not c.isascii() for c in value):
        raise ValidationError("token", "must not contain spaces, line breaks or non-ASCII text")
    if not oauth and len(value) == ROUTING_KEY_LENGTH and value.isalnum():
        raise ValidationError(
            "token",
            f"must be a REST API token (about {REST_TOKEN_LENGTH} characters); this one has"
            f" {ROUTING_KEY_LENGTH} letters and digits, like an Events API v2 integration"
            " (routing) key: use it with alertwire.PagerDuty instead, and create an API"
            " key under Integrations > API Access Keys for the REST API",
        )
    return Secret(value)


def build_headers(
    token: Secret, *, oauth: bool, default_from: str | None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Every request's headers; ``extra`` (a call's own) may replace any but ``Authorization``."""
    headers = {
        "Accept": ACCEPT,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    if default_from:
        headers["From"] = default_from
    if extra:
        for name, value in extra.items():
            if name.lower() != "authorization":
                headers[name] = value
    scheme = "Bearer " if oauth else "Token token="
    headers["Authorization"] = scheme + token.reveal()
    return headers


# --- URLs, queries, bodies ----------------------------------------------------------


def resolve_path(base_url: str, path: str | Mapping[str, Any]) -> str:
    """The absolute URL for ``path``: a path (``/incidents``, ``incidents``), a full URL
    under ``base_url``, or an object whose ``self`` is one.

    A URL on any other host is refused: the token goes wherever the request
    goes, and a ``self`` link from another account or region must not take it there.
    """
    if isinstance(path, Mapping):
        link = path.get("self")
        if not isinstance(link, str) or not link:
            raise ValidationError("path", "an object given as a path must have a 'self' URL")
        path = link
    if not isinstance(path, str) or not path.strip():
        raise ValidationError("path", "must be a path such as /incidents")
    path = path.strip()
    if "://" in path:
        if not (path == base_url or path.startswith(base_url + "/")):
            raise ValidationError(
                "path",
                f"must be a path or a URL under {base_url} (the token is sent only there),"
                f" got one on {urlsplit(path).hostname or 'another host'}",
            )
        return path
    if "?" in path or "#" in path:
        raise ValidationError("path", "must not carry a query string: pass params= instead")
    return base_url + (path if path.startswith("/") else "/" + path)


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def encode_params(params: Mapping[str, Any] | None) -> str:
    """PagerDuty's query form: a list value is repeated under ``name[]`` (``statuses[]=a&…``).

    As the official client does, ``[]`` is appended to a list's name that
    lacks it; booleans are ``true``/``false`` (Python's ``True`` is not
    understood); ``None`` values are left out.
    """
    if not params:
        return ""
    pairs: list[str] = []
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple, set, frozenset)):
            key = name if name.endswith("[]") else name + "[]"
            items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
            pairs += [f"{quote(key, safe='[]')}={quote(_query_value(v), safe='')}" for v in items]
        else:
            pairs.append(f"{quote(name, safe='[]')}={quote(_query_value(value), safe='')}")
    return "&".join(pairs)


def build_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    *,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
) -> Request:
    """One request: ``url`` from :func:`resolve_path`, the query appended, ``json`` encoded."""
    query = encode_params(params)
    if query:
        url = f"{url}{'&' if '?' in url else '?'}{query}"
    body = b"" if json is None else _json.dumps(json)
    return Request(method.upper(), url, headers, body)


# --- entity wrappers -------------------------------------------------------------------


def canonical_path(base_url: str, url: str) -> str:
    """The path of ``url`` with ids replaced by ``{id}``: ``/incidents/{id}/notes``.

    PagerDuty's collection names are lower-case snake_case and its ids are
    not (``PT4KHLK``, ``Q0RIJJZL24RC6W``), which is all the official client's
    path table is used for here (``/users/me`` stays as it is: its
    wrapper is listed among the exceptions).
    """
    path = url[len(base_url) :] if url.startswith(base_url) else urlsplit(url).path
    path = path.split("?", 1)[0].rstrip("/")
    nodes = path.split("/")[1:]
    out: list[str] = []
    for node in nodes:
        out.append(node if _COLLECTION.fullmatch(node) else "{id}")
    return "/" + "/".join(out)


def _singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    return name[:-1] if name.endswith("s") else name


def entity_wrappers(method: str, path: str) -> tuple[str | None, str | None]:
    """(request wrapper, response wrapper) for ``method`` on canonical ``path``.

    PagerDuty's convention, as the official client infers it: an object's own
    URL (``/incidents/{id}``) wraps in the singular (``incident``); a POST to a
    collection creates one (``incident``); anything else on a collection is
    plural (``incidents``). The few endpoints that break the rule are listed.
    """
    found = _WRAPPER_EXCEPTIONS.get(f"{method.upper()} {path}")
    if found is not None:
        return found
    if path == "/users/me":
        return ("user", "user")
    nodes = path.split("/")
    if nodes[-1] == "{id}":
        name = _singular(nodes[-2]) if len(nodes) > 2 else None
        return (name, name)
    if method.upper() == "POST":
        name = _singular(nodes[-1])
        return (name, name)
    return (nodes[-1], nodes[-1])


def wrap(body: Any, wrapper: str | None) -> Any:
    """``body`` inside its wrapper, unless it is wrapped already (both forms are accepted)."""
    if wrapper is None or body is None:
        return body
    if isinstance(body, Mapping) and wrapper in body:
        return body
    return {wrapper: body}


def unwrap(body: Any, wrapper: str | None, *, what: str) -> Any:
    """The entity inside ``body``; an answer without the expected wrapper is an error.

    When the wrapper is not the one the naming rule expected, a body with a
    single content key (paging keys aside) is unwrapped by that key: newer
    endpoints name their wrappers freely, and guessing wrong must not lose data.
    """
    if wrapper is None:
        return body
    if isinstance(body, Mapping):
        if wrapper in body:
            return body[wrapper]
        content = [k for k in body if k not in PAGING_KEYS]
        if len(content) == 1:
            return body[content[0]]
        keys = ", ".join(sorted(map(str, body))) or "none"
        detail = f"a JSON object with keys {keys}"
    else:
        detail = f"a JSON {type(body).__name__}"
    raise UnexpectedResponse(
        f"{SERVICE} answered {what} with {detail} where {wrapper!r} was expected"
    )


# --- errors and rate limits ------------------------------------------------------------


def rate_limit_delay(response: Response) -> float | None:
    """Seconds a 429 asks us to wait: ``Retry-After``, else PagerDuty's ``ratelimit-reset``.

    ``ratelimit-reset`` is the number of seconds until the window resets
    (the REST API sends it with ``ratelimit-limit`` and ``ratelimit-remaining``).
    """
    delay = parse_retry_after(response.header("retry-after"))
    if delay is None:
        delay = parse_retry_after(response.header("ratelimit-reset"))
    return delay


#: Statuses that refuse the request's content: retrying sends the same mistake.
_REFUSED: Final = frozenset({400, 402, 409, 413, 422})


def _pagerduty_error(payload: Any) -> tuple[str | None, list[str], Any]:
    """(message, errors, code) from PagerDuty's ``{"error": {...}}`` body, each text
    quoted as a body is (one line: see ``ResponseError.excerpt``)."""
    quote = ResponseError.excerpt
    error = payload.get("error") if isinstance(payload, Mapping) else None
    if isinstance(error, str):
        return quote(error), [], None
    if not isinstance(error, Mapping):
        return None, [], None
    message = error.get("message")
    errors = error.get("errors")
    listed = [quote(str(e)) for e in errors] if isinstance(errors, list) else []
    if isinstance(errors, str):
        listed = [quote(errors)]
    code = error.get("code")
    return (
        quote(str(message)) if message is not None else None,
        listed,
        quote(str(code)) if code is not None else None,
    )


def error_for_rest_response(
    response: Response, *, method: str, url: str, token: Secret | None = None
) -> ResponseError:
    """The typed error a non-2xx answer means, carrying PagerDuty's own message and errors.

    401 :class:`Unauthorized`, 403 :class:`Forbidden`, 404 :class:`NotFound`,
    400 (and other refusals of the request's content: 402, 409, 413, 422)
    :class:`BadRequest`, 429 :class:`RateLimited` with the delay PagerDuty
    gave, 5xx and 408 (:func:`~alertwire.protocol.http.timed_out`) :class:`ServerError`.
    The token is cut out of anything quoted.
    """
    response = scrubbed(response, token)
    status = response.status
    text = response.text
    message, errors, code = _pagerduty_error(json_body(response))
    where = f"{method.upper()} {urlsplit(url).path}"
    said = message or ResponseError.excerpt(text) or "(empty body)"
    if code is not None:
        said = f"{said} (code {code})"
    if status in _REFUSED:
        # BadRequest appends PagerDuty's ``errors`` list to the message itself.
        head = f"{SERVICE} refused {where} (HTTP {status}): {said}"
        return BadRequest(head, errors=errors, http_status=status, body=text)
    if errors:
        said = f"{said}: {'; '.join(errors)}"
    if status == 401:
        return Unauthorized(
            f"{SERVICE} rejected the token for {where} (HTTP 401): {said}."
            " Check the REST API token (an Events API integration key is not one)",
            http_status=status,
            body=text,
        )
    if status == 403:
        return Forbidden(
            f"{SERVICE} does not allow {where} with this token (HTTP 403): {said}",
            http_status=status,
            body=text,
        )
    if status == 404:
        return NotFound(
            f"{SERVICE} found nothing at {where} (HTTP 404): {said}",
            http_status=status,
            body=text,
        )
    if status == 429:
        return rate_limited(SERVICE, where, rate_limit_delay(response), said, body=text)
    if status == 408:
        return timed_out(SERVICE, where, said, body=text)
    if 500 <= status <= 599:
        return ServerError(
            f"{SERVICE} had a server error on {where} (HTTP {status}): {said}",
            http_status=status,
            body=text,
        )
    return UnexpectedResponse(
        f"{SERVICE} answered {where} with unexpected HTTP {status}: {said}",
        http_status=status,
        body=text,
    )


def json_of(response: Response, *, method: str, url: str) -> Any:
    """The body of a 2xx as JSON (``None`` for an empty one, as a 204 has)."""
    if not response.body.strip():
        return None
    try:
        return _json.loads(response.body)
    except _json.JSONDecodeError:
        raise UnexpectedResponse(
            f"{SERVICE} answered {method.upper()} {urlsplit(url).path} with HTTP"
            f" {response.status} but no JSON: {UnexpectedResponse.excerpt(response.text)}",
            http_status=response.status,
            body=response.text,
        ) from None


# --- pagination -------------------------------------------------------------------------


def is_cursor_path(path: str) -> bool:
    """Whether canonical ``path`` pages by cursor (see :data:`CURSOR_PATHS`)."""
    nodes = path.split("/")
    for pattern in CURSOR_PATHS:
        parts = pattern.split("/")
        if len(parts) == len(nodes) and all(
            p == n or (p.startswith("{") and n == "{id}") for p, n in zip(parts, nodes, strict=True)
        ):
            return True
    return False


def _whole(value: Any, name: str) -> int:
    """``value`` as an int: a whole number, or its text (a query string's ``"25"``).

    ``True``, ``2.5`` or ``"2"`` given as ``page_size=`` once went out as
    ``limit=true`` / ``limit=2.5`` (refused by PagerDuty with a 400 that named no
    argument of ours) or failed with a bare ``TypeError``: refused here instead,
    naming the argument and the rule.
    """
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValidationError(name, "must be a whole number")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValidationError(name, "must be a whole number") from None


@dataclass
class Pager:
    """Walks a list endpoint: which query to send next, and what a page holds.

    Classic pagination sends ``limit``/``offset`` and stops when ``more`` is
    false (or a page is empty, so a server that never says ``more: false``
    cannot loop us forever); the offset advances by what the page actually
    held, never by the ``limit`` asked for, so a server that returns fewer
    neither skips nor repeats results. Cursor pagination sends
    ``cursor`` and stops when ``next_cursor`` is empty; a ``next_cursor``
    already followed is an :class:`UnexpectedResponse` (a cursor is a place in
    the list, so that server would hand us the same pages for ever). Classic pagination
    ends at PagerDuty's ``offset + limit`` bound of 10,000; ``truncated``
    then says results were left unread (the client logs a warning).
    """

    path: str
    params: Mapping[str, Any] | None = None
    page_size: int = MAX_PAGE_SIZE
    cursor_based: bool = False
    wrapper: str | None = None
    offset: int = 0
    cursor: str | None = None
    done: bool = False
    truncated: bool = False
    seen: int = field(default=0)
    #: Every cursor followed so far: the walk never goes back to one.
    followed: set[str] = field(default_factory=set)

    @classmethod
    def for_path(
        cls, canonical: str, params: Mapping[str, Any] | None, page_size: int | None
    ) -> Pager:
        if canonical.endswith("/{id}"):
            raise ValidationError(
                "path", f"{canonical} is one object, not a list: use rget() for it"
            )
        given_as = "page_size"
        if page_size is None and params and params.get("limit") is not None:
            page_size = _whole(params["limit"], "params.limit")
            given_as = "params.limit"
        elif page_size is not None and not is_whole(page_size):
            raise ValidationError("page_size", f"must be a whole number from 1 to {MAX_PAGE_SIZE}")
        size = MAX_PAGE_SIZE if page_size is None else page_size
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ValidationError(given_as, f"must be from 1 to {MAX_PAGE_SIZE}")
        start = 0
        if params and params.get("offset") is not None:
            start = _whole(params["offset"], "params.offset")
            if start < 0:
                raise ValidationError("params.offset", "must not be negative")
        return cls(
            path=canonical,
            params=params,
            page_size=size,
            cursor_based=is_cursor_path(canonical),
            wrapper=entity_wrappers("GET", canonical)[1],
            offset=start,
        )

    def next_query(self) -> dict[str, Any] | None:
        """The next page's query, or ``None`` when the walk is over."""
        if self.done:
            return None
        query: dict[str, Any] = dict(self.params or {})
        query["limit"] = self.page_size
        if self.cursor_based:
            query.pop("offset", None)
            if self.cursor is not None:
                query["cursor"] = self.cursor
            return query
        if self.offset + self.page_size > ITERATION_LIMIT:
            self.done = self.truncated = True
            return None
        query["offset"] = self.offset
        return query

    def take(self, body: Any) -> list[Any]:
        """The results of one page's body; moves the walk on."""
        results = unwrap(body, self.wrapper, what=f"GET {self.path}")
        if not isinstance(results, list):
            raise UnexpectedResponse(
                f"{SERVICE} answered GET {self.path} with {type(results).__name__}"
                " where a list was expected: use rget() for a single object"
            )
        self.seen += len(results)
        # A bare list (an endpoint without a wrapper) has no paging keys: one page only.
        paging: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
        if self.cursor_based:
            next_cursor = paging.get("next_cursor")
            self.cursor = next_cursor if isinstance(next_cursor, str) and next_cursor else None
            self.done = self.cursor is None or not results
            if not self.done and self.cursor in self.followed:
                raise UnexpectedResponse(
                    f"{SERVICE} answered GET {self.path} with a next_cursor it had already"
                    f" given (after {self.seen} results): stopped rather than list the same"
                    " pages again"
                )
            if self.cursor is not None:
                self.followed.add(self.cursor)
        else:
            self.offset += len(results)
            self.done = paging.get("more") is not True or not results
        return results


# --- the alerting loop --------------------------------------------------------------------


def chunks(ids: Iterable[str], size: int = BULK_UPDATE_MAX) -> Iterator[list[str]]:
    """``ids`` in lists of at most ``size``, duplicates dropped, order kept."""
    batch: list[str] = []
    seen: set[str] = set()
    for incident_id in ids:
        if not isinstance(incident_id, str) or not incident_id.strip():
            raise ValidationError("incident_ids", "every incident id must be a non-blank string")
        if incident_id in seen:
            continue
        seen.add(incident_id)
        batch.append(incident_id)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def status_updates(ids: Sequence[str], status: str) -> dict[str, Any]:
    """The bulk ``PUT /incidents`` body that moves ``ids`` to ``status``."""
    return {
        "incidents": [
            {"id": incident_id, "type": "incident_reference", "status": status}
            for incident_id in ids
        ]
    }


def incidents_from(found: Any, *, what: str) -> list[dict[str, Any]]:
    """``found`` (an answer's incidents) checked: a list of objects, each with an ``id``.

    The alerting loop reads an incident's ``id``, ``status`` and ``service``:
    an answer holding anything else is the server's error, said as one
    :class:`UnexpectedResponse`, not an ``AttributeError`` from deep inside.
    """
    if not isinstance(found, list):
        raise UnexpectedResponse(
            f"{SERVICE} answered {what} with {type(found).__name__} where a list of incidents"
            " was expected"
        )
    for incident in found:
        if not isinstance(incident, Mapping):
            raise UnexpectedResponse(
                f"{SERVICE} answered {what} with {type(incident).__name__} where an incident"
                " (a JSON object) was expected"
            )
        incident_id = incident.get("id")
        if not isinstance(incident_id, str) or not incident_id.strip():
            raise UnexpectedResponse(f"{SERVICE} answered {what} with an incident without an id")
    return [dict(incident) for incident in found]


_OPEN = ("triggered", "acknowledged")


def pick_incident(incidents: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The incident a dedup key means now: the open one, else the newest.

    One key can name several incidents over time (a trigger after a resolve
    opens a new one), but at most one is open; when none is, the one created
    last is the key's latest story.
    """
    if not incidents:
        return None
    open_ones = [i for i in incidents if i.get("status") in _OPEN]
    pool = open_ones or list(incidents)
    return max(pool, key=lambda i: (str(i.get("created_at") or ""), i.get("incident_number") or 0))
