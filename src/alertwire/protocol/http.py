"""Sans-IO HTTP rules every destination shares.

No sockets here: a :class:`~alertwire.transport.Request` is what a transport
must send, a :class:`~alertwire.transport.Response` is what came back (both
are :mod:`alertwire.transport`'s public values). The status-code policy
(which answers are success, which error class, what is retryable) is written
once in :func:`error_for_response` and used for PagerDuty and BigPanda alike;
base URLs are checked once in :func:`check_base_url`.

Public, for code built on alertwire (an Airflow hook, a custom client, a
transport's tests): the names in ``__all__`` keep their meaning.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from .. import __version__, _json
from .._errors import (
    BadRequest,
    ConfigurationError,
    RateLimited,
    ResponseError,
    ServerError,
    Unauthorized,
    UnexpectedResponse,
)
from .._secret import Secret
from ..transport import Response

__all__ = [
    "ENDPOINT_PATHS",
    "JSON_HEADERS",
    "USER_AGENT",
    "base_url_of",
    "check_base_url",
    "error_for_response",
    "is_loopback_host",
    "json_body",
    "parse_retry_after",
    "rate_limited",
    "resolve_base_url",
    "scrubbed",
    "scrubbed_text",
    "served_url",
]

#: Who is calling, on every request the library makes. A service's logs (and a
#: proxy's or firewall's) can then tell alertwire's traffic apart, and edge
#: filters that turn away requests with no ``User-Agent`` at all let it through.
USER_AGENT: Final = f"alertwire/{__version__}"

#: The headers of every JSON request (one object: a transport may convert it once).
JSON_HEADERS: Mapping[str, str] = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "User-Agent": USER_AGENT,
}


def is_loopback_host(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def base_url_of(host: str, port: int, *, tls: bool) -> str:
    """The base URL clients reach a server of ours by (an IPv6 literal goes in brackets)."""
    scheme = "https" if tls else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def served_url(server: str, host: str, port: int | None, *, tls: bool) -> str:
    """:func:`base_url_of` for one of our servers, which has a port only while it runs:
    before it started or after it stopped, ``RuntimeError`` naming ``server``."""
    if port is None:
        raise RuntimeError(f"{server} is not running")
    return base_url_of(host, port, tls=tls)


#: The paths each destination adds to its base URL. Defined here, where the base-URL
#: check reads them, and taken from here by protocol/pagerduty.py (``ALERT_PATH``,
#: ``CHANGE_PATH``) and protocol/bigpanda.py (``ALERTS_PATH``), which import this
#: module: the check refuses exactly the paths requests add. A base URL ending in
#: one is a full endpoint URL, as the services' own pages and Alertmanager's
#: ``url:`` spell it.
PAGERDUTY_ALERT_PATH: Final = "/v2/enqueue"
PAGERDUTY_CHANGE_PATH: Final = "/v2/change/enqueue"
BIGPANDA_ALERTS_PATH: Final = "/data/v2/alerts"
ENDPOINT_PATHS: Final = (PAGERDUTY_ALERT_PATH, PAGERDUTY_CHANGE_PATH, BIGPANDA_ALERTS_PATH)


def check_base_url(url: str, *, setting: str) -> str:
    """A base URL is scheme + host (+ port, + path prefix); ``http://`` only to loopback.

    Keys travel in request bodies and headers: sending them in clear text
    across a network is never right, but a local sandbox or relay on
    loopback is exactly what http:// is for.
    """
    if not isinstance(url, str):  # an int or a Path failed below with an AttributeError
        raise ConfigurationError(f"{setting} must be a URL string, got {type(url).__name__}")
    # A port out of range or not a number, or an unclosed IPv6 bracket, is urllib's
    # ValueError, raised by urlsplit or only when .port is read: at the first send
    # (a traceback, exit 1), or for a queued event inside the relay, for every try
    # until max_age. Refused here, with urllib's words unless they quote the text it
    # took for a port: that may be a password ("https://user:pa/ss@host", whose
    # userinfo ends at the "/", reads "pa" as the port).
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        why = "the port is not a number" if "'" in str(exc) else str(exc)
        raise ConfigurationError(f"{setting} is not a valid URL: {why}") from None
    # Never quoted back whole: it may carry credentials (checked first), and a key
    # given where a URL belongs (arguments swapped) has neither scheme nor host.
    if parts.username or parts.password:
        raise ConfigurationError(f"{setting} must not contain credentials")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        got = f"scheme {parts.scheme[:10]!r}" if parts.scheme else "no scheme"
        raise ConfigurationError(
            f"{setting} must be an http(s) URL with a host, got {got}"
            + ("" if parts.hostname else " and no host")
        )
    if port == 0:
        raise ConfigurationError(f"{setting} is not a valid URL: port 0 cannot be connected to")
    if parts.query or parts.fragment:
        raise ConfigurationError(f"{setting} must not have a query string or fragment")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigurationError(
            f"{setting} uses http:// to {parts.hostname}; keys would travel in clear text."
            " Use https:// (http:// is allowed only to a loopback address)"
        )
    # The endpoint's path is added per event: taken as a base, ".../v2/enqueue" became
    # ".../v2/enqueue/v2/enqueue", a 404 (exit 3), and the relay dead-lettered every
    # event queued to it.
    path = parts.path.rstrip("/")
    for endpoint in ENDPOINT_PATHS:
        if path.endswith(endpoint):
            raise ConfigurationError(
                f"{setting} must be the service's base URL, without {endpoint}"
                " (the path of each request is added to it)"
            )
    return url.strip().rstrip("/")


def resolve_base_url(
    region: str, base_url: str | None, *, regions: Mapping[str, str], setting: str = "base_url"
) -> str:
    """An explicit ``base_url`` (checked), else the service's host for ``region``.

    Every destination has a US and an EU host; which one, and the error for
    an unknown region, are decided here once for all clients.
    """
    if base_url is not None:
        return check_base_url(base_url, setting=setting)
    found = regions.get(region.lower()) if isinstance(region, str) else None
    if found is None:
        names = " or ".join(repr(r) for r in regions)
        raise ConfigurationError(f"region must be {names}, got {region!r:.20}")
    return found


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; junk is ignored."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # "nan" and "inf" parse as floats but are no delay anyone can sleep for.
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        from email.utils import parsedate_to_datetime  # rare path; costs start-up time

        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def json_body(response: Response) -> Any:
    """The body as JSON, or ``None`` when it is not JSON (error bodies may be plain text)."""
    try:
        return _json.loads(response.body)
    except _json.JSONDecodeError:
        return None


def _errors_list(payload: Any) -> list[str]:
    """The service's ``errors``, each quoted as a body is (one line: see ``excerpt``)."""
    if isinstance(payload, Mapping):
        errors = payload.get("errors")
        if isinstance(errors, list):
            return [ResponseError.excerpt(str(e)) for e in errors]
        if isinstance(errors, str):
            return [ResponseError.excerpt(errors)]
    return []


def scrubbed(response: Response, secret: Secret | None) -> Response:
    """The answer with our credential cut out, should the service (or a proxy) quote it."""
    if secret is None or not len(secret):
        return response
    raw = secret.reveal().encode("utf-8")
    if raw not in response.body:
        return response
    return Response(
        response.status, response.headers, response.body.replace(raw, repr(secret).encode("utf-8"))
    )


def scrubbed_text(value: object, secret: Secret | None) -> str:
    """A field of a 2xx answer as a result's text (``status``, ``message``), with our
    credential cut out: a gateway quoting the request in its answer put the key in
    ``EventResult.message``, so in its repr and any log of it. Only free text: an
    identifier the answer gives back (a dedup key) is never rewritten."""
    text = str(value)
    return text if secret is None else secret.scrub(text)


def rate_limited(
    service: str, what: str, retry_after: float | None, detail: str, *, body: str
) -> RateLimited:
    """A 429 as :class:`RateLimited`, worded the same for every API we call: the delay
    the service asked for, when it gave one, goes into the message and ``retry_after``."""
    hint = f"; retry after {retry_after:g} s" if retry_after is not None else ""
    return RateLimited(
        f"{service} rate-limited {what} (HTTP 429){hint}: {detail}",
        retry_after=retry_after,
        body=body,
    )


def timed_out(service: str, what: str, detail: str, *, body: str) -> ServerError:
    """A 408 as a retryable :class:`ServerError`, worded the same for every API we call.

    No service we call defines 408; what sends one is the service's edge or a
    proxy on the way that stopped waiting for the request, so nothing was
    processed and the same request may be sent again (HTTP says a client may
    repeat it). Taken as an undefined status it would dead-letter an alert
    over a passing timeout.
    """
    return ServerError(
        f"{service} (or a proxy on the way) stopped waiting for {what} (HTTP 408): {detail}",
        http_status=408,
        body=body,
    )


def error_for_response(
    response: Response,
    *,
    service: str,
    credential: str = "credential",
    secret: Secret | None = None,
) -> ResponseError:
    """The error a non-success answer means; its text is the service's own, verbatim.

    ``credential`` names what a 401/403 refused, in the service's words
    ("token" for BigPanda). ``secret`` is the key or token the request
    carried: no server should echo it, but a gateway's error page may quote
    the request, and error texts end up in logs, so it is cut out here, the
    one place every client and the relay build their errors.
    """
    response = scrubbed(response, secret)
    status = response.status
    text = response.text
    payload = json_body(response)
    detail = ResponseError.excerpt(text) or "(empty body)"
    if status == 400:
        message = payload.get("message") if isinstance(payload, Mapping) else None
        errors = _errors_list(payload)
        head = f"{service} refused the event (HTTP 400)"
        if errors:
            said = ResponseError.excerpt(str(message)) if message else "invalid event"
            return BadRequest(f"{head}: {said}", errors=errors, body=text)
        return BadRequest(f"{head}: {detail}", body=text)
    if status in (401, 403):
        return Unauthorized(
            f"{service} rejected the {credential} (HTTP {status}): {detail}",
            http_status=status,
            body=text,
        )
    if status == 429:
        retry_after = parse_retry_after(response.header("retry-after"))
        return rate_limited(service, "the event", retry_after, detail, body=text)
    if status == 408:
        return timed_out(service, "the request", detail, body=text)
    if 500 <= status <= 599:
        return ServerError(
            f"{service} had a server error (HTTP {status}): {detail}", http_status=status, body=text
        )
    return UnexpectedResponse(
        f"{service} answered with unexpected HTTP {status}: {detail}", http_status=status, body=text
    )
