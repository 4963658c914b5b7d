"""BigPanda and AsyncBigPanda: the Alerts API clients.

Built exactly like the PagerDuty clients: the model validates, the sans-IO
:mod:`alertwire.protocol.bigpanda` builds and reads the wire format, the
shared sender retries per the one :class:`~alertwire.RetryPolicy`, a
transport moves bytes. The two classes share everything but the ``await``.

``send`` takes one alert (one request) or a list of alerts (one batch
request, oldest first): a batch is accepted or refused as a whole, so its
result is one :class:`~alertwire.EventResult`, like a single alert's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import _config
from ._checked import Checked
from ._client_base import AsyncClientBase, ClientSettings, SyncEventsClientBase
from ._delivery import DEFAULT_TIMEOUT
from ._errors import ConfigurationError
from ._retry import RetryPolicy
from ._secret import Secret
from .models.bigpanda import BigPandaAlert, BigPandaStatus
from .models.bigpanda_rules import require_app_key, require_token
from .models.results import EventResult
from .protocol import bigpanda as protocol
from .transport import Request, Response, Verify

__all__ = ["AsyncBigPanda", "BigPanda"]

#: What ``send`` accepts: one alert, or a batch of them.
Alerts = BigPandaAlert | Sequence[BigPandaAlert]


class _BigPandaBase(ClientSettings):
    """Configuration both clients share; validated once, at construction."""

    _REGIONS = protocol.REGIONS
    _CREDENTIAL = _config.BIGPANDA_TOKEN
    _ENV_URL = _config.ENV_BIGPANDA_URL

    #: The org token (held as a Secret) and the app key; checked when assigned after
    #: construction too (docs/rest.md).
    token = Checked(require_token)
    app_key = Checked(require_app_key)

    def _set_credentials(self, token: str | Secret, app_key: str) -> None:
        self.token = token
        self.app_key = app_key

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(token={self.token!r}, app_key={self.app_key!r},"
            f" base_url={self.base_url!r})"
        )

    @classmethod
    def _env_settings(
        cls, env: Mapping[str, str] | None, overrides: Mapping[str, Any]
    ) -> dict[str, Any]:
        settings: dict[str, Any] = {}
        if "token" not in overrides:
            settings["token"] = cls._CREDENTIAL.from_env(env)
        if "app_key" not in overrides:
            app_key = _config.optional_env(_config.ENV_BIGPANDA_APP_KEY, env)
            if app_key is None:
                raise ConfigurationError(f"no BigPanda app key: set {_config.ENV_BIGPANDA_APP_KEY}")
            settings["app_key"] = app_key
        settings.update(cls._env_destination(env))
        return {**settings, **overrides}

    def _request(self, alerts: Alerts) -> Request:
        if isinstance(alerts, BigPandaAlert):
            return protocol.build_request(self.base_url, self.token, self.app_key, alerts)
        if isinstance(alerts, (str, bytes, Mapping)) or not isinstance(alerts, Sequence):
            raise TypeError(
                f"send() takes a BigPandaAlert or a list of them, not {type(alerts).__name__}"
            )
        for item in alerts:
            if not isinstance(item, BigPandaAlert):
                raise TypeError(
                    f"send() takes a list of BigPandaAlert, not one holding {type(item).__name__}"
                )
        return protocol.build_batch_request(self.base_url, self.token, self.app_key, alerts)

    def _parse(self, response: Response) -> EventResult:
        return protocol.parse_response(response, token=self.token)

    def _delivery(self, alerts: Alerts) -> tuple[Request, Callable[[Response], EventResult]]:
        return self._request(alerts), self._parse


class BigPanda(_BigPandaBase, SyncEventsClientBase):
    """Synchronous BigPanda Alerts API client (HTTP/1.1 on sockets, keep-alive, thread-safe).

    ``region`` is ``"us"`` or ``"eu"``; ``base_url`` overrides it (http://
    only to loopback, e.g. the sandbox). ``http_client`` may be an
    ``httpx.Client`` or any :class:`~alertwire.transport.Transport`, such as a
    :class:`~alertwire.transport.MockTransport` in unit tests
    (docs/transports.md); ``verify`` takes a CA bundle path for a private CA.
    """

    def __init__(
        self,
        token: str | Secret,
        app_key: str,
        *,
        region: str = "us",
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        http_client: Any = None,
        verify: Verify = True,
    ) -> None:
        self._set_credentials(token, app_key)
        self._configure(region=region, base_url=base_url, timeout=timeout, retry=retry)
        self._connect(http_client, verify=verify)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> BigPanda:
        """Read ``ALERTWIRE_BIGPANDA_TOKEN`` (or ``_FILE``), ``ALERTWIRE_BIGPANDA_APP_KEY``,
        ``ALERTWIRE_BIGPANDA_URL`` and ``ALERTWIRE_REGION``; keyword overrides win."""
        return cls(**cls._env_settings(env, overrides))

    def send(self, alerts: Alerts) -> EventResult:
        """Deliver one alert, or a list as one batch; raises a DeliveryError when it can't."""
        return self._sender.deliver(*self._delivery(alerts))

    def alert(self, status: BigPandaStatus | str, **fields: Any) -> EventResult:
        """Shortcut: ``send(BigPandaAlert(status, **fields))``."""
        return self.send(BigPandaAlert(status, **fields))


class AsyncBigPanda(_BigPandaBase, AsyncClientBase):
    """Asynchronous BigPanda Alerts API client (asyncio keep-alive connections, opened on first send).

    Use as ``async with AsyncBigPanda(token, app_key) as bp:`` so the
    connection pool is closed; ``http_client`` may be an ``httpx.AsyncClient``,
    an :class:`~alertwire.transport.AsyncTransport` or a
    :class:`~alertwire.transport.MockTransport` (docs/transports.md).
    """

    def __init__(
        self,
        token: str | Secret,
        app_key: str,
        *,
        region: str = "us",
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        http_client: Any = None,
        verify: Verify = True,
        max_connections: int = 100,
    ) -> None:
        self._set_credentials(token, app_key)
        self._configure(region=region, base_url=base_url, timeout=timeout, retry=retry)
        self._connect(http_client, verify=verify, pool_size=max_connections)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> AsyncBigPanda:
        """Read the same variables as :meth:`BigPanda.from_env`."""
        return cls(**cls._env_settings(env, overrides))

    async def send(self, alerts: Alerts) -> EventResult:
        """Deliver one alert, or a list as one batch; raises a DeliveryError when it can't."""
        return await self._get_sender().deliver(self._request(alerts), self._parse)

    async def alert(self, status: BigPandaStatus | str, **fields: Any) -> EventResult:
        """Shortcut: ``await send(BigPandaAlert(status, **fields))``."""
        return await self.send(BigPandaAlert(status, **fields))
