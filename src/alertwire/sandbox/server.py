"""Running the sandbox: an aiohttp server on a loopback port, plain or TLS.

:class:`SandboxServer` is the asyncio form (the CLI runs it until a signal);
:class:`alertwire.sandbox.Sandbox` wraps it in a background thread for tests
and the demo.

The sandbox binds to loopback unless told otherwise: it accepts any routing
key and shows what it received, so on a network address it would be an open
door. A non-loopback host needs ``allow_non_loopback=True``
(``--allow-non-loopback``).
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Final

from aiohttp import web

from .._errors import ConfigurationError
from ..protocol._http import is_loopback_host
from ._tls import ServerTLS, make_server_tls
from .app import SandboxControl, build_app

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "SandboxServer"]

DEFAULT_HOST: Final = "127.0.0.1"
#: The CLI's port; the Python API picks a free one.
DEFAULT_PORT: Final = 8765
#: How long a shutdown waits for requests in flight.
SHUTDOWN_TIMEOUT: Final = 2.0


def check_host(host: str, *, allow_non_loopback: bool) -> None:
    if not is_loopback_host(host) and not allow_non_loopback:
        raise ConfigurationError(
            f"refusing to serve the sandbox on {host!r:.60}, which is not a loopback address:"
            " it accepts any key and shows what it receives. Pass --allow-non-loopback"
            " (allow_non_loopback=True) if that is really what you want"
        )


class SandboxServer:
    """One sandbox server; ``await start()``, then ``url``, ``control``; ``await stop()``."""

    def __init__(
        self,
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        tls: bool = False,
        ca_file: str | Path | None = None,
        rate_limit: int | None = None,
        allow_non_loopback: bool = False,
    ) -> None:
        check_host(host, allow_non_loopback=allow_non_loopback)
        if rate_limit is not None and rate_limit < 1:
            raise ConfigurationError("rate_limit must be at least 1 event per minute")
        if not 0 <= port <= 65535:
            raise ConfigurationError(f"port must be between 0 and 65535, got {port}")
        self.host = host
        self.requested_port = port
        self.tls = tls
        self._ca_file = ca_file
        self.control = SandboxControl(rate_limit=rate_limit)
        self._runner: web.AppRunner | None = None
        self._tls: ServerTLS | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the sandbox is not running")
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def rate_limit(self) -> int | None:
        """The rate limit in force (events per minute per key), if any."""
        limiter = self.control.sink.limiter
        return None if limiter is None else limiter.limit

    @property
    def ca_file(self) -> Path | None:
        """The CA certificate to trust (``None`` without TLS)."""
        return None if self._tls is None else self._tls.ca_file

    async def start(self) -> None:
        if self.tls:
            self._tls = make_server_tls(self.host, self._ca_file)
        runner = web.AppRunner(
            build_app(self.control), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        site = web.TCPSite(
            runner,
            self.host,
            self.requested_port,
            ssl_context=None if self._tls is None else self._tls.context,
            reuse_address=True,
        )
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            self._cleanup_tls()
            raise ConfigurationError(
                f"cannot listen on {self.host}:{self.requested_port}: {exc.strerror or exc}"
            ) from exc
        self._runner = runner
        server = site._server
        sockets: list[socket.socket] = list(getattr(server, "sockets", None) or [])
        self.port = int(sockets[0].getsockname()[1]) if sockets else self.requested_port

    async def stop(self) -> None:
        if self._runner is not None:
            server = self._runner.server
            transports = [] if server is None else [h.transport for h in server.connections]
            await self._runner.cleanup()
            self._runner = None
            # A TLS connection is closed gracefully: close_notify, then a wait for the
            # client's, which an idle keep-alive client never sends. The loop stops long
            # before that would time out, leaving the socket open: abort what is left.
            for transport in transports:
                if transport is not None:
                    transport.abort()
        self._cleanup_tls()

    def _cleanup_tls(self) -> None:
        if self._tls is not None and self._tls.temp_dir is not None:
            shutil.rmtree(self._tls.temp_dir, ignore_errors=True)
