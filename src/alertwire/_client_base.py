"""What every client shares, whatever its destination: settings and sender life cycle.

The PagerDuty, BigPanda and REST clients differ only in their credentials and
protocol module; how a constructor's connection options are resolved, how a
sync client owns its sender, and how an async client creates its own on first
use (its connections belong to the running loop) and closes it on ``async with`` exit
(:mod:`alertwire._closing`), is written here once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from . import _config
from ._checked import Checked
from ._closing import AsyncClosing, Closing
from ._delivery import AsyncSender, SyncSender, async_transport_for, sync_transport_for
from ._errors import ValidationError
from ._numbers import is_real, is_whole
from ._retry import RetryPolicy
from .protocol.http import check_base_url, resolve_base_url
from .transport import Request, Response, Verify, check_verify

if TYPE_CHECKING:
    from threading import Event

    from .models.results import EventResult

__all__ = ["AsyncClientBase", "ClientSettings", "SyncClientBase", "SyncEventsClientBase"]

#: Sync clients share one pool between threads; this many connections per origin.
DEFAULT_POOL_SIZE = 32
DEFAULT_MAX_CONNECTIONS = 100


def _url(value: Any) -> str:
    """An assigned ``base_url``, checked as the constructor checks one."""
    return check_base_url(value, setting="base_url")


def _policy(value: Any) -> RetryPolicy:
    """``retry``: a :class:`RetryPolicy`, ``None`` for the default one.

    The official client's ``retry`` is a dict of statuses: given here, it failed only
    inside the first send that needed a retry, with an AttributeError.
    """
    if value is None:
        return RetryPolicy()
    if not isinstance(value, RetryPolicy):
        raise ValidationError(
            "retry", f"must be an alertwire.RetryPolicy, got {type(value).__name__}"
        )
    return value


def _seconds(timeout: Any) -> float:
    """``timeout`` checked: a number of seconds above 0, at most a day.

    A transport given 0 or less times every attempt out at once, which reads as
    a retryable network error (a relay, or a script, would retry what can never
    work); a string, NaN, infinity or a number too large for a socket's timeout
    (``--timeout 1e300``) failed inside the first send with a TypeError,
    ValueError or OverflowError. Either is said here, by name.
    """
    if not is_real(timeout) or not 0 < timeout <= _config.MAX_TIMEOUT:  # NaN fails it too
        raise ValidationError(
            "timeout",
            f"must be a number of seconds above 0 and at most {_config.MAX_TIMEOUT:g},"
            f" got {timeout!r:.40}",
        )
    return timeout


class ClientSettings:
    """Destination, timeout and retry policy: validated once, at construction.

    Every constructor takes the same connection options after its credentials;
    it hands the destination options to :meth:`_configure` and the transport
    options to the sync or async base's ``_connect``, so how each is resolved
    (region or URL, default policy, which transport) is decided here only.
    """

    #: The destination's regions (name -> base URL), set by each destination's base class.
    _REGIONS: ClassVar[Mapping[str, str]]
    #: For ``from_env``: the credential's variables, and the variable that overrides the base URL.
    _CREDENTIAL: ClassVar[_config.Credential]
    _ENV_URL: ClassVar[str]

    def _configure(
        self, *, region: str, base_url: str | None, timeout: float, retry: RetryPolicy | None
    ) -> None:
        self._base_url = resolve_base_url(region, base_url, regions=self._REGIONS)
        self.timeout = timeout
        self.retry = retry

    # ``base_url``, ``timeout`` and ``retry`` may be set after construction, as on the
    # official PagerDuty client's session (``session.timeout = 30``), and are checked as
    # the constructor checks them: the senders made from timeout and retry once kept
    # the old values, so such an assignment silently did nothing, and an assigned
    # base_url skipped the check that keeps keys off ``http://`` beyond loopback.

    base_url = Checked(_url)
    timeout = Checked(_seconds, changed=lambda client: client._settings_changed())
    retry = Checked(_policy, changed=lambda client: client._settings_changed())

    def _settings_changed(self) -> None:
        """Pass new settings on to the senders made from them (the sender bases, after
        this class in a client's MRO, do that)."""
        after = getattr(super(), "_settings_changed", None)
        if after is not None:
            after()

    @classmethod
    def _env_destination(cls, env: Mapping[str, str] | None) -> dict[str, Any]:
        """``base_url`` from ``_ENV_URL`` and ``region`` from ``ALERTWIRE_REGION``, the
        ones that are set: every client's ``from_env`` reads its destination this way."""
        settings: dict[str, Any] = {}
        url = _config.optional_env(cls._ENV_URL, env)
        if url is not None:
            settings["base_url"] = url
        region = _config.optional_env(_config.ENV_REGION, env)
        if region is not None:
            settings["region"] = region.lower()
        return settings


class SyncClientBase(Closing):
    """A synchronous client: one sender over the pooled HTTP/1.1 (or the caller's httpx) transport."""

    timeout: float
    retry: RetryPolicy

    def _connect(
        self, http_client: Any, *, verify: Verify, pool_size: int = DEFAULT_POOL_SIZE
    ) -> None:
        transport = sync_transport_for(http_client, verify=verify, pool_size=pool_size)
        self._sender = SyncSender(transport, timeout=self.timeout, retry=self.retry)

    def _settings_changed(self) -> None:
        sender: SyncSender | None = getattr(self, "_sender", None)  # none yet while constructing
        if sender is not None:
            sender.timeout, sender.retry = self.timeout, self.retry

    def close(self) -> None:
        self._sender.close()


class SyncEventsClientBase(SyncClientBase):
    """A synchronous client of an events API (PagerDuty's, BigPanda's): one event, one
    request, one :class:`~alertwire.EventResult`.

    Each client says how an event becomes a request and how the answer is read
    (:meth:`_delivery`); sending it, with or without a stop, is written here once.
    """

    def _delivery(self, event: Any) -> tuple[Request, Callable[[Response], EventResult]]:
        """The request for ``event`` and the parser of its answer (checks the event's type)."""
        raise NotImplementedError

    def send(self, event: Any) -> EventResult:
        """Deliver one event, retrying per the policy; raises a DeliveryError when it can't."""
        return self._sender.deliver(*self._delivery(event))

    def _send_unless(self, stop: Event, event: Any) -> EventResult:
        """:meth:`send` for a thread that the caller may have to stop (Ctrl-C reaches
        only the main thread): once ``stop`` is set, no further try is made and a wait
        for a retry ends at once, raising the last error. ``send_many`` and the CLI's
        ``send`` of many lines use it, so Ctrl-C takes effect within one try (at most
        one ``timeout``) instead of after the retries of every send in flight, which
        then sent again after the interrupt.
        """
        return self._sender.deliver(*self._delivery(event), stop=stop)


class AsyncClientBase(AsyncClosing):
    """An asynchronous client: its sender is made on first send and closed by :meth:`aclose`."""

    timeout: float
    retry: RetryPolicy

    def _connect(
        self, http_client: Any, *, verify: Verify, pool_size: int = DEFAULT_MAX_CONNECTIONS
    ) -> None:
        """Remember the transport options: connections belong to a loop, so the sender (and
        its connection pool) is made on the first send, by :meth:`_get_sender`. The limit is
        checked now, as every other setting is, not by the pool at the first send."""
        if not is_whole(pool_size, minimum=1):
            raise ValidationError(
                "max_connections", f"must be a whole number, at least 1, got {pool_size!r:.40}"
            )
        self._http_client = http_client
        self._verify = check_verify(verify)
        self._max_connections = pool_size
        self._sender: AsyncSender | None = None

    def _get_sender(self) -> AsyncSender:
        if self._sender is None:
            transport = async_transport_for(
                self._http_client, verify=self._verify, pool_size=self._max_connections
            )
            self._sender = AsyncSender(transport, timeout=self.timeout, retry=self.retry)
        return self._sender

    def _settings_changed(self) -> None:
        sender: AsyncSender | None = getattr(self, "_sender", None)  # made on first send
        if sender is not None:
            sender.timeout, sender.retry = self.timeout, self.retry

    async def aclose(self) -> None:
        if self._sender is not None:
            await self._sender.aclose()
            self._sender = None
