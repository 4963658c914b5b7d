"""What the sync and async REST clients share: settings, and every request prepared.

A client method here is two steps: prepare (a :class:`Request` and the
pure function that reads its answer: classify, decode, unwrap) and
deliver (the sender's bounded retry loop over a transport). Only the
second step differs between :class:`~alertwire.rest.PagerDutyAPI` and
:class:`~alertwire.rest.AsyncPagerDutyAPI`, so each of their methods is a
line or two around the same preparation.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Final

from .. import _config
from .._client_base import ClientSettings
from .._errors import DeliveryError, RateLimited, ResponseError, ValidationError
from .._retry import RetryPolicy
from .._secret import Secret
from ..protocol import rest as protocol
from ..protocol.http import scrubbed
from ..transport import Request, Response
from ._response import RestResponse
from ._types import Headers, Ids, Params, Path

__all__ = ["APIBase", "Pages", "Prepared", "matches", "partial_updates", "post_policy"]

logger = logging.getLogger("alertwire.rest")

#: Methods that change nothing when repeated: retried after a 5xx or a lost answer.
_IDEMPOTENT: Final = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_STATUSES: Final = ("triggered", "acknowledged", "resolved")
OPEN_STATUSES: Final = ("triggered", "acknowledged")

Parse = Callable[[Response], Any]


@dataclass(frozen=True, slots=True)
class _RateLimitsOnly(RetryPolicy):
    """The caller's policy, but retrying only a 429.

    A POST that got a 5xx or no answer may have created its object (a note,
    an incident) before failing: trying again could make a second one.
    PagerDuty documents a 429 as not processed, so that alone is safe to repeat.
    """

    def next_delay(self, error: DeliveryError, attempt: int, elapsed: float) -> float | None:
        if not isinstance(error, RateLimited):
            return None
        return RetryPolicy.next_delay(self, error, attempt, elapsed)


def post_policy(policy: RetryPolicy) -> RetryPolicy:
    """``policy`` for non-idempotent requests (see :class:`_RateLimitsOnly`)."""
    return _RateLimitsOnly(**{f.name: getattr(policy, f.name) for f in fields(RetryPolicy)})


def matches(item: Any, attribute: str, query: str) -> bool:
    """``find``'s test: the attribute equals the query, ignoring case (as PagerDuty's names do)."""
    return isinstance(item, Mapping) and str(item.get(attribute, "")).lower() == query.lower()


def _check_from(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or "@" not in value or any(c.isspace() for c in value.strip()):
        raise ValidationError("default_from", "must be the email address of a PagerDuty user")
    return value.strip()


def _ids(incidents: Iterable[str | Mapping[str, Any]]) -> list[str]:
    out = []
    for incident in incidents:
        found = incident.get("id") if isinstance(incident, Mapping) else incident
        if not isinstance(found, str) or not found.strip():
            raise ValidationError("incident_ids", "each must be an incident id or an incident")
        out.append(found.strip())
    return out


def _id_filters(query: dict[str, Any], **ids: Ids) -> dict[str, Any]:
    """``query`` with a ``name[]`` filter for each id list given: one id or several, checked;
    an empty list filters nothing."""
    for name, values in ids.items():
        if values is None:
            continue
        listed = [values] if isinstance(values, str) else list(values)
        if not all(isinstance(v, str) and v.strip() for v in listed):
            raise ValidationError(name, "must be ids (non-blank strings)")
        if listed:
            query[f"{name}[]"] = listed
    return query


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request ready to send, how to read its answer, and whether it may be repeated."""

    request: Request
    parse: Parse
    idempotent: bool
    #: For ``get``/``post``/...: the last answer seen, returned when retries run out.
    last: list[Response]

    def answer_after(self, error: ResponseError) -> RestResponse:
        """For ``get``/``post``/...: once retries ran out on a 429 or 5xx, that last answer
        is what the caller gets; any other error (no answer at all) is raised."""
        if not self.last:
            raise error
        return RestResponse(self.request, self.last[-1])


@dataclass(frozen=True, slots=True)
class Pages:
    """One walk of a list endpoint, sans-IO: iterate for each page's request, in order, and
    hand each page's decoded body to :meth:`take` for its results.

    The sync and async ``iter_all`` differ only in whether they await the delivery between
    the two; when to stop, the next query and the truncation warning are decided here.
    """

    url: str
    pager: protocol.Pager
    page: Callable[[str, Mapping[str, Any]], Prepared]

    def __iter__(self) -> Iterator[Prepared]:
        while (query := self.pager.next_query()) is not None:
            yield self.page(self.url, query)
        if self.pager.truncated:
            logger.warning(
                "stopped listing %s after %d results: PagerDuty serves at most %d"
                " through offset pagination; narrow the query (since/until, filters)"
                " to see the rest",
                self.pager.path,
                self.pager.seen,
                protocol.ITERATION_LIMIT,
            )

    def take(self, body: Any) -> list[Any]:
        return self.pager.take(body)


class APIBase(ClientSettings):
    """Settings both clients share; validated once, at construction."""

    _REGIONS = protocol.REGIONS
    _CREDENTIAL = _config.PAGERDUTY_API_TOKEN
    _ENV_URL = _config.ENV_PAGERDUTY_API_URL

    def _set_credentials(
        self, token: str | Secret, *, oauth: bool, default_from: str | None
    ) -> None:
        self._oauth = bool(oauth)
        self._token = protocol.check_token(token, oauth=self._oauth)
        self.default_from = default_from

    # The token and its kind are checked, and the headers made again, when they are
    # assigned after construction too: a plain string set as the token once showed in
    # full in repr() and failed every request with an AttributeError, and a new token
    # or oauth= was otherwise never sent (the headers are made once).

    @property
    def token(self) -> Secret:
        """The REST API token, held as a :class:`~alertwire.Secret`."""
        return self._token

    @token.setter
    def token(self, value: str | Secret) -> None:
        self._token = protocol.check_token(value, oauth=self._oauth)
        self.default_from = self._default_from  # the headers, with the new token

    @property
    def oauth(self) -> bool:
        """Whether the token is an OAuth access token (``Bearer``) or an API key."""
        return self._oauth

    @oauth.setter
    def oauth(self, value: bool) -> None:
        self._token = protocol.check_token(self._token, oauth=bool(value))
        self._oauth = bool(value)
        self.default_from = self._default_from  # the headers, with the new scheme

    @property
    def default_from(self) -> str | None:
        """The email sent as ``From`` on every request (``None``: no ``From``)."""
        return self._default_from

    @default_from.setter
    def default_from(self, value: str | None) -> None:
        """Settable after construction, as on the official client's session: code that
        did ``session = PagerdutyHook().get_session(); session.default_from = ...`` (the
        hook takes no ``From``) once kept sending none, and PagerDuty refused every
        incident update made with an account key (400, code 2016)."""
        checked = _check_from(value)
        self._headers = protocol.build_headers(self.token, oauth=self.oauth, default_from=checked)
        self._default_from = checked

    def __repr__(self) -> str:
        return f"{type(self).__name__}(token={self.token!r}, base_url={self.base_url!r})"

    @classmethod
    def _env_settings(cls, env: Mapping[str, str] | None) -> dict[str, Any]:
        settings = {"token": cls._CREDENTIAL.from_env(env), **cls._env_destination(env)}
        sender = _config.optional_env(_config.ENV_PAGERDUTY_FROM, env)
        if sender is not None:
            settings["default_from"] = sender
        return settings

    # --- preparing requests -----------------------------------------------------

    def _url(self, path: Path) -> tuple[str, str]:
        """(absolute URL, canonical path) of ``path``."""
        url = protocol.resolve_path(self.base_url, path)
        return url, protocol.canonical_path(self.base_url, url)

    def _request(
        self, method: str, url: str, params: Params, json: Any, headers: Headers
    ) -> Request:
        merged = self._headers
        if headers:
            merged = protocol.build_headers(
                self.token, oauth=self.oauth, default_from=self.default_from, extra=headers
            )
        return protocol.build_request(method, url, merged, params=params, json=json)

    def _raw(
        self, method: str, path: Path, params: Params, json: Any, headers: Headers
    ) -> Prepared:
        """For ``get``/``post``/...: any answer is returned; 429 and 5xx are retried first."""
        url, _ = self._url(path)
        request = self._request(method, url, params, json, headers)
        last: list[Response] = []
        token = self.token

        def parse(response: Response) -> RestResponse:
            response = scrubbed(response, token)
            _log(request, response)
            # The statuses the other methods retry too (429, 5xx): one table, the protocol's.
            if response.status == 429 or 500 <= response.status <= 599:
                last[:] = [response]
                raise protocol.error_for_rest_response(
                    response, method=request.method, url=request.url
                )
            return RestResponse(request, response)

        return Prepared(request, parse, request.method in _IDEMPOTENT, last)

    def _decoded(
        self, method: str, path: Path, params: Params, json: Any, headers: Headers, *, entity: bool
    ) -> Prepared:
        """For ``j*`` (the JSON body) and ``r*`` (``entity=True``: the entity, unwrapped)."""
        url, canonical = self._url(path)
        request_wrapper, response_wrapper = protocol.entity_wrappers(method, canonical)
        if entity and json is not None:
            json = protocol.wrap(json, request_wrapper)
        request = self._request(method, url, params, json, headers)
        token = self.token
        what = f"{request.method} {canonical}"

        def parse(response: Response) -> Any:
            _log(request, response)
            if not 200 <= response.status <= 299:
                raise protocol.error_for_rest_response(
                    response, method=request.method, url=request.url, token=token
                )
            body = protocol.json_of(scrubbed(response, token), method=request.method, url=url)
            if not entity or body is None:
                return body
            return protocol.unwrap(body, response_wrapper, what=what)

        return Prepared(request, parse, request.method in _IDEMPOTENT, [])

    def _pages(self, path: Path, params: Params, page_size: int | None) -> Pages:
        """The walk of a list endpoint; its arguments are checked now, not at the first page."""
        url, canonical = self._url(path)
        return Pages(url, protocol.Pager.for_path(canonical, params, page_size), self._page)

    def _page(self, url: str, query: Mapping[str, Any]) -> Prepared:
        return self._decoded("GET", url, query, None, None, entity=False)

    # --- the alerting loop's queries ------------------------------------------------

    @staticmethod
    def _incident_key_query(dedup_key: str, service_ids: Ids) -> dict[str, Any]:
        if not isinstance(dedup_key, str) or not dedup_key.strip():
            raise ValidationError("dedup_key", "is required and must not be blank")
        query = {"incident_key": dedup_key, "date_range": "all"}
        return _id_filters(query, service_ids=service_ids)

    @staticmethod
    def _incidents_query(statuses: Sequence[str], service_ids: Ids) -> dict[str, Any]:
        """The query of ``incidents``/``open_incidents``.

        Without ``since``/``until``, PagerDuty lists the incidents of the last 30 days
        only, whatever their status: an incident acknowledged 40 days ago and still
        open was missing from ``open_incidents()`` (and ``alertwire incidents list``).
        Open incidents are asked for with ``date_range=all``; a listing that includes
        resolved ones keeps PagerDuty's window, which bounds it.
        """
        bad = [s for s in statuses if s not in _STATUSES]
        if bad or not statuses:
            raise ValidationError("statuses", "must be triggered, acknowledged or resolved")
        query: dict[str, Any] = {"statuses[]": list(statuses)}
        if "resolved" not in statuses:
            query["date_range"] = "all"
        return _id_filters(query, service_ids=service_ids)

    @staticmethod
    def _oncalls_query(
        schedule_ids: Ids, escalation_policy_ids: Ids, user_ids: Ids, params: Params
    ) -> dict[str, Any]:
        return _id_filters(
            dict(params or {}),
            schedule_ids=schedule_ids,
            escalation_policy_ids=escalation_policy_ids,
            user_ids=user_ids,
        )

    @staticmethod
    def _incidents(found: Any) -> list[dict[str, Any]]:
        """A ``GET /incidents`` walk's results, checked to be incidents (each an object with
        an id): the alerting loop's callers read them, so a malformed answer is said here."""
        return protocol.incidents_from(found, what="GET /incidents")

    @classmethod
    def _pick(cls, incidents: Any) -> dict[str, Any] | None:
        found = protocol.pick_incident(cls._incidents(incidents))
        return dict(found) if found is not None else None

    def _status_updates(
        self, incidents: Iterable[str | Mapping[str, Any]], status: str
    ) -> list[Prepared]:
        """One bulk ``PUT /incidents`` per 250 incidents (PagerDuty's limit); each answer is
        checked to be incidents, as :meth:`_incidents` checks a listing's."""
        updates = [
            self._decoded(
                "PUT", "/incidents", None, protocol.status_updates(batch, status), None, entity=True
            )
            for batch in protocol.chunks(_ids(incidents))
        ]
        return [replace(update, parse=_updated_incidents(update.parse)) for update in updates]


@contextlib.contextmanager
def partial_updates(updated: Sequence[Any], status: str) -> Iterator[None]:
    """Around the bulk updates of one ``acknowledge``/``resolve``: when one fails after
    others succeeded (more than 250 incidents make several requests), a WARNING says how
    many changed already, which the error, about the failed request alone, does not.

    Any exception counts: a caller's timeout (``asyncio.timeout``, ``wait_for``) that
    cancels the call part way, or a Ctrl-C, once left no word of the updates made.
    """
    try:
        yield
    except BaseException as exc:
        if updated:
            # A refusal the service answered (4xx) changed nothing of its request; a lost
            # connection, a 5xx or a cancelled call may have been applied all the same.
            status_code = getattr(exc, "http_status", None)
            refused = isinstance(status_code, int) and status_code < 500
            logger.warning(
                "the first %d incidents given were set to %s before this failure; the others"
                + (
                    " were not changed"
                    if refused
                    else " were not confirmed (the request in flight may have applied)"
                ),
                len(updated),
                status,
            )
        raise


def _updated_incidents(parse: Parse) -> Parse:
    """``parse`` of a bulk ``PUT /incidents``, its result checked to be incidents."""
    return lambda response: protocol.incidents_from(parse(response), what="PUT /incidents")


def _log(request: Request, response: Response) -> None:
    # The URL and status only: the headers carry the token.
    logger.debug("%s %s -> HTTP %d", request.method, request.url, response.status)
