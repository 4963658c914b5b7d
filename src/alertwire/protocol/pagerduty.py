"""PagerDuty Events API v2, sans-IO: event -> :class:`Request`, :class:`Response` -> result.

Both clients and the relay build requests and read answers here; nothing
about PagerDuty's wire format is written anywhere else (the field rules live
in :mod:`alertwire.models.pagerduty_rules`, which this module's server-side
twin, the wire routes, uses too).

A trigger sent without a ``dedup_key`` gets one generated *here*, before the
first attempt, instead of leaving it to PagerDuty: then a retry after a lost
answer (a reset, a timeout) lands on the same alert rather than opening a
second incident. The generated key has PagerDuty's own shape (32 hex digits).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final, Literal

from .. import _json, _log
from .._errors import UnexpectedResponse, one_line
from .._secret import Secret
from ..models import pagerduty as models
from ..models.pagerduty import TriggerAlert
from ..models.results import EventResult
from ..transport import Request, Response
from .http import (
    JSON_HEADERS,
    PAGERDUTY_ALERT_PATH,
    PAGERDUTY_CHANGE_PATH,
    error_for_response,
    json_body,
    resolve_base_url,
    scrubbed,
    scrubbed_text,
)

__all__ = [
    "ALERT_PATH",
    "CHANGE_PATH",
    "EU_BASE_URL",
    "REGIONS",
    "SERVICE",
    "US_BASE_URL",
    "body_with",
    "build_body",
    "build_raw_request",
    "build_request",
    "new_dedup_key",
    "new_trigger_body",
    "parse_response",
    "path_for",
    "resolves",
    "routing_key_member",
    "splice_members",
    "timestamp_member",
    "with_dedup_key",
]

US_BASE_URL: Final = "https://events.pagerduty.com"
EU_BASE_URL: Final = "https://events.eu.pagerduty.com"
ALERT_PATH: Final = PAGERDUTY_ALERT_PATH
CHANGE_PATH: Final = PAGERDUTY_CHANGE_PATH
SERVICE: Final = "PagerDuty"

Kind = Literal["alert", "change"]


#: uuid4's fixed bits, byte by byte: byte 6 starts with the version (4), byte 8 with
#: the RFC 4122 variant (binary 10); ``bytes.translate`` tables setting them.
_VERSION_4: Final = bytes(b & 0x0F | 0x40 for b in range(256))
_VARIANT_RFC_4122: Final = bytes(b & 0x3F | 0x80 for b in range(256))


#: Keys drawn per ``os.urandom`` call (4 KiB of randomness).
_KEYS_PER_DRAW: Final = 256
#: Keys drawn and not yet handed out; ``list.pop`` and ``list.extend`` are single
#: steps under the GIL, so two threads never get the same key. Emptied in a forked
#: child, which would otherwise hand out the very keys its parent does.
_keys_ahead: list[str] = []
if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_keys_ahead.clear)


def _draw_keys() -> list[str]:
    """256 keys: each 16 bytes of randomness with uuid4's fixed bits set, in hex.

    The bits are set for every key at once (a slice of the draw's sixth and
    eighth bytes, translated) and the draw is written in hex once, then cut:
    about 0.1 us a key, where formatting each key's number was about 0.4.
    """
    data = bytearray(os.urandom(16 * _KEYS_PER_DRAW))
    data[6::16] = data[6::16].translate(_VERSION_4)
    data[8::16] = data[8::16].translate(_VARIANT_RFC_4122)
    text = data.hex()
    return [text[at : at + 32] for at in range(0, len(text), 32)]


def new_dedup_key() -> str:
    """A fresh key in PagerDuty's own generated form: 32 lower-case hex digits.

    uuid.uuid4().hex, computed directly: the same 122 random bits from
    ``os.urandom`` with the version-4 and RFC 4122 variant bits set, without
    building a UUID object. The randomness is drawn for 256 keys at a time:
    a draw per key was a system call (which also let go of the GIL) for every
    keyless trigger, and ``send --queue`` makes one per line (0.96 instead of
    1.7 us a key).
    """
    while True:
        try:
            return _keys_ahead.pop()
        except IndexError:
            _keys_ahead.extend(_draw_keys())


def path_for(kind: Kind) -> str:
    return CHANGE_PATH if kind == "change" else ALERT_PATH


REGIONS: Final = {"us": US_BASE_URL, "eu": EU_BASE_URL}


def base_url_for_region(region: str) -> str:
    return resolve_base_url(region, None, regions=REGIONS)


def splice_members(body: bytes, members: bytes) -> bytes:
    """``body``, a JSON object's bytes, with ``members`` added as its first names.

    ``members`` is encoded ``"name":value`` pairs, comma-separated. Every byte
    of ``body`` stays where it was, so a client's body is forwarded as sent
    and a model's cached wire bytes are not serialised a second time. The
    caller makes sure none of the names is present already (a duplicate name
    is ambiguous JSON). Only the opening brace is looked for, so ``body`` may
    also be an object's opening followed by more JSON (a nested ``payload``).
    The object's first byte is looked at alone (a model's bytes have no spaces),
    not a copy of the rest stripped.
    """
    at = body.index(b"{") + 1
    first = body[at : at + 1]
    if first.isspace():
        first = body[at:].lstrip()[:1]
    return b"".join((body[:at], members, b"" if first == b"}" else b",", body[at:]))


def with_dedup_key(raw: bytes, body: Mapping[str, Any], dedup_key: str) -> bytes:
    """A client's raw event ``raw`` (parsed: ``body``) carrying ``dedup_key``.

    Every byte the client sent stays in place; only when it sent the name
    already (``"dedup_key": null`` or blank) is the body re-serialised, since
    a duplicate name would be ambiguous JSON. The one rule for the wire
    routes (sandbox, ingest) and the outbox's raw enqueue alike.
    """
    if "dedup_key" in body:
        return _json.dumps({**body, "dedup_key": dedup_key}, no_floats=True)  # parsed
    return splice_members(raw, b'"dedup_key":' + _json.dumps(dedup_key, no_floats=True))


#: How a model's wire bytes begin, up to its ``payload`` object (a fast path
#: for stamping a timestamp; any other layout is re-serialised instead).
_PAYLOAD_HEADS: Final = (b'{"event_action":"trigger","payload":{', b'{"payload":{')


def routing_key_member(routing_key: Secret) -> bytes:
    """``"routing_key":"<key>"``, as a body carries it: validated keys are
    alphanumeric, so no escaping is needed."""
    return b'"routing_key":"' + routing_key.reveal().encode("ascii") + b'"'


def timestamp_member(timestamp: str) -> bytes:
    """``"timestamp":"<timestamp>"``, as a payload carries it (wire form already)."""
    return b'"timestamp":' + _json.dumps(timestamp, no_floats=True)


#: A trigger model's own layout up to its payload's first member, and that head
#: after its brace (where the spliced members end): :func:`new_trigger_body`.
_TRIGGER_HEAD: Final = _PAYLOAD_HEADS[0]
_TRIGGER_HEAD_INSIDE: Final = _TRIGGER_HEAD[1:]
_CLOSING_BRACE: Final = ord("}")


def new_trigger_body(wire: bytes, key_member: bytes, dedup_key: str, stamp: bytes) -> bytes:
    """The body of a trigger given neither a dedup key nor a timestamp (the common
    event the outbox stores): ``wire``, the model's bytes, with the routing key
    (``key_member``, :func:`routing_key_member`), ``dedup_key`` (a generated key:
    hex digits, no escaping) and the enqueue time (``stamp``,
    :func:`timestamp_member`) spliced in.

    What :func:`body_with` returns for such an event, the same bytes, in one join
    with no intermediate members (the outbox calls this once per such event; see
    ``_PagerDutyRows.row``). A layout other than the model's own goes the general
    way (:func:`_stamped`)."""
    if wire.startswith(_TRIGGER_HEAD):
        at = len(_TRIGGER_HEAD)
        return b"".join(
            (
                b"{",
                key_member,
                b',"dedup_key":"',
                dedup_key.encode("ascii"),
                b'",',
                _TRIGGER_HEAD_INSIDE,
                stamp,
                b"" if wire[at] == _CLOSING_BRACE else b",",
                wire[at:],
            )
        )
    members = b"".join((key_member, b',"dedup_key":"', dedup_key.encode("ascii"), b'"'))
    return _stamped(wire, members, stamp)


def _stamped(wire: bytes, members: bytes, stamp: bytes) -> bytes:
    """``wire`` with ``members`` spliced in front and ``stamp`` in front of its payload.

    :func:`splice_members` twice in one join (the body is copied once, not twice:
    this runs for every unstamped event the outbox stores); the payload's bytes
    stay in place. A layout other than the models' own is re-serialised instead.
    """
    for head in _PAYLOAD_HEADS:
        if wire.startswith(head):
            at = len(head)
            after = b"" if wire[at : at + 1] == b"}" else b","
            # Both heads open with '{"': the members go after the brace, then a comma.
            return b"".join((b"{", members, b",", wire[1:at], stamp, after, wire[at:]))
    body = _json.loads(wire)
    body["payload"].update(_json.loads(b"{" + stamp + b"}"))
    return splice_members(_json.dumps(body, no_floats=True), members)  # parsed


def build_body(
    routing_key: Secret, event: models.PagerDutyEvent, *, timestamp: str | None = None
) -> tuple[bytes, str | None]:
    """The wire body for ``event``, and the dedup key it carries (``None`` for changes).

    The body is the model's cached wire bytes with the routing key (and, for
    a keyless trigger, a generated dedup key) spliced in front, so the event
    is not serialised a second time on the hot path. ``timestamp`` (the
    outbox's enqueue time, already in wire form) is spliced into the payload
    of a trigger or change that has none; an event's own timestamp wins.
    """
    stamp = None if timestamp is None else timestamp_member(timestamp)
    return body_with(event, routing_key_member(routing_key), stamp)


def body_with(
    event: models.PagerDutyEvent, key_member: bytes, stamp: bytes | None
) -> tuple[bytes, str | None]:
    """:func:`build_body` with its routing key and timestamp already encoded
    (:func:`routing_key_member`, :func:`timestamp_member`): for many events to one
    key at one enqueue time, such as a batch the outbox stores, encoded once."""
    dedup_key: str | None = None
    members = key_member
    wire = event.wire_bytes
    # A TriggerAlert first: the other event classes load on first use (models.pagerduty).
    if isinstance(event, TriggerAlert):
        dedup_key = event.dedup_key
        if dedup_key is None:
            dedup_key = new_dedup_key()
            if stamp is not None and event.timestamp is None:
                return new_trigger_body(wire, key_member, dedup_key, stamp), dedup_key
            members = b"".join((key_member, b',"dedup_key":"', dedup_key.encode("ascii"), b'"'))
        elif stamp is not None and event.timestamp is None:
            return _stamped(wire, members, stamp), dedup_key
    elif isinstance(event, models.Change):
        if stamp is not None and event.timestamp is None:
            return _stamped(wire, members, stamp), None
    else:
        dedup_key = event.dedup_key  # required: acknowledge and resolve always carry one
    return splice_members(wire, members), dedup_key


def build_request(
    base_url: str, routing_key: Secret, event: models.PagerDutyEvent
) -> tuple[Request, str | None]:
    """The request for ``event``, and the dedup key it carries (see :func:`build_body`)."""
    body, dedup_key = build_body(routing_key, event)
    return Request("POST", base_url + path_for(event.kind), JSON_HEADERS, body), dedup_key


def build_raw_request(base_url: str, kind: Kind, body: bytes) -> Request:
    """A request for a body that is already complete wire JSON (the relay's stored events)."""
    return Request("POST", base_url + path_for(kind), JSON_HEADERS, body)


def resolves(body: bytes) -> bool:
    """Whether a stored event body resolves its alert (``"event_action": "resolve"``).

    Parsed, not searched: a body that came through the ingest endpoint keeps
    its sender's spacing. Called only on the relay's rare path (an event past
    its max age), so the parse costs nothing on delivery.
    """
    try:
        event = _json.loads(body)
    except ValueError:
        return False
    return isinstance(event, Mapping) and event.get("event_action") == "resolve"


#: How PagerDuty's 202 begins, up to the dedup key (docs/protocol.md); see parse_response.
_ACCEPTED_HEAD: Final = b'{"status":"success","message":"Event processed","dedup_key":"'


#: The statuses other than "success" already warned about, in this process.
_odd_statuses: set[str | None] = set()
#: Past this many different ones, no more warnings: a service echoing a request id in
#: ``status`` must not grow the set without end.
_ODD_STATUSES_MAX: Final = 32


def _note_odd_status(said: str | None, http_status: int) -> None:
    """Warn, once per status, that a 2xx did not say ``success``; it is a success all the same.

    Why a success: the HTTP status is PagerDuty's decision (202 means queued,
    docs/protocol.md), and the body's ``status`` only words it. Treating the
    answer as a failure would send the event again, and a second trigger
    after the first was acted on is a duplicate page. Why a warning, once:
    a change in PagerDuty's wording (or a proxy that rewrites bodies) must
    be seen, but not as one line per event of a large ``send_many``.
    """
    if said in _odd_statuses or len(_odd_statuses) >= _ODD_STATUSES_MAX:
        return
    _odd_statuses.add(said)
    shown = "(none)" if said is None else repr(one_line(said)[:80])
    _log.warning(
        "%s answered HTTP %d with status %s, not 'success'; counted as delivered,"
        " since the HTTP status says so (said once per status)",
        SERVICE,
        http_status,
        shown,
    )


def forget_odd_statuses() -> None:
    """Warn again about every status (the tests start each from a clean slate)."""
    _odd_statuses.clear()


def parse_response(
    response: Response,
    *,
    kind: Kind,
    sent_dedup_key: str | None = None,
    routing_key: Secret | None = None,
) -> EventResult:
    """The result of a 2xx; raises the matching :class:`~alertwire.ResponseError` otherwise.

    ``routing_key`` is the key the request carried, cut out of any error text
    that quotes it (see :func:`~alertwire.protocol.http.error_for_response`).
    """
    status = response.status
    if status == 202 and kind == "alert":
        # Fast path: PagerDuty's canonical answer, byte for byte, with a plain
        # key. The same result the general path below reads from it, without
        # a JSON parse and five lookups (measured: 2.7 -> 1.4 µs per event,
        # a visible share of AsyncPagerDuty.send_many's own time at 32 in
        # flight). Any other layout, spacing or key takes the general path.
        body = response.body
        if body.startswith(_ACCEPTED_HEAD) and body.endswith(b'"}'):
            key = body[len(_ACCEPTED_HEAD) : -2]
            if key.isalnum():
                return EventResult("success", "Event processed", key.decode("ascii"), 202)
    if not 200 <= status <= 299:
        raise error_for_response(response, service=SERVICE, secret=routing_key)
    payload = json_body(response)
    if not isinstance(payload, Mapping):
        response = scrubbed(response, routing_key)
        raise UnexpectedResponse(
            f"{SERVICE} answered HTTP {response.status} without the JSON body it always sends:"
            f" {UnexpectedResponse.excerpt(response.text) or '(empty body)'}",
            http_status=response.status,
            body=response.text,
        )
    dedup_key = payload.get("dedup_key")
    if kind == "change":
        dedup_key = None
    elif not isinstance(dedup_key, str):
        dedup_key = sent_dedup_key
    said = payload.get("status")
    if said != "success":
        _note_odd_status(None if said is None else scrubbed_text(said, routing_key), status)
    # The free text is scrubbed as an error's is; the dedup key never is: it names the
    # incident, whatever it contains.
    return EventResult(
        status=scrubbed_text(payload.get("status", "success"), routing_key),
        message=scrubbed_text(payload.get("message", ""), routing_key),
        dedup_key=dedup_key,
        http_status=response.status,
    )
