"""The HTTP routes the sandbox and the relay's ingest share, fed a :class:`Sink`.

One implementation of reading, parsing, validating and answering, so the
sandbox (a test stand-in) and the ingest endpoint (production) can never
disagree about what PagerDuty or BigPanda accept. Validation is only the
shared rules (:mod:`alertwire.models.pagerduty_rules`,
:mod:`alertwire.models.bigpanda_rules`); nothing here re-states a rule.

Nothing a client sends may yield a 5xx: the parse-and-validate step is
guarded per request, and a failure there (a bug in a rule, some JSON shape
nobody imagined) is logged and answered 400 as unrecognized. The one 5xx is
a sink's :class:`SinkUnavailable` (503 + ``Retry-After``); an unexpected
exception from a sink is answered the same way, because the event was not
kept and a 4xx would tell the client to drop it.

Decisions where the services' behaviour is unconfirmed:

* the Content-Type is not checked (tools send ``application/json``; the
  body decides);
* a top level that is valid JSON but not an object is answered like
  malformed JSON (``Event object format is unrecognized``) with the error
  ``Event object is not a JSON object``;
* BigPanda's token must come in ``Authorization: Bearer``; the
  ``?access_token=`` form BigPanda also takes is refused with 401, because
  query strings end up in logs (the strict choice: a test fails here rather
  than a token leaking in production); the token is checked before the body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NamedTuple, TypeVar

from aiohttp import web

from .. import _json
from .._secret import Secret
from ..models import bigpanda_rules
from ..models.pagerduty_rules import (
    Problem,
    check_alert_event,
    check_change_event,
    check_event_size,
)
from ..protocol.bigpanda import batch_items
from ..protocol.http import BIGPANDA_ALERTS_PATH, ENDPOINT_PATHS
from ..protocol.pagerduty import ALERT_PATH, CHANGE_PATH, new_dedup_key, with_dedup_key
from . import _answers
from ._body import BrokenBody, NotAnObject, Unparseable, parse_object, read_capped
from ._sink import (
    IncomingBigPanda,
    IncomingPagerDuty,
    PagerDutyKind,
    Sink,
    SinkRefused,
    SinkUnavailable,
)

__all__ = ["BIGPANDA_PATH", "WIRE_PATHS", "add_wire_routes", "wire_routes"]

logger = logging.getLogger("alertwire.wire")

#: The paths served are the paths the clients send to (one definition: protocol/http.py).
BIGPANDA_PATH: Final = BIGPANDA_ALERTS_PATH
WIRE_PATHS: Final = ENDPOINT_PATHS
#: The Retry-After given when a sink fails unexpectedly.
SINK_FAILURE_RETRY_AFTER: Final = 5.0

_CHECKS: Final[Mapping[PagerDutyKind, Callable[[Mapping[str, Any]], list[Problem]]]] = {
    "alert": check_alert_event,
    "change": check_change_event,
}


def _closing(response: web.Response) -> web.Response:
    """An answer after which the connection closes: (the rest of) the body was never read."""
    response.force_close()
    return response


def _bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _unparseable_text(exc: Unparseable) -> str:
    """The ``errors`` entry for a body that is not JSON, or is nested too deeply."""
    return _answers.NESTED_TOO_DEEP if exc.too_deep else _answers.PARSE_ERROR


class _Answers(NamedTuple):
    """One API's answers to a body it will not take: unreadable, or against its rules."""

    unrecognized: Callable[..., web.Response]  # (error=PARSE_ERROR)
    invalid: Callable[[Sequence[Problem]], web.Response]


_PAGERDUTY: Final = _Answers(_answers.unrecognized_object, _answers.invalid_event)
_BIGPANDA: Final = _Answers(_answers.bigpanda_unrecognized, _answers.bigpanda_invalid)

_In = TypeVar("_In", IncomingPagerDuty, IncomingBigPanda)


def _checked(
    raw: bytes, size: int, build: Callable[[], _In], answers: _Answers, what: str
) -> _In | web.Response:
    """What ``build`` makes of a body of ``size`` bytes, or the answer saying why it cannot.

    The same order for both APIs: the size first (the connection then closes,
    as the rest of the body was never read), then parsing and the rules.
    """
    too_large = check_event_size(size)
    if too_large:
        return _closing(answers.invalid(too_large))
    try:
        return build()
    except Unparseable as exc:
        return answers.unrecognized(_unparseable_text(exc))
    except NotAnObject:
        return answers.unrecognized(_answers.NOT_AN_OBJECT)
    except _Invalid as exc:
        return answers.invalid(exc.problems)
    except Exception:  # no client input may become a 5xx
        logger.exception("unexpected failure checking a %s request", what)
        return answers.unrecognized()


class _Handlers:
    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    async def alert(self, request: web.Request) -> web.StreamResponse:
        return await self._pagerduty(request, "alert")

    async def change(self, request: web.Request) -> web.StreamResponse:
        return await self._pagerduty(request, "change")

    async def _pagerduty(self, request: web.Request, kind: PagerDutyKind) -> web.StreamResponse:
        try:
            raw, size = await read_capped(request)
        except BrokenBody:
            return _closing(_answers.unrecognized_object())
        incoming = _checked(
            raw, size, lambda: self._pagerduty_event(kind, raw), _PAGERDUTY, f"PagerDuty {kind}"
        )
        if not isinstance(incoming, IncomingPagerDuty):
            return incoming
        refused = await self._deliver(self._sink.accept_pagerduty, incoming)
        if refused is not None:
            return refused
        if incoming.dedup_key is None:
            return _answers.change_accepted()
        return _answers.event_accepted(incoming.dedup_key)

    @staticmethod
    def _pagerduty_event(kind: PagerDutyKind, raw: bytes) -> IncomingPagerDuty:
        body = parse_object(raw)
        problems = _CHECKS[kind](body)
        if problems:
            raise _Invalid(problems)
        # One event, three cases: a change has no dedup key; an alert keeps the client's,
        # or gets one assigned and spliced into the bytes to forward.
        dedup_key = body.get("dedup_key") if kind == "alert" else None
        wire, assigned = raw, False
        if kind == "alert" and not isinstance(dedup_key, str):
            dedup_key = new_dedup_key()
            wire = with_dedup_key(raw, body, dedup_key)
            body = {**body, "dedup_key": dedup_key}
            assigned = True
        return IncomingPagerDuty(
            kind=kind,
            routing_key=Secret(body["routing_key"]),
            body=body,
            raw=raw,
            wire=wire,
            dedup_key=dedup_key,
            dedup_key_assigned=assigned,
        )

    async def bigpanda(self, request: web.Request) -> web.StreamResponse:
        token = _bearer_token(request)
        if token is None:
            return _closing(
                _answers.bigpanda_unauthorized(
                    "an 'Authorization: Bearer <token>' header with a non-empty token is required"
                )
            )
        try:
            raw, size = await read_capped(request)
        except BrokenBody:
            return _closing(_answers.bigpanda_unrecognized())
        incoming = _checked(
            raw, size, lambda: self._bigpanda_request(Secret(token), raw), _BIGPANDA, "BigPanda"
        )
        if not isinstance(incoming, IncomingBigPanda):
            return incoming
        refused = await self._deliver(
            self._sink.accept_bigpanda, incoming, _answers.bigpanda_refusal
        )
        if refused is not None:
            return refused
        return _answers.bigpanda_accepted()

    @staticmethod
    def _bigpanda_request(token: Secret, raw: bytes) -> IncomingBigPanda:
        body = parse_object(raw)
        problems = bigpanda_rules.check_body(body)
        if problems:
            raise _Invalid(problems)
        app_key = body["app_key"]
        if "alerts" in body:
            alerts = tuple(batch_items(app_key, body["alerts"]))
            return IncomingBigPanda(
                token=token,
                app_key=app_key,
                alerts=alerts,
                raw=raw,
                bodies=tuple(_json.dumps(alert, no_floats=True) for alert in alerts),  # parsed
                batch=True,
            )
        return IncomingBigPanda(
            token=token, app_key=app_key, alerts=(body,), raw=raw, bodies=(raw,)
        )

    @staticmethod
    async def _deliver(
        accept: Callable[[Any], Any],
        incoming: object,
        refusal: Callable[[int, str, str, float | None], web.Response] = _answers.refusal,
    ) -> web.Response | None:
        try:
            await accept(incoming)
        except SinkRefused as exc:
            return refusal(exc.status, exc.label, exc.message, exc.retry_after)
        except Exception:  # the event was not kept: tell the client to retry
            logger.exception("the sink failed to keep an event")
            return refusal(
                SinkUnavailable.status,
                SinkUnavailable.label,
                "The event could not be stored; retry later",
                SINK_FAILURE_RETRY_AFTER,
            )
        return None


class _Invalid(Exception):  # internal signal, never escapes this module
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s)")


def wire_routes(sink: Sink) -> list[web.RouteDef]:
    """The three routes, bound to ``sink``: add them to any ``aiohttp.web.Application``."""
    handlers = _Handlers(sink)
    return [
        web.post(ALERT_PATH, handlers.alert),
        web.post(CHANGE_PATH, handlers.change),
        web.post(BIGPANDA_PATH, handlers.bigpanda),
    ]


def add_wire_routes(app: web.Application, sink: Sink) -> None:
    app.add_routes(wire_routes(sink))
