"""``alertwire trigger | acknowledge | resolve | change``: one PagerDuty event each.

``trigger``, ``acknowledge`` and ``resolve`` print the dedup key the alert
lives under (for a trigger without ``--dedup-key``, the key generated for
it: keep it to resolve the alert later); ``change`` prints PagerDuty's
message. The library is imported inside the handlers, after parsing.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._options import (
    QUEUED_AS_EVENT,
    Command,
    add_delivery_options,
    add_key_value_option,
    add_links_option,
)

if TYPE_CHECKING:
    from ._deliver import Job

__all__ = ["register"]


def _add_details(parser: argparse.ArgumentParser) -> None:
    add_key_value_option(
        parser,
        "--detail",
        help="a custom detail shown on the event (repeatable; values are strings)",
    )
    parser.add_argument(
        "--details-json",
        metavar="JSON",
        help="custom details as a JSON object (--detail values are set on top of it)",
    )


def _add_source_and_time(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source", help="where the problem is: a host name or FQDN (default: this host's name)"
    )
    parser.add_argument(
        "--timestamp",
        metavar="T",
        help="when it was detected, ISO 8601 (e.g. 2015-07-17T08:42:58.315+0000; without"
        " an offset it is UTC)",
    )


def _add_trigger_options(trigger: argparse.ArgumentParser) -> None:
    trigger.add_argument("summary", metavar="SUMMARY", help="what is wrong (up to 1024 characters)")
    trigger.add_argument(
        "--severity",
        help="critical, error, warning or info (also crit, warn, err; default error)",
    )
    _add_source_and_time(trigger)
    trigger.add_argument(
        "--dedup-key",
        metavar="K",
        help="the alert's identity: triggers with the same key add to one alert"
        " (default: a new key, printed)",
    )
    trigger.add_argument("--component", metavar="C", help="the part of the system that is broken")
    trigger.add_argument("--group", metavar="G", help="a logical grouping of components")
    trigger.add_argument("--class", dest="class_", metavar="C", help="the class/type of the event")
    _add_details(trigger)
    add_links_option(trigger)
    trigger.add_argument(
        "--image",
        dest="images",
        action="append",
        metavar="SRC",
        help="an https:// image URL shown on the alert (repeatable)",
    )
    trigger.add_argument("--client", metavar="NAME", help="the monitoring tool that sent it")
    trigger.add_argument("--client-url", metavar="URL", help="a link back to that tool")


def _add_dedup_key(command: argparse.ArgumentParser) -> None:
    command.add_argument("dedup_key", metavar="DEDUP_KEY")


def _add_change_options(change: argparse.ArgumentParser) -> None:
    change.add_argument("summary", metavar="SUMMARY", help="what changed (up to 1024 characters)")
    _add_source_and_time(change)
    _add_details(change)
    add_links_option(change)


def _keyed(verb: str) -> Command:
    return Command(
        verb.lower(),
        help=f"{verb.lower()} a PagerDuty alert by its dedup key",
        description=f"{verb} the open PagerDuty alert with this dedup key. PagerDuty accepts"
        " (and drops) the event when no such alert is open. Prints the dedup key.",
    )


#: Each command (its name is the event's type) and its own options; the delivery options
#: and the handler are the same for all.
_COMMANDS: tuple[tuple[Command, Callable[[argparse.ArgumentParser], None]], ...] = (
    (
        Command(
            "trigger",
            help="open a PagerDuty alert (prints its dedup key)",
            description="Trigger a PagerDuty alert, or add to the open one with the same dedup"
            " key. Prints the dedup key: pass it to `alertwire resolve` later.",
        ),
        _add_trigger_options,
    ),
    (_keyed("Acknowledge"), _add_dedup_key),
    (_keyed("Resolve"), _add_dedup_key),
    (
        Command(
            "change",
            help="record a PagerDuty change event (a deploy, a config push)",
            description="Send a PagerDuty change event: context for responders, never a page."
            " Prints PagerDuty's message.",
        ),
        _add_change_options,
    ),
)


def register(subparsers: Any, only: str | None = None) -> None:
    """Adds the four commands, or with ``only`` (the command invoked) just that one.

    A command's parser is about twenty options: building the three a one-event
    ``alertwire trigger`` does not run cost it more than the one it does
    (docs/cli.md, "Start-up cost").
    """
    for declared, add_options in _COMMANDS:
        if only is not None and declared.name != only:
            continue
        command = declared.add_to(subparsers)
        add_options(command)
        add_delivery_options(
            command,
            pagerduty=True,
            bigpanda=False,
            # A change event has no dedup key: what it prints is its outbox id.
            queue_prints=QUEUED_AS_EVENT if declared.name == "change" else "the dedup key",
        )
        command.set_defaults(handler=_send, kind=declared.name)


def _dedup_key(result: Any) -> str:
    return str(result.dedup_key)


def _send(args: argparse.Namespace) -> int:
    """The event the command names, from its flags. A success prints the dedup key the
    alert lives under (keep a generated one to resolve it later); a change event has
    none, so PagerDuty's message."""
    from ._events import custom_details, job_from_args
    from ._run import message, run_one

    def build() -> Job:
        return job_from_args(args, args.kind, custom_details=custom_details(args))

    return run_one(args, build, message if args.kind == "change" else _dedup_key)
