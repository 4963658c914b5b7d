"""PagerDuty events as immutable, validated values.

Construction is the validation boundary: a :class:`TriggerAlert` that exists
is one PagerDuty will accept (given a valid routing key), so errors surface
where the caller made them, naming the argument, long before a send. The
rules themselves live in :mod:`alertwire.models.pagerduty_rules`; this module
only normalises Python input (enum spellings, datetimes, link shorthands) and
builds the wire body those rules check.

Two deliberate leniencies, because an alert that arrives beats one that does
not: a summary over 1024 characters is shortened (ending in "…", with a
logged warning) rather than refused, and ``source`` defaults to this host's
name. Severity defaults to ``error`` (Flux's choice for an unknown level).
"""

from __future__ import annotations

import enum
import functools
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, TypeVar

from .. import _json, _lazy_exports, _log
from .._errors import ValidationError
from .._record_methods import dataclass_eq, dataclass_hash, dataclass_repr, slot_setters
from ._read_only import ReadOnlyDict
from ._spelling import Spellings
from ._time import format_iso8601, is_iso8601
from .limits import ELLIPSIS, ROUTING_KEY_OVERHEAD, SUMMARY_MAX
from .pagerduty_rules import (
    Problem,
    check_alert_event,
    check_event_nesting,
    check_event_size,
    nesting_problem,
    raise_for,
)

if TYPE_CHECKING:
    from .pagerduty_change import Change
    from .pagerduty_event import PagerDutyEvent
    from .pagerduty_keyed import AcknowledgeAlert, ResolveAlert

__all__ = [
    "AcknowledgeAlert",
    "Change",
    "Image",
    "Link",
    "PagerDutyEvent",
    "ResolveAlert",
    "Severity",
    "TriggerAlert",
    "wire_timestamp",
]


class Severity(str, enum.Enum):
    """PagerDuty's four severities; values are the wire spellings."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: object, *, field_name: str = "severity") -> Severity:
        """Case-insensitive; also the level spellings ``crit``, ``warn`` and ``err``."""
        return _SEVERITY_SPELLINGS.parse(value, field_name)


_SEVERITY_SPELLINGS = Spellings(
    Severity, crit=Severity.CRITICAL, warn=Severity.WARNING, err=Severity.ERROR
)


@functools.cache
def default_source() -> str:
    """This host's name: where an alert comes from unless the caller says otherwise."""
    return socket.gethostname() or "localhost"


def _python_name(wire_field: str) -> str:
    """``payload.class`` -> ``class_``: errors name the argument the caller wrote."""
    name = wire_field.removeprefix("payload.")
    return "class_" if name == "class" else name


def _raise_problems(problems: Sequence[Problem]) -> None:
    raise_for(problems, _python_name)


def _require_str(value: object, name: str, *, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ValidationError(name, f"must be a string, not {type(value).__name__}")
    return value


def _shorten_summary(summary: object) -> str:
    text = _require_str(summary, "summary", optional=False)
    assert text is not None
    if len(text) > SUMMARY_MAX:
        _log.warning(
            "summary of %d characters shortened to %d (PagerDuty refuses longer ones)",
            len(text),
            SUMMARY_MAX,
        )
        text = text[: SUMMARY_MAX - len(ELLIPSIS)] + ELLIPSIS
    return text


def wire_timestamp(value: object) -> str | None:
    """Normalise to the ISO 8601 text sent on the wire (naive datetimes are local time).

    Public because the outbox stamps a queued event with the same wire form
    a model would have given it.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        try:
            return format_iso8601(value)
        except (ValueError, OverflowError):
            # A naive datetime at the edge of the calendar (year 1, year 9999) has no local time.
            raise ValidationError(
                "timestamp", f"is out of range for a local time: {value!r:.60}"
            ) from None
    if is_iso8601(value):
        return value.strip()
    raise ValidationError(
        "timestamp",
        "must be an aware datetime or an ISO 8601 string such as 2015-07-17T08:42:58.315+0000",
    )


def _custom_details(value: object) -> dict[str, Any] | str | None:
    if value is None or isinstance(value, str):
        return value
    if value.__class__ is not dict and not isinstance(value, Mapping):
        raise ValidationError(
            "custom_details", f"must be a mapping (or a string), not {type(value).__name__}"
        )
    # Serialisable and shallow enough are checked once, on the whole event (_wire_bytes):
    # serialising the details here too would walk a large payload twice.
    return dict(value)


#: Values a shallow copy already keeps apart from the caller's, and sends as they are.
_PLAIN_VALUES: Final = frozenset({str, int, bool, type(None)})
#: Keys sent as they are (any other key is sent as its text, and so shown).
_PLAIN_KEYS: Final = frozenset({str})


def plain_details(details: Mapping[str, Any] | str | None) -> bool:
    """Whether ``details`` (as copied at construction) have only string keys and hold
    only strings, integers, bools and ``None`` at the top level, or are a string or
    absent: then the event's body has no float (no NaN to look for) and a shallow copy
    is already what is sent and the caller's no more. Tests in C over the keys and
    values (a loop in Python would cost twice their 0.2 us)."""
    return not isinstance(details, dict) or (
        _PLAIN_VALUES.issuperset(map(type, details.values()))
        and _PLAIN_KEYS.issuperset(map(type, details))
    )


def details_as_sent(details: dict[str, Any], wire_bytes: bytes) -> dict[str, Any]:
    """The details read back from the body; a ValidationError if two keys became one
    (``1`` and ``"1"`` are both sent as ``"1"``: the body would hold the name twice)."""
    sent: dict[str, Any] = _json.loads(wire_bytes)["payload"]["custom_details"]
    if len(sent) != len(details):
        raise ValidationError(
            "custom_details",
            "has keys that are the same once written as JSON text (e.g. 1 and '1')",
        )
    return sent


def read_only_details(
    details: Mapping[str, Any] | str | None, wire_bytes: bytes, *, plain: bool
) -> Mapping[str, Any] | str | None:
    """An event's ``custom_details`` as it keeps them: read-only, and exactly what is sent.

    Why read-only: the wire bytes are made once, at construction (the
    validation boundary), so a change made afterwards could only ever show
    in the repr, never reach PagerDuty. ``event.custom_details["k"] = v``
    raises ``TypeError``; to send other details, build a new event
    (``dataclasses.replace(event, custom_details=...)``).

    Why read back from the bytes unless :func:`plain_details` (``plain``):
    a nested list would otherwise be the caller's own object, which could
    change under the event, and a NaN or a datetime now shows as sent
    (``"NaN"``, an ISO string). Plain details are kept as copied (no parse
    on the common path). Nested lists and objects stay plain lists and
    dicts (frozen ones would no longer equal the lists callers compare them
    with): they are the event's own copy, and changing one changes nothing
    that is sent.
    """
    if not isinstance(details, dict):  # a string, None, or already read-only
        return details
    return ReadOnlyDict(details if plain else details_as_sent(details, wire_bytes))


def _dumps(wire: dict[str, Any], *, no_floats: bool = False) -> bytes:
    """Serialise, turning what JSON cannot hold (a set, a lone surrogate) into a ValidationError.

    ``no_floats``: as :func:`alertwire._json.dumps` takes it.
    """
    try:
        return _json.dumps(wire, no_floats=no_floats)
    except TypeError as exc:
        if "Recursion limit" in str(exc):  # the serialiser's own cap, far past ours
            _raise_problems([nesting_problem()])
        culprit = "event"
        payload = wire.get("payload")
        # The most specific name first: a payload field before the payload as a whole.
        fields = [*(payload.items() if isinstance(payload, dict) else ()), *wire.items()]
        for name, value in fields:
            try:
                _json.dumps(value, no_floats=True)  # only looking for the culprit: no warning
            except TypeError:
                culprit = _python_name(name)
                break
        raise ValidationError(culprit, f"must be JSON-serialisable ({exc})") from None


def _wire_bytes(wire: dict[str, Any], *, no_floats: bool = False) -> bytes:
    """The body's bytes, held to the limits the wire enforces (size, nesting) on the same bytes."""
    data = _dumps(wire, no_floats=no_floats)
    problems = check_event_size(len(data) + ROUTING_KEY_OVERHEAD)
    if problems:
        _raise_problems(problems)
    problems = check_event_nesting(data)
    if problems:
        _raise_problems(problems)
    return data


_Part = TypeVar("_Part", "Link", "Image")


def _coerce(cls: type[_Part], value: object, name: str) -> _Part:
    """``cls`` from itself, a bare URL, or a mapping of its fields (absent ones ``None``).

    One rule for :class:`Link` and :class:`Image`: their constructors take
    their fields in declaration order, the first being the URL.
    """
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        return cls(value)
    if isinstance(value, Mapping):
        given: list[Any] = [value.get(f.name) for f in fields(cls)]  # checked by cls
        return cls(*given)
    raise ValidationError(
        name, f"items must be {cls.__name__}, mapping or URL, not {type(value).__name__}"
    )


@dataclass(frozen=True, slots=True, init=False, eq=False, repr=False)
class Link:
    """A link shown on the alert: ``href`` required, ``text`` optional."""

    href: str
    text: str | None = None

    # eq=False, repr=False above and these instead: the same methods, not compiled at import
    # (alertwire._record_methods says why; docs/cli.md, "Start-up cost", the figures).
    __eq__ = dataclass_eq
    __hash__ = dataclass_hash
    __repr__ = dataclass_repr

    def __init__(self, href: str, text: str | None = None) -> None:
        if not isinstance(href, str) or not href.strip():
            raise ValidationError("links.href", "is required and must not be blank")
        object.__setattr__(self, "href", href)
        object.__setattr__(self, "text", _require_str(text, "links.text"))

    @classmethod
    def coerce(cls, value: Link | Mapping[str, Any] | str) -> Link:
        """Accept a Link, ``{"href": ..., "text": ...}`` or a bare URL."""
        return _coerce(cls, value, "links")

    def wire(self) -> dict[str, str]:
        return {"href": self.href} if self.text is None else {"href": self.href, "text": self.text}


@dataclass(frozen=True, slots=True, init=False, eq=False, repr=False)
class Image:
    """An image shown on the alert: ``src`` must be an https:// URL (PagerDuty's rule)."""

    src: str
    href: str | None = None
    alt: str | None = None

    # eq=False, repr=False above and these instead: the same methods, not compiled at import
    # (alertwire._record_methods says why; docs/cli.md, "Start-up cost", the figures).
    __eq__ = dataclass_eq
    __hash__ = dataclass_hash
    __repr__ = dataclass_repr

    def __init__(self, src: str, href: str | None = None, alt: str | None = None) -> None:
        if not isinstance(src, str) or not src.strip():
            raise ValidationError("images.src", "is required and must not be blank")
        if not src.lower().startswith("https://"):
            raise ValidationError("images.src", "must be an https:// URL")
        object.__setattr__(self, "src", src)
        object.__setattr__(self, "href", _require_str(href, "images.href"))
        object.__setattr__(self, "alt", _require_str(alt, "images.alt"))

    @classmethod
    def coerce(cls, value: Image | Mapping[str, Any] | str) -> Image:
        """Accept an Image, ``{"src": ..., "href": ..., "alt": ...}`` or a bare URL."""
        return _coerce(cls, value, "images")

    def wire(self) -> dict[str, str]:
        out = {"src": self.src}
        if self.href is not None:
            out["href"] = self.href
        if self.alt is not None:
            out["alt"] = self.alt
        return out


#: ``images`` and ``links``'s default, as the constructor receives it.
_NO_PARTS: Final[tuple[()]] = ()


def _parts(cls: type[_Part], values: object, name: str) -> tuple[_Part, ...]:
    """An event's ``links`` or ``images``: none, or a sequence of what :func:`_coerce` takes."""
    if values is None or (values.__class__ is tuple and not values):  # the default: no ABC checks
        return ()
    if isinstance(values, (str, Mapping)) or not isinstance(values, Iterable):
        raise ValidationError(name, f"must be a sequence of {name}")
    return tuple(_coerce(cls, v, name) for v in values)


class _Event:
    """What every event offers the protocol layer: its action and its wire body."""

    __slots__ = ()
    kind: ClassVar[Literal["alert", "change"]] = "alert"
    event_action: ClassVar[str | None] = None

    def wire_body(self) -> dict[str, Any]:
        """The JSON body PagerDuty receives, less ``routing_key`` (a fresh dict)."""
        return dict(_json.loads(self.wire_bytes))

    @property
    def wire_bytes(self) -> bytes:
        return self._wire  # type: ignore[attr-defined,no-any-return]


@dataclass(frozen=True, slots=True, init=False, eq=False, repr=False)
class TriggerAlert(_Event):
    """Open an alert, or add to the open one with the same ``dedup_key``."""

    summary: str
    source: str
    severity: Severity
    dedup_key: str | None
    timestamp: str | None
    component: str | None
    group: str | None
    class_: str | None
    #: Read-only (a :class:`~._read_only.ReadOnlyDict`), and what is sent: see :func:`read_only_details`.
    custom_details: Mapping[str, Any] | str | None
    images: tuple[Image, ...]
    links: tuple[Link, ...]
    client: str | None
    client_url: str | None
    _wire: bytes = field(repr=False, compare=False, init=False)

    event_action: ClassVar[str] = "trigger"

    # eq=False, repr=False above and these instead: the same methods, not compiled at import
    # (alertwire._record_methods says why; docs/cli.md, "Start-up cost", the figures).
    __eq__ = dataclass_eq
    __hash__ = dataclass_hash
    __repr__ = dataclass_repr

    def __init__(
        self,
        summary: str,
        *,
        source: str | None = None,
        severity: Severity | str = Severity.ERROR,
        dedup_key: str | None = None,
        timestamp: datetime | str | None = None,
        component: str | None = None,
        group: str | None = None,
        class_: str | None = None,
        custom_details: Mapping[str, Any] | str | None = None,
        images: Sequence[Image | Mapping[str, Any] | str] | None = (),
        links: Sequence[Link | Mapping[str, Any] | str] | None = (),
        client: str | None = None,
        client_url: str | None = None,
    ) -> None:
        # Straight assignments in field order (same checks, same order as the
        # fields): this runs once per event on the send hot path (``send --queue``:
        # once per line). An absent optional field (None), and a summary, source or
        # details object of exactly the expected class (a short enough summary), are
        # set as they are, without calling the check that would hand them back
        # (details are still copied). Each field is stored through its slot's setter
        # (_record_methods.slot_setters), not object.__setattr__.
        (
            set_summary,
            set_source,
            set_severity,
            set_dedup_key,
            set_timestamp,
            set_component,
            set_group,
            set_class,
            set_custom_details,
            set_images,
            set_links,
            set_client,
            set_client_url,
            set_wire,
        ) = _TRIGGER_SETTERS
        if summary.__class__ is not str or len(summary) > SUMMARY_MAX:
            summary = _shorten_summary(summary)
        set_summary(self, summary)
        if source.__class__ is not str:
            source = default_source() if source is None else _require_str(source, "source")
        set_source(self, source)
        set_severity(self, _SEVERITY_SPELLINGS.parse(severity, "severity"))
        set_dedup_key(self, None if dedup_key is None else _require_str(dedup_key, "dedup_key"))
        set_timestamp(self, None if timestamp is None else wire_timestamp(timestamp))
        set_component(self, None if component is None else _require_str(component, "component"))
        set_group(self, None if group is None else _require_str(group, "group"))
        set_class(self, None if class_ is None else _require_str(class_, "class_"))
        set_custom_details(
            self,
            dict(custom_details)
            if custom_details.__class__ is dict
            else _custom_details(custom_details),
        )
        # The default (no images, no links) is the empty tuple itself: kept without a call.
        set_images(self, images if images is _NO_PARTS else _parts(Image, images, "images"))
        set_links(self, links if links is _NO_PARTS else _parts(Link, links, "links"))
        set_client(self, None if client is None else _require_str(client, "client"))
        set_client_url(self, None if client_url is None else _require_str(client_url, "client_url"))
        wire = self._build_wire()
        # The wire rules, on the body built from these fields. Every field was
        # checked for its type and normalised above (severity a member, links and
        # images built by their classes, the summary at most 1024 long), so the
        # rules can find something only in a blank summary or source, a dedup key
        # (blank, too long) or a timestamp; for an event with none of those the
        # call is left out (about 1 us of the 5 a TriggerAlert costs).
        # tests/models/test_properties.py checks every model it builds against them.
        if (
            self.dedup_key is not None
            or self.timestamp is not None
            or not self.summary.strip()
            or not self.source.strip()
        ):
            problems = check_alert_event(wire, check_key=False)
            if problems:
                _raise_problems(problems)
        # plain_details and read_only_details, unrolled (the hot path again): details
        # read back from the body unless plain, and kept read-only.
        details = self.custom_details
        if details.__class__ is dict:
            plain = _PLAIN_VALUES.issuperset(map(type, details.values())) and (
                _PLAIN_KEYS.issuperset(map(type, details))
            )
            data = _wire_bytes(wire, no_floats=plain)
            set_custom_details(
                self, ReadOnlyDict(details if plain else details_as_sent(details, data))
            )
            set_wire(self, data)
        else:
            set_wire(self, _wire_bytes(wire, no_floats=True))

    def _build_wire(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "summary": self.summary,
            "source": self.source,
            # ``_value_``, the member's plain attribute: ``.value`` is a descriptor
            # written in Python (enum.property), a call per event.
            "severity": self.severity._value_,
        }
        # Unrolled, in wire order: this runs once per event on the enqueue and send hot paths.
        if self.timestamp is not None:
            payload["timestamp"] = self.timestamp
        if self.component is not None:
            payload["component"] = self.component
        if self.group is not None:
            payload["group"] = self.group
        if self.class_ is not None:
            payload["class"] = self.class_
        if self.custom_details is not None:
            payload["custom_details"] = self.custom_details
        wire: dict[str, Any] = {"event_action": "trigger", "payload": payload}
        if self.dedup_key is not None:
            wire["dedup_key"] = self.dedup_key
        if self.images:
            wire["images"] = [i.wire() for i in self.images]
        if self.links:
            wire["links"] = [link.wire() for link in self.links]
        if self.client is not None:
            wire["client"] = self.client
        if self.client_url is not None:
            wire["client_url"] = self.client_url
        return wire


_TRIGGER_SETTERS: Final = slot_setters(TriggerAlert)


#: The other events and the union of all events load on first access (PEP 562): a one-event
#: ``alertwire trigger`` then creates none of their dataclasses, each of which costs its
#: start-up about half a millisecond (docs/cli.md, "Start-up cost").
#: ``from alertwire.models.pagerduty import Change`` works as before. :class:`Link` and
#: :class:`Image` stay here: ``TriggerAlert``'s field types name them, and
#: ``typing.get_type_hints`` resolves those in this module's namespace.
_WHERE: dict[str, str] = {
    "AcknowledgeAlert": "alertwire.models.pagerduty_keyed",
    "ResolveAlert": "alertwire.models.pagerduty_keyed",
    "Change": "alertwire.models.pagerduty_change",
    "PagerDutyEvent": "alertwire.models.pagerduty_event",
}

_load, __dir__ = _lazy_exports(globals(), _WHERE)

if not TYPE_CHECKING:
    __getattr__ = _load
