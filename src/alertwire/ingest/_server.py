"""The ingest server: the wire routes on the outbox sink, plus ``/healthz`` and ``/metrics``.

It runs on the relay's own event loop (``Relay(..., listen=...)``,
``alertwire relay --listen``), so one process accepts and delivers.

Security decisions:

* loopback by default; any other address needs TLS (``tls=True``, the
  sandbox's throwaway CA, or a certificate and key): keys travel in request
  bodies and tokens in headers, and must never cross a network in clear;
* allow-lists (:mod:`._allow`) answer 403 to any other routing key or token,
  so a reachable relay is not an open forwarder; a non-loopback address
  without them is refused unless ``allow_any_client=True``
  (``--allow-any-client``) says so knowingly;
* pending events are bounded, in total and per key (:mod:`._limits`): 429
  with ``Retry-After`` beyond, so nobody can fill the disk;
* slow clients meet read deadlines and a connection cap
  (:func:`alertwire.wire.start_server`);
* no access log (paths may carry ``?access_token=``), metric labels are
  destination and reason words only, and answers never echo a credential.

Stopping (:meth:`IngestServer.stop`): the listening socket closes first (new
connections are refused), requests in flight are answered (their commits
finish), then the writer thread stops.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import ssl
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from .. import _json
from .._config import check_port, parse_host_port
from .._errors import ConfigurationError
from .._relay_loop import (
    RELAY_LOOP_HEADER,
    RELAY_PATH_HEADER,
    Refusal,
    RelayLoopGuard,
)
from ..outbox import Outbox
from ..outbox.machine import Destination, Store
from ..outbox.metrics import OutboxMetrics
from ..protocol.http import is_loopback_host, served_url
from ..wire import (
    BIGPANDA_PATH,
    WIRE_PATHS,
    RunningServer,
    ServerLimits,
    Throttle,
    add_wire_routes,
    bigpanda_refusal,
    refusal,
    retry_after_value,
    start_server,
)
from ._allow import Allowlist
from ._commit import DEFAULT_MAX_BATCH, GroupCommitter
from ._health import WriteProbe
from ._limits import (
    DEFAULT_MAX_PENDING,
    DEFAULT_MAX_PENDING_PER_KEY,
    BoundedSink,
    PendingBound,
    check_bound,
)
from ._sink import UNAVAILABLE_RETRY_AFTER, OutboxSink

__all__ = ["DEFAULT_LISTEN_PORT", "IngestConfig", "IngestServer", "parse_listen"]

logger = logging.getLogger("alertwire.ingest")

DEFAULT_LISTEN_PORT: Final = 8765
#: How long a stop waits for requests in flight (each waits for at most one commit).
SHUTDOWN_TIMEOUT: Final = 10.0
#: A client answered on another connection this recently (seconds) may be about to
#: send again, so a lone request is then committed by the writer, not on the loop:
#: with 32 busy senders, all of them sometimes between two requests, commits on the
#: loop otherwise blocked it while the others' requests arrived (docs/ingest.md).
RECENT_ANSWER: Final = 0.01

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_REFUSAL_REASONS: Final = {
    400: "invalid",
    401: "unauthorized",
    403: "forbidden",
    413: "too_large",
    503: "unavailable",
}


#: ``HOST:PORT`` (``[::1]:8765`` for IPv6) -> ``(host, port)``: the package's one parser.
parse_listen = parse_host_port


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestConfig:
    """Where and how the ingest endpoint listens.

    ``tls`` serves https with a throwaway CA written to ``tls_ca_file`` (or a
    temporary file); ``tls_cert`` + ``tls_key`` serve a real certificate.
    ``commit_delay`` (seconds) holds each group commit open to collect more
    events; 0 (the default) commits whatever is waiting at once.
    ``announce`` is called with the URL (and CA file) once listening.
    ``limits``: read deadlines and the connection cap (docs/ingest.md, "Limits").
    ``max_pending`` / ``max_pending_per_key``: events stored and not yet
    delivered, at most, in total and per routing key (``None``: no bound);
    beyond them the answer is 429 with ``Retry-After`` (:mod:`._limits`).
    ``allow_any_client``: listen on a non-loopback address without an
    allow-list, knowingly (otherwise refused: anyone who reaches the address
    could send through the relay).
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_LISTEN_PORT
    tls: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca_file: str | None = None
    allow_routing_keys: Allowlist | None = None
    allow_bigpanda_tokens: Allowlist | None = None
    commit_delay: float = 0.0
    max_batch: int = DEFAULT_MAX_BATCH
    announce: Callable[[str, str | None], None] | None = None
    limits: ServerLimits = field(default_factory=ServerLimits)
    max_pending: int | None = DEFAULT_MAX_PENDING
    max_pending_per_key: int | None = DEFAULT_MAX_PENDING_PER_KEY
    allow_any_client: bool = False

    @classmethod
    def coerce(cls, listen: IngestConfig | str | tuple[str, int]) -> IngestConfig:
        if isinstance(listen, IngestConfig):
            return listen
        host, port = parse_listen(listen) if isinstance(listen, str) else listen
        return cls(host=host, port=port)

    @property
    def uses_tls(self) -> bool:
        return self.tls or self.tls_cert is not None

    def check(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigurationError("--tls-cert and --tls-key go together")
        if self.tls and self.tls_cert is not None:
            raise ConfigurationError("--tls (a throwaway CA) and --tls-cert are alternatives")
        check_port(self.port)
        check_bound("max_pending", self.max_pending)
        check_bound("max_pending_per_key", self.max_pending_per_key)
        if not is_loopback_host(self.host) and not self.uses_tls:
            raise ConfigurationError(
                f"refusing to listen on {self.host!r:.60}, which is not a loopback address,"
                " without TLS: routing keys and tokens would cross the network in clear."
                " Add --tls (or --tls-cert/--tls-key), and an allow-list"
                " (--allow-routing-keys) so the relay is not an open forwarder"
                " (or --allow-any-client to accept any key knowingly)"
            )
        if (
            not is_loopback_host(self.host)
            and self.allow_routing_keys is None
            and self.allow_bigpanda_tokens is None
            and not self.allow_any_client
        ):
            raise ConfigurationError(
                f"refusing to listen on {self.host!r:.60}, which is not a loopback address,"
                " without an allow-list: anyone who reaches it could send through this relay."
                " Add --allow-routing-keys/--allow-bigpanda-tokens, or --allow-any-client"
                " (allow_any_client=True) to accept any key knowingly"
            )


class IngestServer:
    """``await start()``; ``url``, ``ca_file``; ``await stop()``. Runs on the caller's loop."""

    def __init__(
        self,
        outbox: Outbox | Store,
        config: IngestConfig,
        *,
        metrics: OutboxMetrics | None = None,
        on_stored: Callable[[], None] | None = None,
        loop_guard: RelayLoopGuard | None = None,
    ) -> None:
        config.check()
        self.config = config
        #: The relay on this loop's mark and downstream (``Relay(listen=...)``): a request
        #: marked by it, or by a relay it delivers to, would loop; refused with 400.
        self.loop_guard = loop_guard
        self.outbox = outbox if isinstance(outbox, Outbox) else Outbox(store=outbox)
        self.metrics = metrics if metrics is not None else OutboxMetrics(self.outbox.store)
        self.committer = GroupCommitter(
            self.outbox.put,
            put_now=self.outbox.put_now if self.outbox.can_put_now else None,
            alone=self._alone,
            max_batch=config.max_batch,
            delay=config.commit_delay,
        )
        self.sink = OutboxSink(
            self.outbox,
            allow_routing_keys=config.allow_routing_keys,
            allow_bigpanda_tokens=config.allow_bigpanda_tokens,
            metrics=self.metrics,
            committer=self.committer,
            on_stored=on_stored,
        )
        self.bound = PendingBound(
            self.outbox.store,
            max_total=config.max_pending,
            max_per_key=config.max_pending_per_key,
            run=self.committer.call,
        )
        self.bounded = BoundedSink(self.sink, self.bound, metrics=self.metrics)
        self._probe = WriteProbe(self.outbox.store)
        #: Refusals are logged at most once per interval per (destination, reason).
        self._refusals_logged = Throttle()
        self._running: RunningServer | None = None
        #: Connections dropped for a slow or surplus client, by reason: one count per
        #: metrics registry, so a relay that listens again keeps counting, not re-registering.
        self.connections_dropped = _dropped_counts(self.metrics)
        self._temp_dir: Path | None = None
        self._ca_file: Path | None = None
        self.port: int | None = None

    def _alone(self) -> bool:
        """No request but the caller's is arriving or being handled, and no other
        client was answered just now (``Guards.alone``): only then may a commit run
        on the event loop (``GroupCommitter``)."""
        running = self._running
        return running is not None and running.guards.alone(RECENT_ANSWER)

    @property
    def url(self) -> str:
        return served_url(
            "the ingest server", self.config.host, self.port, tls=self.config.uses_tls
        )

    @property
    def ca_file(self) -> str | None:
        """With ``tls=True``: the throwaway CA certificate clients should trust."""
        return None if self._ca_file is None else str(self._ca_file)

    # ------------------------------------------------------------ the application

    def build_app(self) -> web.Application:
        metrics = self.metrics

        @web.middleware
        async def count_refusals(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path not in WIRE_PATHS:
                return await handler(request)
            destination: Destination = "bigpanda" if request.path == BIGPANDA_PATH else "pagerduty"
            guard = self.loop_guard
            sender = None if guard is None else request.headers.get(RELAY_LOOP_HEADER)
            if guard is not None and sender is not None:
                why = guard.refusal(destination, sender)
                if why is not None:
                    metrics.refused.labels(destination, "loop").inc()
                    loop_answer = _looped(destination, why)
                    self._log_refusal(request, destination, "loop", loop_answer.status, loop_answer)
                    return loop_answer
            try:
                response = await handler(request)
            except web.HTTPException as exc:  # 405 for a GET on a wire path
                metrics.refused.labels(destination, "method").inc()
                self._log_refusal(request, destination, "method", exc.status, None)
                raise exc
            if guard is not None and sender is not None and response.status < 300:
                # Another relay delivering here: tell it which relays lie behind this one.
                response.headers[RELAY_PATH_HEADER] = guard.path(destination)
            # A 429 is the pending bound's, counted and logged there with its reason.
            if response.status >= 400 and response.status != 429:
                reason = _REFUSAL_REASONS.get(response.status, str(response.status))
                metrics.refused.labels(destination, reason).inc()
                # A store failure (503) is logged by the sink itself, at ERROR.
                if response.status != 503:
                    self._log_refusal(request, destination, reason, response.status, response)
            return response

        app = web.Application(middlewares=[count_refusals])
        add_wire_routes(app, self.bounded if self.bound.active else self.sink)
        app.add_routes([web.get("/healthz", self._healthz), web.get("/metrics", self._metrics)])
        return app

    def _log_refusal(
        self,
        request: web.Request,
        destination: str,
        reason: str,
        status: int,
        response: web.StreamResponse | None,
    ) -> None:
        """A refused request, at WARNING: the client was told, the relay's operator too.

        A tool whose events are all refused (a mistyped routing key, a field it
        fills wrongly) otherwise showed only in a counter. At most one line per
        10 s per destination and reason, with the number held back. The line
        names the first of the answer's ``errors`` (our own rule texts: a field
        and its rule, never a value of the request's, so never a key or token)
        and the peer; nothing of the request itself.
        """
        self._refusals_logged.log(
            logger,
            logging.WARNING,
            f"{destination}:{reason}",
            "event=ingest_refused reason=%s destination=%s status=%d peer=%s error=%r;"
            " nothing stored",
            reason,
            destination,
            status,
            request.remote or "-",
            _first_error(response),
        )

    async def health(self) -> str | None:
        """``None`` when the outbox takes writes, else why not, in the store's words.

        A failed commit makes the endpoint unhealthy for ``Retry-After``
        seconds (what the refused clients were told), even if a probe's one
        small write would fit; after that, or after a successful commit, the
        store's own probe (:meth:`~alertwire.outbox.machine.Store.check_writable`,
        its failure put in words by :meth:`~alertwire.outbox.machine.Store.explain`)
        alone decides, so a cleared fault shows without traffic. Nothing here
        asks which store it is.
        """
        failure = self.sink.last_failure
        if failure is not None and time.monotonic() - failure[1] < UNAVAILABLE_RETRY_AFTER:
            # A commit just failed: a small probe write may still fit where events did not.
            return failure[0]
        return await self.committer.call(self._probe.probe)

    async def _healthz(self, request: web.Request) -> web.Response:
        try:
            reason = await self.health()
        except RuntimeError:  # the writer thread is gone: shutting down
            reason = "the relay is shutting down"
        if reason is None:
            return web.json_response({"status": "ok"}, dumps=_dumps)
        return web.json_response(
            {"status": "unavailable", "reason": f"the outbox cannot store events: {reason}"},
            status=503,
            headers={"Retry-After": retry_after_value(UNAVAILABLE_RETRY_AFTER)},
            dumps=_dumps,
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        # The queue gauges read the store: off the event loop.
        data = await asyncio.get_running_loop().run_in_executor(None, self.metrics.exposition)
        response = web.Response(body=data)
        response.headers["Content-Type"] = self.metrics.content_type
        return response

    # ------------------------------------------------------------ life cycle

    def _ssl_context(self) -> ssl.SSLContext | None:
        config = self.config
        if config.tls:
            from ..wire import make_server_tls

            made = make_server_tls(config.host, config.tls_ca_file)
            self._temp_dir, self._ca_file = made.temp_dir, made.ca_file
            return made.context
        if config.tls_cert is not None and config.tls_key is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            try:
                context.load_cert_chain(config.tls_cert, config.tls_key)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigurationError(
                    f"cannot load --tls-cert/--tls-key: {getattr(exc, 'strerror', None) or exc}"
                ) from None
            return context
        return None

    async def start(self) -> None:
        config = self.config
        if (
            not is_loopback_host(config.host)
            and config.allow_routing_keys is None
            and config.allow_bigpanda_tokens is None
        ):  # allow_any_client: said knowingly, still worth a line in the log
            logger.warning(
                "event=open_forwarder host=%s: no allow-list (--allow-any-client); anyone"
                " who reaches this address can send through this relay",
                config.host,
            )
        context = self._ssl_context()
        self.committer.start()
        try:
            running = await start_server(
                self.build_app(),
                host=config.host,
                port=config.port,
                ssl_context=context,
                limits=config.limits,
                shutdown_timeout=SHUTDOWN_TIMEOUT,
            )
        except ConfigurationError:
            await self.committer.close()
            self._cleanup_tls()
            raise
        self._running = running
        running.guards.counts = self.connections_dropped  # counted where /metrics reads
        self.port = running.port
        logger.info("event=ingest_listening url=%s", self.url)
        if config.announce is not None:
            config.announce(self.url, self.ca_file)

    async def stop(self) -> None:
        """Refuse new connections, answer requests in flight, commit, stop the writer."""
        if self._running is not None:
            running, self._running = self._running, None
            await running.stop()
            await self.committer.close()
            self._probe.close()
            logger.info(
                "event=ingest_stopped stored=%d commits=%d",
                self.committer.rows,
                self.committer.commits,
            )
        self._cleanup_tls()

    def _cleanup_tls(self) -> None:
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None


_DROPPED: weakref.WeakKeyDictionary[Any, dict[str, int]] = weakref.WeakKeyDictionary()


def _dropped_counts(metrics: OutboxMetrics) -> dict[str, int]:
    counts = _DROPPED.get(metrics.registry)
    if counts is None:
        counts = _DROPPED[metrics.registry] = {}
        metrics.registry.register(_DroppedConnections(counts))
    return counts


class _DroppedConnections:
    """``alertwire_ingest_connections_dropped_total{reason}``: slow heads and bodies closed,
    connections refused beyond the cap (``slow_head``, ``slow_body``, ``over_cap``)."""

    def __init__(self, counts: dict[str, int]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily(
            "alertwire_ingest_connections_dropped",
            "Connections closed for a slow request head or body, or refused beyond the cap",
            labels=["reason"],
        )
        for reason in ("slow_head", "slow_body", "over_cap"):
            family.add_metric([reason], self._counts.get(reason, 0))
        yield family

    def describe(self) -> list[Any]:
        return []


#: Why a relay's delivery is refused: the sending relay dead-letters the event with it.
LOOP_REFUSALS: Final[dict[Refusal, str]] = {
    "itself": (
        "this relay was about to deliver the event to itself: its upstream URL (--pagerduty-url,"
        " --bigpanda-url, $ALERTWIRE_PAGERDUTY_URL or $ALERTWIRE_BIGPANDA_URL, or the URL the"
        " event was queued with) is its own --listen address; point it at the service"
    ),
    "ring": (
        "the relay that sent this event is one this relay delivers to, directly or through"
        " other relays: relays pointed at each other in a ring pass every event round for"
        " ever; point one of them at the service"
    ),
}


def _looped(destination: Destination, why: Refusal) -> web.Response:
    """400, in the destination's error shape: not retryable, so the relay dead-letters."""
    if destination == "bigpanda":
        return bigpanda_refusal(400, "invalid event", LOOP_REFUSALS[why], None)
    return refusal(400, "invalid event", LOOP_REFUSALS[why], None)


def _first_error(response: web.StreamResponse | None) -> str:
    """The first of an error answer's ``errors`` (else its ``message``), at most 200 characters."""
    body = getattr(response, "body", None)
    if not isinstance(body, bytes):
        return "-"
    try:
        parsed = _json.loads(body)
    except _json.JSONDecodeError:
        return "-"
    if not isinstance(parsed, dict):
        return "-"
    errors = parsed.get("errors")
    first = errors[0] if isinstance(errors, list) and errors else parsed.get("message")
    return first[:200] if isinstance(first, str) else "-"


def _dumps(value: Any) -> str:
    return _json.dumps(value, no_floats=True).decode("utf-8")
