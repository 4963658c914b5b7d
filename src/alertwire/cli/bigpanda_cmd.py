"""``alertwire bigpanda STATUS --host H``: one BigPanda alert.

Prints BigPanda's message, else the status its answer names (``created``), else ``success``.
``--tag KEY=VALUE`` given twice with the same key makes a list value, which
BigPanda shows as one pipe-joined tag.
"""

from __future__ import annotations

import argparse
from typing import Any

from ._options import QUEUED_AS_EVENT, Command, add_delivery_options, add_key_value_option

__all__ = ["COMMAND", "register"]

COMMAND = Command(
    "bigpanda",
    help="send a BigPanda alert",
    description="Send one alert to BigPanda's Alerts API. STATUS is ok, critical,"
    " warning, acknowledged or unknown (also crit, warn, ack).",
)


def register(subparsers: Any, only: str | None = None) -> None:
    """Adds this module's one command (``only``, the command invoked, cannot leave it out)."""
    command = COMMAND.add_to(subparsers)
    command.add_argument("status", metavar="STATUS")
    command.add_argument("--host", required=True, metavar="H", help="the host the alert is about")
    command.add_argument("--check", metavar="C", help="what was checked (the secondary property)")
    command.add_argument("--description", metavar="D", help="details (up to 2048 characters)")
    add_key_value_option(
        command, "--tag", help="a custom attribute (repeatable; a repeated KEY makes a list)"
    )
    command.add_argument(
        "--primary-property",
        metavar="P",
        help="the field that names the entity (default host)",
    )
    command.add_argument(
        "--secondary-property", metavar="P", help="the field that names what failed (default check)"
    )
    command.add_argument(
        "--timestamp",
        type=int,
        metavar="EPOCH",
        help="when it was detected, in Unix epoch seconds (default: when BigPanda receives it)",
    )
    add_delivery_options(command, pagerduty=False, bigpanda=True, queue_prints=QUEUED_AS_EVENT)
    command.set_defaults(handler=_bigpanda)


def _tags(pairs: list[tuple[str, str]] | None) -> dict[str, Any] | None:
    if not pairs:
        return None
    tags: dict[str, Any] = {}
    for key, value in pairs:
        if key in tags:
            previous = tags[key]
            tags[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            tags[key] = value
    return tags


def _bigpanda(args: argparse.Namespace) -> int:
    from ._events import job_from_args
    from ._run import message, run_one

    return run_one(args, lambda: job_from_args(args, "bigpanda", tags=_tags(args.tag)), message)
