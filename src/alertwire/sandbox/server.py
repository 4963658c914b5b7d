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
from pathlib import Path
from typing import Final

from .._config import check_port
from .._errors import ConfigurationError
from .._numbers import is_whole
from .._secret import Secret
from ..protocol.http import is_loopback_host, served_url
from ..wire import RunningServer, ServerLimits, ServerTLS, make_server_tls, start_server
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
        api_token: str | Secret | None = None,
        rest_rate_limit: int | None = None,
        limits: ServerLimits | None = None,
    ) -> None:
        check_host(host, allow_non_loopback=allow_non_loopback)
        # Whole numbers, as the control endpoint's own check has them (sandbox.app):
        # checked for sign only, True was a limit of 1 and "60" a bare TypeError.
        for name, limit, unit in (
            ("rate_limit", rate_limit, "event"),
            ("rest_rate_limit", rest_rate_limit, "request"),
        ):
            if limit is not None and not is_whole(limit, minimum=1):
                raise ConfigurationError(
                    f"{name} must be at least 1 {unit} per minute (a whole number),"
                    f" got {limit!r:.40}"
                )
        if api_token is not None and not Secret(api_token).reveal().strip():
            raise ConfigurationError("api_token must not be blank (omit it to accept any token)")
        check_port(port)
        if ca_file is not None and not tls:
            # Served over plain http, it would write no CA where the caller waits for one.
            raise ConfigurationError("ca_file goes with tls=True (over http there is no CA)")
        self.host = host
        self.requested_port = port
        self.tls = tls
        self._ca_file = ca_file
        self.control = SandboxControl(
            rate_limit=rate_limit,
            api_token=None if api_token is None else Secret(api_token),
            rest_rate_limit=rest_rate_limit,
        )
        #: Read deadlines and the connection cap (docs/sandbox.md, "Limits").
        self.limits = limits if limits is not None else ServerLimits()
        self._running: RunningServer | None = None
        self._tls: ServerTLS | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return served_url("the sandbox", self.host, self.port, tls=self.tls)

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
        try:
            self._running = await start_server(
                build_app(self.control),
                host=self.host,
                port=self.requested_port,
                ssl_context=None if self._tls is None else self._tls.context,
                limits=self.limits,
                shutdown_timeout=SHUTDOWN_TIMEOUT,
            )
        except ConfigurationError:
            self._cleanup_tls()
            raise
        self.port = self._running.port

    async def stop(self) -> None:
        if self._running is not None:
            running, self._running = self._running, None
            await running.stop()
        self._cleanup_tls()

    def _cleanup_tls(self) -> None:
        if self._tls is not None and self._tls.temp_dir is not None:
            shutil.rmtree(self._tls.temp_dir, ignore_errors=True)
