"""``with Sandbox() as sb:``: the sandbox in a background thread, for tests and the demo.

The server runs its own event loop in a daemon thread, so synchronous tests
(and synchronous clients) can use it without an event loop of their own, and
async tests can use it without sharing theirs. The inspection methods read
the state directly (under its lock) instead of over HTTP: same data, same
shortened keys, no round trip.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Final, TypeVar

from .._closing import Closing
from .._secret import Secret
from ..wire import ServerLimits
from .server import DEFAULT_HOST, SandboxServer

__all__ = ["Sandbox"]

T = TypeVar("T")

#: How long start-up and shutdown may take before giving up.
_THREAD_TIMEOUT: Final = 30.0


def _secret(value: str | Secret | None) -> Secret | None:
    return None if value is None else Secret(value)


def _faults(statuses: tuple[int | str, ...], retry_after: float | None) -> list[Any]:
    """``fail_next``'s statuses as fault entries: each with ``retry_after`` when given.

    A ``"reset"`` (a dropped connection) carries no answer, so no Retry-After either.
    """
    if retry_after is None:
        return list(statuses)
    return [s if s == "reset" else {"status": s, "retry_after": retry_after} for s in statuses]


async def _cancel_leftovers() -> None:
    """Cancel what the server left on the loop (idle keep-alive handlers) and let it finish."""
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class Sandbox(Closing):
    """A local PagerDuty + BigPanda on a free loopback port.

    ``url`` is its base URL (give it to a client as ``base_url``): the
    Events API, BigPanda's Alerts API and the REST API subset all live there.
    With ``tls=True`` it is ``https://`` and ``ca_file`` is the CA to trust.
    ``api_token`` makes the REST API accept only that token (by default any
    non-empty token is accepted); ``rest_rate_limit`` answers 429 beyond that
    many REST requests per minute per token.
    """

    def __init__(
        self,
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        tls: bool = False,
        ca_file: str | Path | None = None,
        rate_limit: int | None = None,
        allow_non_loopback: bool = False,
        api_token: str | Secret | None = None,
        rest_rate_limit: int | None = None,
        limits: ServerLimits | None = None,
    ) -> None:
        self._server = SandboxServer(
            host=host,
            port=port,
            tls=tls,
            ca_file=ca_file,
            rate_limit=rate_limit,
            allow_non_loopback=allow_non_loopback,
            api_token=api_token,
            rest_rate_limit=rest_rate_limit,
            limits=limits,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        where = self.url if self._loop is not None else "stopped"
        return f"Sandbox({where})"

    # --- lifecycle -------------------------------------------------------

    def start(self) -> Sandbox:
        if self._loop is not None:
            raise RuntimeError("this sandbox is already running")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="alertwire-sandbox", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            self._call(self._server.start())
        except BaseException:
            self._shutdown_loop()
            raise
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        try:
            self._call(self._server.stop())
        finally:
            self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        if thread.is_alive():
            asyncio.run_coroutine_threadsafe(_cancel_leftovers(), loop).result(_THREAD_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_THREAD_TIMEOUT)
        loop.close()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(_THREAD_TIMEOUT)

    def __enter__(self) -> Sandbox:
        return self.start()

    def close(self) -> None:
        """The same as :meth:`stop`; leaving ``with Sandbox() as sb:`` calls it."""
        self.stop()

    # --- where -----------------------------------------------------------

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def port(self) -> int:
        if self._server.port is None:
            raise RuntimeError("the sandbox is not running")
        return self._server.port

    @property
    def ca_file(self) -> str | None:
        """Path of the CA certificate to trust when ``tls=True``."""
        path = self._server.ca_file
        return None if path is None else str(path)

    # --- inspection and control -------------------------------------------

    def alerts(self, routing_key: str | Secret | None = None) -> list[dict[str, Any]]:
        """One entry per alert (``dedup_key``, ``status``, ``summary``, ...), oldest first."""
        return self._server.control.state.alerts(routing_key=_secret(routing_key))

    def incidents(self, routing_key: str | Secret | None = None) -> list[dict[str, Any]]:
        """One entry per incident (``id``, ``number``, ``title``, ``status``, ``urgency``,
        ``incident_key``, ``service``, ``alerts``...), oldest first."""
        return self._server.control.state.incidents(routing_key=_secret(routing_key))

    def services(self) -> list[dict[str, Any]]:
        """Every service (``id``, ``name``, ``routing_key`` as ``…abcd``), oldest first."""
        return self._server.control.state.services()

    def add_service(self, name: str, routing_key: str | Secret | None = None) -> dict[str, Any]:
        """Give a routing key's service a name before its first event (else ``Service …abcd``)."""
        return self._server.control.state.add_service(name, _secret(routing_key))

    def events(self, routing_key: str | Secret | None = None) -> list[dict[str, Any]]:
        """Every accepted request, in arrival order."""
        return self._server.control.state.events(routing_key=_secret(routing_key))

    def changes(self, routing_key: str | Secret | None = None) -> list[dict[str, Any]]:
        return self._server.control.state.changes(routing_key=_secret(routing_key))

    def bigpanda(self, token: str | Secret | None = None) -> list[dict[str, Any]]:
        return self._server.control.state.bigpanda(token=_secret(token))

    def reset(self) -> None:
        """Forget all alerts, incidents, services, events and faults; restore the rate limits."""
        self._server.control.reset()

    def fail_next(self, *statuses: int | str, retry_after: float | None = None) -> None:
        """Answer the next requests with these statuses (``"reset"`` drops the connection)."""
        self._server.control.configure_faults({"fail_next": _faults(statuses, retry_after)})

    def fail_next_rest(self, *statuses: int | str, retry_after: float | None = None) -> None:
        """Answer the next REST requests with these statuses (a 429 carries ``ratelimit-*``)."""
        self._server.control.configure_faults({"rest_fail_next": _faults(statuses, retry_after)})

    def faults(self, **spec: Any) -> dict[str, Any]:
        """Set any fault (``latency_ms=``, ``reset_next=``, ``fail_rate=``, ``rate_limit=``...)."""
        return self._server.control.configure_faults(spec)
