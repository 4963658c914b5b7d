"""``alertwire trigger | acknowledge | resolve | change``: one PagerDuty event each.

``trigger``, ``acknowledge`` and ``resolve`` print the dedup key the alert
lives under (for a trigger without ``--dedup-key``, the key generated for
it: keep it to resolve the alert later); ``change`` prints PagerDuty's
message. The library is imported inside the handlers, after parsing.
"""

from __future__ import annotations

import argparse
from typing import Any

from ._options import add_command, add_delivery_options, add_links_option, key_value

__all__ = ["register"]


def _add_details(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--detail",
        action="append",
        type=key_value,
        metavar="KEY=VALUE",
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
        help="when it was detected, ISO 8601 with offset (e.g. 2015-07-17T08:42:58.315+0000)",
    )


def register(subparsers: Any) -> None:
    trigger = add_command(
        subparsers,
        "trigger",
        help="open a PagerDuty alert (prints its dedup key)",
        description="Trigger a PagerDuty alert, or add to the open one with the same"
        " dedup key. Prints the dedup key: pass it to `alertwire resolve` later.",
    )
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
    add_delivery_options(trigger, pagerduty=True, bigpanda=False)
    trigger.set_defaults(handler=_trigger)

    for name, verb in (("acknowledge", "Acknowledge"), ("resolve", "Resolve")):
        command = add_command(
            subparsers,
            name,
            help=f"{name} a PagerDuty alert by its dedup key",
            description=f"{verb} the open PagerDuty alert with this dedup key. PagerDuty"
            " accepts (and drops) the event when no such alert is open. Prints the dedup key.",
        )
        command.add_argument("dedup_key", metavar="DEDUP_KEY")
        add_delivery_options(command, pagerduty=True, bigpanda=False)
        command.set_defaults(handler=_keyed, action=name)

    change = add_command(
        subparsers,
        "change",
        help="record a PagerDuty change event (a deploy, a config push)",
        description="Send a PagerDuty change event: context for responders, never a page."
        " Prints PagerDuty's message.",
    )
    change.add_argument("summary", metavar="SUMMARY", help="what changed (up to 1024 characters)")
    _add_source_and_time(change)
    _add_details(change)
    add_links_option(change)
    add_delivery_options(change, pagerduty=True, bigpanda=False)
    change.set_defaults(handler=_change)


def _dedup_key(result: Any) -> str:
    return str(result.dedup_key)


def _trigger(args: argparse.Namespace) -> int:
    from ..models.pagerduty import TriggerAlert
    from ._deliver import Job
    from ._events import custom_details, optional_fields
    from ._run import run_one

    def build() -> Job:
        fields = optional_fields(
            args,
            severity="severity",
            source="source",
            dedup_key="dedup_key",
            timestamp="timestamp",
            component="component",
            group="group",
            class_="class_",
            images="images",
            links="links",
            client="client",
            client_url="client_url",
        )
        details = custom_details(args)
        if details is not None:
            fields["custom_details"] = details
        return Job("pagerduty", TriggerAlert(args.summary, **fields))

    return run_one(args, build, _dedup_key)


def _keyed(args: argparse.Namespace) -> int:
    from ..models.pagerduty import AcknowledgeAlert, ResolveAlert
    from ._deliver import Job
    from ._run import run_one

    model = AcknowledgeAlert if args.action == "acknowledge" else ResolveAlert
    return run_one(args, lambda: Job("pagerduty", model(args.dedup_key)), _dedup_key)


def _change(args: argparse.Namespace) -> int:
    from ..models.pagerduty import Change
    from ._deliver import Job
    from ._events import custom_details, optional_fields
    from ._run import run_one

    def build() -> Job:
        fields = optional_fields(args, source="source", timestamp="timestamp", links="links")
        details = custom_details(args)
        if details is not None:
            fields["custom_details"] = details
        return Job("pagerduty", Change(args.summary, **fields))

    return run_one(args, build, lambda result: result.message or result.status)
