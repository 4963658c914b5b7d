"""``alertwire queue status|dead|retry|purge|migrate``: look into the outbox and tend it.

Thin calls into :class:`~alertwire.outbox.Outbox`. Nothing printed here
contains a credential: the listing shows ids, kinds, dedup keys, times and
the service's own error text.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from typing import Any

from .._errors import ValidationError
from . import _exit
from ._options import Command, add_outbox_option, number

__all__ = ["COMMAND", "parse_age", "register"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _codes(bad_input: str, *, fail_on_dead: bool = False) -> str:
    """The exit codes a ``queue`` command returns (``status`` adds 7 with --fail-on-dead)."""
    extra = (_exit.DEAD_LETTERS,) if fail_on_dead else ()
    return _exit.epilog(
        _exit.OK,
        _exit.BAD_INPUT,
        _exit.OUTBOX_UNAVAILABLE,
        *extra,
        say={
            _exit.BAD_INPUT: bad_input,
            _exit.OUTBOX_UNAVAILABLE: _exit.OUTBOX_UNAVAILABLE_RUN_AGAIN,
            _exit.DEAD_LETTERS: "with --fail-on-dead: the outbox holds dead letters",
        },
    )


_UNUSABLE = "a bad option, or an outbox that cannot be used"


def parse_age(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``12h``, ``7d``, ``2w`` -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text.lower())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"must be an age such as 3600, 90m, 12h or 7d; got {text!r}"
        )
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def _outbox_command(
    commands: Any,
    name: str,
    handler: Callable[[argparse.Namespace], int],
    *,
    help: str,
    description: str,
    bad_input: str = _UNUSABLE,
    fail_on_dead: bool = False,
) -> argparse.ArgumentParser:
    """A ``queue`` sub-command: every one of them works on an outbox, so each takes
    ``--outbox`` first (the same option as ``alertwire relay``); its exit codes are
    :func:`_codes`, with what makes it exit 2 (``bad_input``)."""
    epilog = _codes(bad_input, fail_on_dead=fail_on_dead)
    parser = Command(name, help=help, description=description, epilog=epilog).add_to(commands)
    add_outbox_option(parser)
    parser.set_defaults(handler=handler)
    return parser


COMMAND = Command(
    "queue",
    help="inspect and tend the outbox (status, dead letters, retry, purge)",
    description="Inspect and tend the outbox that `alertwire relay` delivers.",
    epilog=_codes(_UNUSABLE, fail_on_dead=True),
)


def register(subparsers: Any, only: str | None = None) -> None:
    """Adds this module's one command (``only``, the command invoked, cannot leave it out)."""
    commands = COMMAND.add_group_to(subparsers)

    status = _outbox_command(
        commands,
        "status",
        _status,
        help="counts by state and how long the oldest undelivered event has waited",
        description="Counts by state and how long the oldest undelivered event (pending or"
        " in flight; --json: oldest_pending_age_seconds) has waited. For monitoring:"
        " --fail-on-dead exits 7 while the outbox holds dead letters (--json has"
        ' "dead" and "has_dead_letters" too).',
        fail_on_dead=True,
    )
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.add_argument(
        "--fail-on-dead",
        action="store_true",
        help="exit 7 when the outbox holds any dead letter (for monitoring and cron)",
    )

    dead = _outbox_command(
        commands,
        "dead",
        _dead,
        help="list dead letters with the reason",
        description="List dead-lettered events with the service's own error text.",
    )
    dead.add_argument("--json", action="store_true", help="print JSON lines")
    dead.add_argument("--limit", type=number(int, low=0), metavar="N", help="list at most N")

    retry = _outbox_command(
        commands,
        "retry",
        _retry,
        help="send dead letters again",
        description="Move dead letters back to pending; their age counts afresh from now."
        " A retried event goes before any later event of its key still pending. A dead"
        " letter whose key had a later event delivered (or being sent now) is superseded"
        " (queue dead marks it):"
        " sent now it would undo that event (a trigger after its resolve re-opens the"
        " incident), so --all leaves it dead and says so, and naming it is refused unless"
        " --superseded is given. An id that is not a dead letter is refused (exit 2) and"
        " nothing is queued again.",
        bad_input="an id that is not a dead letter or is superseded (then nothing is queued"
        " again), a bad option, or an outbox that cannot be used",
    )
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", nargs="*", type=int, default=[], metavar="ID", help="event ids")
    which.add_argument("--all", action="store_true", help="every dead letter")
    retry.add_argument(
        "--superseded",
        action="store_true",
        help="queue superseded dead letters too (each is then delivered after the later"
        " event of its key that was delivered or is being sent)",
    )

    purge = _outbox_command(
        commands,
        "purge",
        _purge,
        help="delete delivered events older than an age",
        description="Delete delivered events whose delivery is older than AGE"
        " (dead letters and pending events are never purged). A SQLite outbox is then"
        " compacted (VACUUM), so the file shrinks; PostgreSQL's autovacuum makes the"
        " space reusable (see docs/relay.md).",
    )
    purge.add_argument(
        "--delivered-before",
        type=parse_age,
        required=True,
        metavar="AGE",
        help="e.g. 3600, 90m, 12h, 7d",
    )

    _outbox_command(
        commands,
        "migrate",
        _migrate,
        help="create or upgrade the outbox schema (idempotent)",
        description="Create or upgrade the outbox's tables and record the schema version."
        " Relays do this on start too; run it first to do it ahead of a rollout.",
    )


def _open(args: argparse.Namespace, *, create: bool = False) -> Any:
    """The outbox to look into: an existing one only, unless ``create`` (``migrate``).

    Only commands that store or deliver create an outbox: ``queue status`` on a
    mistyped path is an error (exit 2, nothing created), not an empty outbox
    reporting zeros, which would look healthy to monitoring.
    """
    from ..outbox import Outbox

    return Outbox.open(args.outbox, create=create)


def _status(args: argparse.Namespace) -> int:
    import sys

    with _open(args) as outbox:
        stats = outbox.stats()
        data = stats.as_dict()
        data["outbox"] = outbox.location
    data["has_dead_letters"] = stats.dead > 0
    code = _exit.DEAD_LETTERS if args.fail_on_dead and stats.dead else _exit.OK
    if code == _exit.DEAD_LETTERS:
        print(
            f"alertwire: {stats.dead} dead letter{'s' if stats.dead != 1 else ''} in the outbox"
            " (list them with alertwire queue dead; send them again with alertwire queue retry)",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(data))
        return code
    age = data["oldest_pending_age_seconds"]
    print(f"outbox:    {data['outbox']}")
    print(f"pending:   {stats.pending}")
    print(f"in flight: {stats.leased}")
    print(f"delivered: {stats.delivered}")
    print(f"dead:      {stats.dead}")
    # Not "oldest pending": the age counts in-flight events too (one stuck in a send is
    # the one to notice), while "pending" above does not.
    print(f"oldest:    {'-' if age is None else f'{age:.1f} s ago (pending or in flight)'}")
    return code


def _dead(args: argparse.Namespace) -> int:
    with _open(args) as outbox:
        letters = outbox.dead(limit=args.limit)
    for d in letters:
        if args.json:
            print(
                json.dumps(
                    {
                        "id": d.id,
                        "kind": d.kind,
                        "dedup_key": d.dedup_key,
                        "created_at": d.created_at.isoformat(),
                        "dead_at": None if d.dead_at is None else d.dead_at.isoformat(),
                        "attempts": d.attempts,
                        "http_status": d.http_status,
                        "error": d.error,
                        "superseded": d.superseded,
                    }
                )
            )
        else:
            status = "-" if d.http_status is None else str(d.http_status)
            print(
                f"{d.id}\t{d.kind}\t{d.dedup_key or '-'}\t{d.created_at:%Y-%m-%dT%H:%M:%SZ}"
                f"\ttries={d.attempts}\tHTTP {status}\t{'superseded: ' if d.superseded else ''}"
                f"{d.error}"
            )
    return _exit.OK


def _retry(args: argparse.Namespace) -> int:
    import sys

    if not args.all and not args.ids:
        raise ValidationError("ID", "give event ids or --all")
    with _open(args) as outbox:
        if not args.all:
            _check_dead(outbox, args.ids, superseded=args.superseded)
        count = outbox.retry(None if args.all else args.ids, superseded=args.superseded)
        # Read after the retry: also a named one superseded between the check and the
        # retry (a delivery landing in between) is said, not left as "0 queued again".
        named = None if args.all else set(args.ids)
        left = [
            d.id
            for d in ([] if args.superseded else outbox.dead())
            if d.superseded and (named is None or d.id in named)
        ]
    print(f"{count} dead letter{'s' if count != 1 else ''} queued again")
    if left:
        print(
            f"alertwire: {len(left)} superseded dead letter{'s' if len(left) != 1 else ''}"
            f" left dead (id {_listed(left)}): a later event of the same key was delivered"
            " or is being sent, and sending it now would undo that; add --superseded to"
            " send them anyway",
            file=sys.stderr,
        )
    return _exit.OK


def _listed(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids[:10]) + (", ..." if len(ids) > 10 else "")


def _check_dead(outbox: Any, ids: list[int], *, superseded: bool) -> None:
    """Refuse ids that are not dead letters, or are superseded ones without
    ``--superseded``, before queueing any again: a typo must not read as "done" (the
    old "0 dead letters queued again" and exit 0), nor a resolved incident re-open."""
    dead = {d.id: d for d in outbox.dead()}
    missing = sorted({i for i in ids if i not in dead})
    if missing:
        raise ValidationError(
            "ID",
            f"no dead letter with id {_listed(missing)} in {outbox.location} (see alertwire"
            " queue dead); nothing was queued again",
        )
    stale = sorted({i for i in ids if dead[i].superseded})
    if stale and not superseded:
        raise ValidationError(
            "ID",
            f"dead letter {_listed(stale)} is superseded: a later event of its key was"
            " delivered or is being sent, and sending it now would undo that (a trigger after its resolve"
            " re-opens the incident); add --superseded to send it anyway; nothing was"
            " queued again",
        )


def _purge(args: argparse.Namespace) -> int:
    from datetime import datetime, timedelta, timezone

    try:
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=args.delivered_before)
    except OverflowError:  # older than the calendar goes: nothing delivered is that old
        cutoff = datetime.min.replace(tzinfo=timezone.utc)
    with _open(args) as outbox:
        count = outbox.purge_delivered(before=cutoff)
    print(f"{count} delivered event{'s' if count != 1 else ''} purged")
    return _exit.OK


def _migrate(args: argparse.Namespace) -> int:
    with _open(args, create=True) as outbox:
        version = outbox.store.migrate()
        print(f"outbox {outbox.location}: schema version {version}")
    return _exit.OK
