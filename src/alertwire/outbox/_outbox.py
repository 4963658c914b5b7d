"""Outbox: the durable queue in front of PagerDuty and BigPanda.

:meth:`Outbox.enqueue` returns only once the event is on disk (see
:mod:`alertwire.outbox.sqlite` for what that means); :class:`~alertwire.relay.Relay`
delivers it later, at least once, in order per (routing key, dedup key).

Producers put three kinds of things in:

* PagerDuty models (:class:`~alertwire.TriggerAlert` ...): a trigger without a
  dedup key gets one *now* (returned), so a replay after a crash lands on the
  same alert instead of opening a second incident; a trigger or change
  without ``payload.timestamp`` is stamped with the enqueue time, so a late
  delivery still shows when the problem was detected.
* Raw PagerDuty wire bodies: stored byte for byte as the client sent them,
  apart from a dedup key assigned to a keyless trigger. No timestamp is
  stamped there: what the client sent is what is forwarded.
* BigPanda alerts (model or raw body, with the bearer token).
* Events read already (the ingest endpoint): the wire routes parse,
  validate, key and split each request once, and ``prepare_incoming_*``
  store those parts without reading the body again.

Every producer method has a ``prepare_*`` twin returning a :class:`NewEvent`;
:meth:`Outbox.put` stores any number of them in one transaction, which is
how concurrent ingest requests share one fsync (group commit).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

from .. import _config, _json
from .._closing import Closing
from .._errors import ConfigurationError, ValidationError
from .._numbers import is_whole
from .._record_methods import slot_setters
from .._secret import Secret
from ..models.bigpanda import BigPandaAlert
from ..models.bigpanda_rules import (
    DEFAULT_PRIMARY_PROPERTIES,
    DEFAULT_SECONDARY_PROPERTIES,
    require_app_key,
    require_token,
)
from ..models.limits import ROUTING_KEY_OVERHEAD
from ..models.pagerduty import (
    AcknowledgeAlert,
    Change,
    PagerDutyEvent,
    ResolveAlert,
    TriggerAlert,
    wire_timestamp,
)
from ..models.pagerduty_rules import check_event_size, raise_for, require_routing_key
from ..protocol import bigpanda as bp_protocol
from ..protocol import pagerduty as pd_protocol
from ..protocol.http import check_base_url
from .machine import (
    DeadEvent,
    Kind,
    NewEvent,
    QueueStats,
    RowGroup,
    RowParts,
    Store,
    order_key,
    order_keys,
    route_key,
)

__all__ = ["DEFAULT_FILENAME", "Enqueued", "Outbox", "default_outbox_path"]

DEFAULT_FILENAME: Final = "outbox.sqlite3"


def default_outbox_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/alertwire/outbox.sqlite3`` (default ``~/.local/state``)."""
    env = os.environ if env is None else env
    state = env.get("XDG_STATE_HOME", "").strip()
    base = Path(state) if state and Path(state).is_absolute() else Path.home() / ".local" / "state"
    return base / "alertwire" / DEFAULT_FILENAME


#: Seconds a SQLite outbox operation waits for a lock another process holds
#: (default 10): a cron job that would rather fail fast (exit 5) may lower it.
ENV_BUSY_TIMEOUT: Final = "ALERTWIRE_OUTBOX_BUSY_TIMEOUT"
_MAX_BUSY_TIMEOUT: Final = 3600.0


def _busy_timeout(env: Mapping[str, str] | None) -> float | None:
    text = _config.optional_env(ENV_BUSY_TIMEOUT, env)
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds <= _MAX_BUSY_TIMEOUT:
        raise ConfigurationError(
            f"{ENV_BUSY_TIMEOUT} must be a number of seconds above 0 and at most"
            f" {_MAX_BUSY_TIMEOUT:g}; got {text!r:.20}"
        )
    return seconds


#: The start of a libpq keyword/value connection string (``host=db dbname=alerts
#: password=...``): a setting a path never starts with (``./host=x`` is a path). Every
#: keyword libpq takes (PostgreSQL 17's list): one that starts the string (say
#: ``keepalives=1 host=db password=...``) must not make it a file name either.
_KEYWORD_DSN: Final = re.compile(
    r"\s*(host|hostaddr|port|dbname|user|password|passfile|require_auth|channel_binding"
    r"|connect_timeout|client_encoding|options|application_name|fallback_application_name"
    r"|keepalives|keepalives_idle|keepalives_interval|keepalives_count|tcp_user_timeout"
    r"|replication|gssencmode|sslmode|sslnegotiation|requiressl|sslcompression|sslcert"
    r"|sslkey|sslpassword|sslcertmode|sslrootcert|sslcrl|sslcrldir|sslsni|requirepeer"
    r"|ssl_min_protocol_version|ssl_max_protocol_version|krbsrvname|gsslib|gssdelegation"
    r"|service|target_session_attrs|load_balance_hosts)\s*=",
    re.IGNORECASE,
)


def store_for(
    target: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None = None,
    *,
    create: bool = True,
) -> Store:
    """The store a path or URL names: the one place a new backend is hooked in.

    ``None`` means ``$ALERTWIRE_OUTBOX``, else :func:`default_outbox_path`.
    ``sqlite:///abs/path`` and plain paths select SQLite; ``postgresql://``
    the PostgreSQL store. ``create=False`` (the read-and-tend commands) opens
    an existing SQLite outbox only and creates nothing; a PostgreSQL database
    is never created by us anyway (a mistyped one fails to connect), and its
    ``alertwire_*`` tables are created on first use either way.
    ``$ALERTWIRE_OUTBOX_BUSY_TIMEOUT`` sets a SQLite store's busy timeout.
    """
    if target is None:
        target = _config.optional_env(_config.ENV_OUTBOX, env) or default_outbox_path(env)
    text = os.fspath(target)
    if text.startswith("sqlite://"):
        path = text.removeprefix("sqlite://")
        if not path.startswith("/"):
            raise ConfigurationError(
                "an outbox URL must be sqlite:///absolute/path (three slashes); got a relative one"
            )
        text = path
    elif text.startswith(("postgresql://", "postgres://")):
        try:
            from . import postgres  # type: ignore[attr-defined,unused-ignore]
        except ImportError:
            raise ConfigurationError(
                "a PostgreSQL outbox is not available in this alertwire"
                " (install alertwire[postgres])"
            ) from None
        store: Store = postgres.PostgresStore(text)
        return store
    elif _KEYWORD_DSN.match(text):
        # Taken as a path, it would become a file named after the connection string,
        # password and all. Never quoted back: it may hold one.
        raise ConfigurationError(
            "the outbox looks like a PostgreSQL keyword/value connection string"
            " (host=... dbname=...); give it as a postgresql://user@host/dbname URL"
            " (the password in PGPASSWORD or ~/.pgpass), or write ./ before a file"
            " path that really starts that way"
        )
    elif "://" in text:
        raise ConfigurationError(
            "the outbox must be a file path, sqlite:///path or postgresql://...;"
            f" got a URL with scheme {text.split('://', 1)[0]!r:.20}"
        )
    from .sqlite import SQLiteStore

    busy_timeout = _busy_timeout(env)
    if busy_timeout is None:
        return SQLiteStore(text, create=create)
    return SQLiteStore(text, create=create, busy_timeout=busy_timeout)


@dataclass(frozen=True, slots=True, init=False)
class Enqueued:
    """An event stored durably: its outbox id and (alerts only) the dedup key it carries."""

    id: int
    dedup_key: str | None

    def __init__(self, id: int, dedup_key: str | None) -> None:
        # Through the slots' setters, not object.__setattr__: one per event enqueued.
        _set_id(self, id)
        _set_dedup_key(self, dedup_key)


_set_id, _set_dedup_key = slot_setters(Enqueued)


def _json_object(body: bytes) -> dict[str, Any]:
    """A raw wire body parsed as the JSON object both destinations expect, or a
    :class:`ValidationError` on ``body``."""
    try:
        wire = _json.loads(body)
    except _json.JSONDecodeError:
        raise ValidationError("body", "must be a JSON object") from None
    if not isinstance(wire, dict):
        raise ValidationError("body", "must be a JSON object")
    return wire


def _base_url(base_url: str | None) -> str | None:
    return None if base_url is None else check_base_url(base_url, setting="base_url")


def _rebuilt(event: Any, **changes: Any) -> Any:
    """The same event with some fields set, validated again by the model itself."""
    values = {f.name: getattr(event, f.name) for f in fields(event) if not f.name.startswith("_")}
    values.update(changes)
    return type(event)(**values)


#: The identity of an alert (trigger, acknowledge, resolve) is its dedup key, after this.
_ALERT_IDENTITY: Final = "alert:"


def _pd_identity(kind: Kind, dedup_key: str | None) -> str:
    """Alerts are ordered per dedup key; change events are context, never ordered
    against each other, so each is its own key (they still share the route's pacing)."""
    if kind == "pagerduty.change" or dedup_key is None:
        return f"change:{pd_protocol.new_dedup_key()}"
    return _ALERT_IDENTITY + dedup_key


def _property(wire: Mapping[str, Any], named: object, defaults: Sequence[str]) -> list[Any]:
    name = named if isinstance(named, str) and named else None
    if name is None:
        name = next((n for n in defaults if wire.get(n) not in (None, "")), None)
    return [name, None if name is None else wire.get(name)]


def _bigpanda_identity(wire: Mapping[str, Any]) -> str:
    """BigPanda has no dedup key: an alert *is* its primary and secondary property
    values (``host`` + ``check`` by default), and a later status for the same pair
    updates the same alert. So those values, resolved as BigPanda resolves them,
    order a key; ``incident_identifier`` only groups alerts into incidents and
    does not identify one."""
    identity = _property(wire, wire.get("primary_property"), DEFAULT_PRIMARY_PROPERTIES)
    identity += _property(wire, wire.get("secondary_property"), DEFAULT_SECONDARY_PROPERTIES)
    return "bigpanda:" + _json.dumps(identity, no_floats=True).decode("utf-8")


def _incoming_pagerduty_row(
    body: bytes, key: Secret, change: bool, dedup_key: str | None, url: str | None
) -> NewEvent:
    kind: Kind = "pagerduty.change" if change else "pagerduty.alert"
    route = route_key(kind, key)
    return NewEvent(
        kind=kind,
        route=route,
        order_key=order_key(route, _pd_identity(kind, dedup_key)),
        credential=key,
        body=body,
        base_url=url,
        dedup_key=dedup_key,
    )


def _incoming_bigpanda_rows(
    items: Sequence[tuple[Mapping[str, Any], bytes]], token: Secret, app_key: str, url: str | None
) -> list[NewEvent]:
    route = route_key("bigpanda.alert", token, app_key)
    return [
        NewEvent(
            kind="bigpanda.alert",
            route=route,
            order_key=order_key(route, _bigpanda_identity(alert)),
            credential=token,
            body=data,
            base_url=url,
        )
        for alert, data in items
    ]


_PD_MODELS: Final = (TriggerAlert, AcknowledgeAlert, ResolveAlert, Change)


def _require_model(event: object) -> None:
    if not isinstance(event, _PD_MODELS):
        raise TypeError(
            "enqueue() takes a TriggerAlert, AcknowledgeAlert, ResolveAlert or Change,"
            f" not {type(event).__name__}"
        )


class _PagerDutyRows:
    """Rows for PagerDuty models to one routing key and destination.

    What is the same for every row is worked out once, not once per event:
    the routing key was validated by the caller and is encoded once, the base
    URL is checked at the first row (so a batch reports a wrong event type
    before a wrong URL, as one event would), the route digests and the enqueue
    timestamp are computed once. Each row's body is the model's cached wire
    bytes with the routing key, a missing dedup key and a missing timestamp
    spliced in (:func:`~alertwire.protocol.pagerduty.body_with`), not a rebuilt
    model.
    """

    __slots__ = (
        "_alert_order_key",
        "_alert_route",
        "_base_url",
        "_key",
        "_key_bytes",
        "_key_member",
        "_now",
        "_order_keys",
        "_routes",
        "_size_delta",
        "_stamp",
        "_url",
        "_url_checked",
    )

    def __init__(self, key: Secret, base_url: str | None, now: datetime | None) -> None:
        self._key = key
        self._key_bytes = pd_protocol.routing_key_member(key)
        self._base_url = base_url
        self._url: str | None = None
        self._url_checked = False
        self._now = now
        self._stamp: bytes | None = None
        #: The bytes ``"routing_key":"<key>",`` takes in a body (the model's size check
        #: counts room for them separately, in ``ROUTING_KEY_OVERHEAD``).
        self._key_member = len(self._key_bytes) + 1
        self._routes: dict[Kind, str] = {
            kind: route_key(kind, key) for kind in ("pagerduty.alert", "pagerduty.change")
        }
        self._order_keys = {kind: order_keys(route) for kind, route in self._routes.items()}
        # For row's common case, looked up once here rather than per event.
        self._alert_route = self._routes["pagerduty.alert"]
        self._alert_order_key = self._order_keys["pagerduty.alert"]
        #: What the model's size check counts for a body beyond the body built here.
        self._size_delta = ROUTING_KEY_OVERHEAD - self._key_member

    def _stamped(self) -> bytes:
        """The enqueue timestamp as a payload member, fixed at the first event it stamps."""
        stamp = self._stamp
        if stamp is None:
            text = wire_timestamp(self._now or datetime.now(timezone.utc))
            assert text is not None  # a datetime always has a wire form
            stamp = self._stamp = pd_protocol.timestamp_member(text)
        return stamp

    def row(self, event: PagerDutyEvent) -> NewEvent:
        """The row for ``event``, or a ValidationError / TypeError for it alone."""
        kind, key, dedup_key, body = self.parts(event)
        # Positional, in NewEvent's field order (kind, route, order_key, credential,
        # body, base_url, dedup_key): a third cheaper than keywords, once per event.
        return NewEvent(kind, self._routes[kind], key, self._key, body, self._url, dedup_key)

    def group(self, events: Iterable[PagerDutyEvent]) -> RowGroup | list[NewEvent]:
        """The rows for ``events``, in order: a :class:`RowGroup` (each row's own parts
        only) when they are all alerts (one route), else one :class:`NewEvent` each."""
        parts = [self.parts(e) for e in events]
        if any(kind != "pagerduty.alert" for kind, _, _, _ in parts):
            routes, url = self._routes, self._url
            return [NewEvent(k, routes[k], o, self._key, b, url, d) for k, o, d, b in parts]
        return RowGroup("pagerduty.alert", self._alert_route, self._key, self._url, parts)

    def parts(self, event: PagerDutyEvent) -> RowParts:
        """What is ``event``'s own in its row (kind, order key, dedup key, body), or a
        ValidationError / TypeError for it alone."""
        if (
            type(event) is TriggerAlert
            and event.dedup_key is None
            and event.timestamp is None
            and self._url_checked
        ):
            # The common event (every event of a batch after the first, every keyless
            # line of ``send --queue``): what _parts does for it, with nothing asked that
            # is known already (its kind, its route, that it needs a dedup key and the
            # stamp, the base URL checked), in one call into the wire module, not
            # three. The benchmark's 100-event enqueue_many (callgrind, user space):
            # preparing a row 33.1k -> 28.7k instructions (docs/cli.md, send --queue).
            dedup_key = pd_protocol.new_dedup_key()
            body = pd_protocol.new_trigger_body(
                event.wire_bytes, self._key_bytes, dedup_key, self._stamp or self._stamped()
            )
            problems = check_event_size(len(body) + self._size_delta)
            if problems:
                raise_for(problems)
            return (
                "pagerduty.alert",
                self._alert_order_key(_ALERT_IDENTITY + dedup_key),
                dedup_key,
                body,
            )
        return self._parts(event)

    def _parts(self, event: PagerDutyEvent) -> RowParts:
        kind: Kind = "pagerduty.alert"
        stamp: bytes | None = None
        if event.__class__ is TriggerAlert:  # the common event, its kind known without asking
            if event.timestamp is None:
                stamp = self._stamp or self._stamped()
        else:
            _require_model(event)
            if isinstance(event, Change):
                kind = "pagerduty.change"
            if isinstance(event, (TriggerAlert, Change)) and event.timestamp is None:
                stamp = self._stamp or self._stamped()
        if not self._url_checked:
            self._url, self._url_checked = _base_url(self._base_url), True
        body, dedup_key = pd_protocol.body_with(event, self._key_bytes, stamp)
        # The model's own size check, applied to the event with the fields set here
        # (the check rebuilding the model would make). An event given nothing (its
        # own dedup key and timestamp) passes it, as its model did.
        problems = check_event_size(len(body) - self._key_member + ROUTING_KEY_OVERHEAD)
        if problems:
            raise_for(problems)
        return kind, self._order_keys[kind](_pd_identity(kind, dedup_key)), dedup_key, body


def _event_ids(ids: object) -> list[int]:
    """Outbox ids as given to :meth:`Outbox.retry`, or a ValidationError naming ``ids``."""
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise ValidationError(
            "ids", f"must be a list of outbox ids (whole numbers), got {type(ids).__name__}"
        )
    checked = list(ids)
    for event_id in checked:
        if not is_whole(event_id):
            raise ValidationError(
                "ids", f"must hold whole numbers, got {type(event_id).__name__} {event_id!r:.40}"
            )
        if not 1 <= event_id <= _MAX_EVENT_ID:  # beyond it, SQLite raised OverflowError
            raise ValidationError(
                "ids", f"must hold outbox ids (1 to {_MAX_EVENT_ID}), got {event_id!r:.40}"
            )
    return checked


#: The largest id a store can hold (a signed 64-bit integer, in SQLite and PostgreSQL).
_MAX_EVENT_ID: Final = 2**63 - 1


class Outbox(Closing):
    """A durable outbox. ``Outbox(path)`` for SQLite, :meth:`Outbox.open` for a path or URL.

    Thread-safe (the store keeps one connection per thread). Credentials are
    stored in the file, which is owner-only; they never appear in a repr, a
    log line or an error.
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, store: Store | None = None
    ) -> None:
        self.store: Store = store if store is not None else store_for(path)

    @classmethod
    def open(
        cls,
        target: str | os.PathLike[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        create: bool = True,
    ) -> Outbox:
        """A path, ``sqlite:///path`` or ``postgresql://...``; ``None``: the default.

        ``create=False``: an existing outbox only; a missing SQLite file is an
        :class:`~alertwire.OutboxError` at the first operation, and nothing is created.
        """
        return cls(store=store_for(target, env, create=create))

    @property
    def location(self) -> str:
        return self.store.location

    def __repr__(self) -> str:
        return f"Outbox({self.location!r})"

    def close(self) -> None:
        """Let go of the store's connections; every operation after it raises OutboxError.

        Safe while other threads use the outbox (a relay's store thread, a producer
        inside :meth:`enqueue`): an operation under way finishes first, on SQLite
        waited for at most the busy timeout (a connection still busy then is closed
        by its own thread as the operation ends). Closed means closed: an outbox
        does not reopen itself behind its owner's back; open a new one instead.
        Stop a :class:`~alertwire.relay.Relay` before closing its outbox: the
        outcomes of its sends in flight could not be recorded, and those events
        would be sent again after their lease.
        """
        self.store.close()

    # ---------------------------------------------------------------- preparing rows

    @staticmethod
    def prepare_pagerduty(
        event: PagerDutyEvent,
        *,
        routing_key: str | Secret,
        base_url: str | None = None,
        now: datetime | None = None,
    ) -> NewEvent:
        """A row for a PagerDuty model: dedup key assigned, timestamp stamped if absent."""
        _require_model(event)
        return Outbox.pagerduty_preparer(routing_key, base_url=base_url, now=now)(event)

    @staticmethod
    def pagerduty_preparer(
        routing_key: str | Secret,
        *,
        base_url: str | None = None,
        now: datetime | None = None,
    ) -> Callable[[PagerDutyEvent], NewEvent]:
        """:meth:`prepare_pagerduty` for many events to one routing key and destination.

        What is the same for every event is worked out once, not per event:
        the routing key is validated here, the base URL checked at the first
        event, the route digested once, and an event without a timestamp is
        stamped with ``now``, else with the time the first such event was
        prepared (so a batch shares one enqueue time, as
        :meth:`enqueue_many` does). Each call returns one row or raises for
        that event alone, so a caller streaming events (``send --queue``)
        keeps one bad event from spoiling the others.
        """
        return _PagerDutyRows(require_routing_key(routing_key), base_url, now).row

    @staticmethod
    def prepare_pagerduty_raw(
        body: bytes, *, change: bool = False, base_url: str | None = None
    ) -> NewEvent:
        """A row for a complete PagerDuty wire body, as a client sent it.

        The caller has validated it; this only reads the routing key and
        dedup key from it, gives a keyless trigger its dedup key, and hands
        over to :meth:`prepare_incoming_pagerduty`. (The ingest endpoint has
        parsed the body already and calls that one directly.)
        """
        wire = _json_object(body)
        raw_key = wire.get("routing_key")
        key = require_routing_key(raw_key if isinstance(raw_key, str) else "")
        dedup_key: str | None = None
        if not change:
            value = wire.get("dedup_key")
            dedup_key = value if isinstance(value, str) and value else None
            if dedup_key is None:
                if wire.get("event_action") != "trigger":
                    raise ValidationError("dedup_key", "is required for acknowledge and resolve")
                dedup_key = pd_protocol.new_dedup_key()
                body = pd_protocol.with_dedup_key(body, wire, dedup_key)
        return _incoming_pagerduty_row(bytes(body), key, change, dedup_key, _base_url(base_url))

    @staticmethod
    def prepare_incoming_pagerduty(
        body: bytes,
        *,
        routing_key: Secret,
        change: bool,
        dedup_key: str | None,
        base_url: str | None = None,
    ) -> NewEvent:
        """A row for a PagerDuty event the caller has parsed and validated already.

        Nothing is parsed or checked again, so there is one reading of the
        event, not two that could disagree: ``body`` is stored byte for byte
        and must already carry ``dedup_key`` (an alert's key, assigned by the
        caller with :func:`~alertwire.protocol.pagerduty.with_dedup_key` when
        the client sent none; ``None`` for a change event). The wire routes'
        :class:`~alertwire.wire.IncomingPagerDuty` has exactly these parts.
        """
        return _incoming_pagerduty_row(body, routing_key, change, dedup_key, _base_url(base_url))

    @staticmethod
    def prepare_bigpanda(
        alert: BigPandaAlert,
        *,
        token: str | Secret,
        app_key: str,
        base_url: str | None = None,
        now: datetime | None = None,
    ) -> NewEvent:
        """A row for a BigPanda alert; ``timestamp`` stamped at enqueue if absent."""
        if not isinstance(alert, BigPandaAlert):
            raise TypeError(f"expected a BigPandaAlert, not {type(alert).__name__}")
        secret = require_token(token)
        require_app_key(app_key)
        if alert.timestamp is None:
            stamped = _rebuilt(alert, timestamp=now or datetime.now(timezone.utc))
            assert isinstance(stamped, BigPandaAlert)
            alert = stamped
        body = bp_protocol.build_request("", secret, app_key, alert).body
        route = route_key("bigpanda.alert", secret, app_key)
        return NewEvent(
            kind="bigpanda.alert",
            route=route,
            order_key=order_key(route, _bigpanda_identity(alert.wire_body())),
            credential=secret,
            body=body,
            base_url=_base_url(base_url),
        )

    @staticmethod
    def prepare_bigpanda_raw(
        body: bytes, *, token: str | Secret, base_url: str | None = None
    ) -> list[NewEvent]:
        """Rows for a BigPanda wire body as a client sent it (validated by the caller).

        A batch (``{"app_key": ..., "alerts": [...]}``) becomes one row per
        alert, each ``{"app_key": ..., <the alert's fields>}``, in batch order:
        each alert then keeps its own per-key order and its own outcome (one
        refused alert does not dead-letter its neighbours). A single alert is
        stored byte for byte. (The ingest endpoint has split the batch
        already and calls :meth:`prepare_incoming_bigpanda` directly.)
        """
        secret = require_token(token)  # as every other producer's: a blank one only dead-letters
        wire = _json_object(body)
        app_key = require_app_key(wire.get("app_key"))
        url = _base_url(base_url)
        alerts = wire.get("alerts")
        if alerts is None:
            items: list[tuple[Mapping[str, Any], bytes]] = [(wire, bytes(body))]
        else:
            if not isinstance(alerts, list) or not all(isinstance(a, dict) for a in alerts):
                raise ValidationError("alerts", "must be a list of alert objects")
            items = [
                (merged, _json.dumps(merged, no_floats=True))
                for merged in bp_protocol.batch_items(app_key, alerts)
            ]
        return _incoming_bigpanda_rows(items, secret, app_key, url)

    @staticmethod
    def prepare_incoming_bigpanda(
        alerts: Iterable[tuple[Mapping[str, Any], bytes]],
        *,
        token: Secret,
        app_key: str,
        base_url: str | None = None,
    ) -> list[NewEvent]:
        """Rows for BigPanda alerts the caller has parsed, validated and split already.

        Each item is one alert as stored: its fields (a complete single-alert
        body, a batch's ``app_key`` included) and the exact bytes to store;
        nothing is parsed or checked again. The wire routes'
        :class:`~alertwire.wire.IncomingBigPanda` has exactly these parts
        (``zip(request.alerts, request.bodies)``).
        """
        return _incoming_bigpanda_rows(list(alerts), token, app_key, _base_url(base_url))

    # ---------------------------------------------------------------- storing rows

    def put(self, rows: Sequence[NewEvent]) -> list[Enqueued]:
        """Store prepared rows in ONE transaction (one fsync for all): all or none."""
        ids = self.store.enqueue_many(rows, now=time.time())
        return [Enqueued(i, r.dedup_key) for i, r in zip(ids, rows, strict=True)]

    @property
    def can_put_now(self) -> bool:
        """Whether :meth:`put_now` can ever store (the store has a non-waiting write:
        SQLite's ``enqueue_many_now``; a PostgreSQL commit is a network round trip,
        never one to make on an event loop)."""
        return callable(getattr(self.store, "enqueue_many_now", None))

    def put_now(self, rows: Sequence[NewEvent]) -> list[Enqueued] | None:
        """:meth:`put` if the store's write lock is free this instant, else ``None``
        (nothing stored, nothing waited for; always ``None`` without
        :attr:`can_put_now`). The ingest endpoint's idle-time commit on its event
        loop (docs/ingest.md, "Throughput"), which must not wait for a lock another
        process holds."""
        now_write = getattr(self.store, "enqueue_many_now", None)
        if now_write is None:
            return None
        ids: list[int] | None = now_write(rows, now=time.time())
        if ids is None:
            return None
        return [Enqueued(i, r.dedup_key) for i, r in zip(ids, rows, strict=True)]

    def enqueue(
        self, event: PagerDutyEvent, *, routing_key: str | Secret, base_url: str | None = None
    ) -> Enqueued:
        """Store one PagerDuty event durably; returns its id and dedup key."""
        return self.put(
            [self.prepare_pagerduty(event, routing_key=routing_key, base_url=base_url)]
        )[0]

    def enqueue_many(
        self,
        events: Iterable[PagerDutyEvent],
        *,
        routing_key: str | Secret,
        base_url: str | None = None,
    ) -> list[Enqueued]:
        """Store many PagerDuty events in one transaction (group commit), in order."""
        rows = _PagerDutyRows(
            require_routing_key(routing_key), base_url, datetime.now(timezone.utc)
        )
        group = rows.group(events)
        put_group = getattr(self.store, "enqueue_group", None)
        if isinstance(group, list):
            return self.put(group)
        if put_group is None:  # a store without it (PostgreSQL) takes NewEvents
            return self.put(group.events())
        # Straight to the store, without a NewEvent per event (RowGroup says why).
        ids: list[int] = put_group(group, now=time.time())
        return [Enqueued(i, d) for i, (_, _, d, _) in zip(ids, group.parts, strict=True)]

    def enqueue_raw(
        self, body: bytes, *, change: bool = False, base_url: str | None = None
    ) -> Enqueued:
        """Store one complete PagerDuty wire body (see :meth:`prepare_pagerduty_raw`)."""
        return self.put([self.prepare_pagerduty_raw(body, change=change, base_url=base_url)])[0]

    def enqueue_bigpanda(
        self,
        alert: BigPandaAlert,
        *,
        token: str | Secret,
        app_key: str,
        base_url: str | None = None,
    ) -> Enqueued:
        """Store one BigPanda alert durably."""
        row = self.prepare_bigpanda(alert, token=token, app_key=app_key, base_url=base_url)
        return self.put([row])[0]

    def enqueue_bigpanda_many(
        self,
        alerts: Iterable[BigPandaAlert],
        *,
        token: str | Secret,
        app_key: str,
        base_url: str | None = None,
    ) -> list[Enqueued]:
        """Store many BigPanda alerts in one transaction, in the order given."""
        now = datetime.now(timezone.utc)
        rows = [
            self.prepare_bigpanda(a, token=token, app_key=app_key, base_url=base_url, now=now)
            for a in alerts
        ]
        return self.put(rows)

    # ---------------------------------------------------------------- inspecting

    def stats(self) -> QueueStats:
        return self.store.stats()

    def dead(self, *, limit: int | None = None) -> list[DeadEvent]:
        # A limit beyond any row count is no limit; as given, one past a 64-bit integer
        # ended in an OverflowError (SQLite) or "bigint out of range" (PostgreSQL).
        if limit is not None and not is_whole(limit, minimum=0):
            # SQLite reads LIMIT -1 as no limit, PostgreSQL refuses it; a str failed
            # with a bare TypeError.
            raise ValidationError("limit", f"must be a whole number, 0 or more, got {limit!r:.40}")
        if limit is not None and limit >= 2**63:
            limit = None
        return self.store.list_dead(limit=limit)

    def retry(self, ids: Sequence[int] | None = None, *, superseded: bool = False) -> int:
        """Dead letters back to pending (``None``: all); age counts afresh from now.

        A dead letter a later delivered event of its key superseded
        (:attr:`DeadEvent.superseded`) stays dead unless ``superseded``: sent now, it
        would undo that event (a trigger after its resolve re-opens the incident).
        Returns how many went back to pending.

        ``ids`` are whole numbers, checked here for every store: SQLite matched the
        string ``"12"`` to row 12 while the check for superseded ones compared it
        with the number 12, so a superseded trigger was queued again (and re-opened
        its incident); a string ``"12"`` itself was read as the ids 1 and 2."""
        if ids is not None:
            ids = _event_ids(ids)
        return self.store.retry_dead(ids, now=time.time(), superseded=superseded)

    def purge_delivered(self, *, before: datetime) -> int:
        """Delete delivered rows finished before ``before`` (an aware datetime)."""
        if not isinstance(before, datetime) or before.tzinfo is None:
            raise ValidationError("before", "must be a timezone-aware datetime")
        return self.store.purge_delivered(before=before.timestamp())
