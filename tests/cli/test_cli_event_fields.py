"""A one-event command reads a flag as the model argument of the same name.

That rule (``alertwire.cli._events.job_from_args``) lets each command list
the fields it sets once, as its options. Its risk is an option meant for
something else (output, delivery, credentials) that happens to share a
model argument's name: it would be sent as part of the event. So each
command's flags that match a model argument are pinned here, and every one
of them reaches the event.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from alertwire import AcknowledgeAlert, BigPandaAlert, Change, ResolveAlert, TriggerAlert
from alertwire.cli._events import job_from_args
from alertwire.cli.main import build_parser


@pytest.mark.parametrize(
    ("argv", "model", "fields"),
    [
        (
            ["trigger", "disk full"],
            TriggerAlert,
            {
                "summary",
                "severity",
                "source",
                "timestamp",
                "dedup_key",
                "component",
                "group",
                "class_",
                "links",
                "images",
                "client",
                "client_url",
            },
        ),
        (["acknowledge", "k"], AcknowledgeAlert, {"dedup_key"}),
        (["resolve", "k"], ResolveAlert, {"dedup_key"}),
        (["change", "deployed"], Change, {"summary", "source", "timestamp", "links"}),
        (
            ["bigpanda", "ok", "--host", "h"],
            BigPandaAlert,
            {
                "status",
                "host",
                "check",
                "description",
                "primary_property",
                "secondary_property",
                "timestamp",
            },
        ),
    ],
)
def test_only_the_commands_event_options_share_a_model_arguments_name(
    argv: list[str], model: Any, fields: set[str]
) -> None:
    args = build_parser(argv).parse_args(argv)
    assert set(vars(args)) & set(inspect.signature(model).parameters) == fields


def test_every_event_option_given_reaches_the_event() -> None:
    argv = [
        "trigger",
        "disk full",
        "--severity",
        "warn",
        "--source",
        "db1",
        "--timestamp",
        "2015-07-17T08:42:58.315+0000",
        "--dedup-key",
        "disk-db1",
        "--component",
        "disk",
        "--group",
        "db",
        "--class",
        "capacity",
        "--link",
        "https://example.com/runbook",
        "--link-text",
        "runbook",
        "--image",
        "https://example.com/graph.png",
        "--client",
        "cron",
        "--client-url",
        "https://example.com/cron",
        "--detail",
        "used=91%",
    ]
    args = build_parser(argv).parse_args(argv)
    event = job_from_args(args, "trigger", custom_details={"used": "91%"}).event
    assert event == TriggerAlert(
        "disk full",
        severity="warning",
        source="db1",
        timestamp="2015-07-17T08:42:58.315+0000",
        dedup_key="disk-db1",
        component="disk",
        group="db",
        class_="capacity",
        links=[{"href": "https://example.com/runbook", "text": "runbook"}],
        images=["https://example.com/graph.png"],
        client="cron",
        client_url="https://example.com/cron",
        custom_details={"used": "91%"},
    )


def test_a_flag_not_given_leaves_the_models_default() -> None:
    args = build_parser(["trigger", "x"]).parse_args(["trigger", "x", "--source", "h"])
    assert job_from_args(args, "trigger").event == TriggerAlert("x", source="h")
