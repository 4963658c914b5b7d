"""``alertwire incidents list | show | ack | resolve``: the REST API after the page.

A thin layer over :class:`alertwire.rest.PagerDutyAPI`. The token comes from
``--token-file``, else ``$ALERTWIRE_PAGERDUTY_API_TOKEN``, else the file named by
``$ALERTWIRE_PAGERDUTY_API_TOKEN_FILE``; there is no flag that takes the token
itself (it would show in ``ps`` and shell history). It is scrubbed from
everything printed. Exit codes are the send commands': 2 bad input or
configuration, 3 refused by PagerDuty or no such incident, 4 retries exhausted.

Acknowledging by ``--dedup-key`` never re-opens a resolved incident (PagerDuty's
REST API would: setting a resolved incident to acknowledged re-opens it);
resolving an incident that is resolved already is a success with nothing sent.
"""

from __future__ import annotations

import argparse
from typing import Any

from .._config import (
    ENV_PAGERDUTY_API_URL,
    ENV_PAGERDUTY_FROM,
)
from . import _exit
from ._credentials import REST_API_TOKEN
from ._options import Command, add_region_and_ca_options, add_retry_options

__all__ = ["COMMAND", "register"]

STATUSES = ("triggered", "acknowledged", "resolved")


def _add_api_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print a machine-readable JSON document on stdout"
    )
    api = parser.add_argument_group("PagerDuty REST API configuration", REST_API_TOKEN.sources())
    api.add_argument(
        "--token-file",
        metavar="PATH",
        help="read the REST API token from the first line of this file"
        " (an API access key, not an Events API integration key)",
    )
    api.add_argument(
        "--oauth", action="store_true", help="the token is an OAuth access token (Bearer)"
    )
    api.add_argument(
        "--api-url",
        metavar="URL",
        help=f"base URL of the REST API (default ${ENV_PAGERDUTY_API_URL}, else the region's"
        " host); http:// only to loopback, e.g. a local sandbox",
    )
    api.add_argument(
        "--from",
        dest="from_email",
        metavar="EMAIL",
        help=f"the PagerDuty user acting, sent as From (default ${ENV_PAGERDUTY_FROM});"
        " needed for updates made with an account-level token",
    )
    add_region_and_ca_options(api)
    add_retry_options(
        api,
        timeout_help="give up on one request after this long (default 10)",
        attempts_help="tries per request, the first included; 1 = never retry (default 5)",
        backoff_help="longest wait between two tries (default 30; PagerDuty's Retry-After and"
        " ratelimit-reset are still honoured)",
        budget_help="the retry budget: no try starts later than this after the first (default 120);"
        " a Retry-After or ratelimit-reset longer than what is left is not waited for",
    )


def _add_lookup_by_key(parser: argparse.ArgumentParser, *, dedup_help: str) -> None:
    """``--dedup-key`` and the ``--service`` list it is looked up in: ``show``, ``ack`` and
    ``resolve`` find incidents by key the same way (``PagerDutyAPI.incident_for_dedup_key``)."""
    parser.add_argument("--dedup-key", metavar="K", help=dedup_help)
    parser.add_argument(
        "--service", action="append", metavar="ID", help="look the key up in these services"
    )


#: What an ``incidents`` command can return: no outbox is involved, so never 5.
_EPILOG = _exit.epilog(
    _exit.OK,
    _exit.BAD_INPUT,
    _exit.REJECTED,
    _exit.RETRIES_EXHAUSTED,
    say={
        _exit.OK: "done (listed, shown or updated)",
        _exit.REJECTED: "refused by PagerDuty (401, 403, 400) or no such incident (404, or"
        " none for the dedup key); nothing changed, but for the requests of 250 incidents"
        " each before the refused one (a warning says how many)",
    },
)


COMMAND = Command(
    "incidents",
    help="list, show, acknowledge or resolve PagerDuty incidents (REST API)",
    description="Work with PagerDuty incidents through the REST API: find the incident"
    " an event opened (--dedup-key), acknowledge or resolve it, list what is open.",
    epilog=_EPILOG,
)

_LIST = Command(
    "list",
    help="list incidents (default: the open ones)",
    description="List incidents, one per line: id, status, number, service, title."
    " By default the open ones (triggered and acknowledged).",
    epilog=_EPILOG,
)

_SHOW = Command(
    "show",
    help="show one incident, by id or by dedup key",
    description="Show one incident. With --dedup-key, the incident that key opened:"
    " the open one, else the newest. Exit 3 when there is none.",
    epilog=_EPILOG,
)


def _update_command(name: str, verb: str) -> Command:
    """``ack`` and ``resolve``: the same command but for the verb."""
    return Command(
        name,
        help=f"{verb.lower()} incidents by id or by dedup key",
        description=f"{verb} incidents (bulk, 250 per request), given by id or by the"
        " dedup key of the event that opened them. Prints each updated incident."
        " A resolved incident found by --dedup-key is never re-opened.",
        epilog=_EPILOG,
    )


def register(subparsers: Any, only: str | None = None) -> None:
    """Adds this module's one command (``only``, the command invoked, cannot leave it out)."""
    commands = COMMAND.add_group_to(subparsers)

    listing = _LIST.add_to(commands)
    listing.add_argument(
        "--status",
        action="append",
        choices=STATUSES,
        help="only incidents in this status (repeatable; default triggered and acknowledged,"
        " or every status with --dedup-key)",
    )
    listing.add_argument(
        "--service", action="append", metavar="ID", help="only this service's (repeatable)"
    )
    listing.add_argument(
        "--dedup-key",
        metavar="K",
        help="only the incidents opened by events with this dedup key (incident_key)",
    )
    _add_api_options(listing)
    listing.set_defaults(handler=_list)

    show = _SHOW.add_to(commands)
    show.add_argument("incident_id", nargs="?", metavar="INCIDENT_ID")
    _add_lookup_by_key(show, dedup_help="the Events API dedup key of its alert")
    _add_api_options(show)
    show.set_defaults(handler=_show)

    for name, status, verb in (
        ("ack", "acknowledged", "Acknowledge"),
        ("resolve", "resolved", "Resolve"),
    ):
        command = _update_command(name, verb).add_to(commands)
        command.add_argument("incident_ids", nargs="*", metavar="INCIDENT_ID")
        _add_lookup_by_key(command, dedup_help="the incident this dedup key opened (its open one)")
        _add_api_options(command)
        command.set_defaults(handler=_update, status=status)


# --- handlers ---------------------------------------------------------------------


def _service(incident: dict[str, Any]) -> dict[str, Any]:
    """The incident's service reference; anything but an object (a malformed answer) is none."""
    service = incident.get("service")
    return service if isinstance(service, dict) else {}


def _line(incident: dict[str, Any]) -> str:
    """One incident, one line: every field through ``one_line`` (a title is anyone's text)."""
    from .._errors import one_line

    service = _service(incident)
    return "  ".join(
        [
            one_line(str(incident.get("id", ""))),
            f"{one_line(str(incident.get('status', ''))):<12}",
            one_line(f"#{incident.get('incident_number', '')}"),
            one_line(str(service.get("summary") or service.get("id") or "")),
            one_line(str(incident.get("title") or incident.get("summary") or "")),
        ]
    )


def _details(incident: dict[str, Any]) -> str:
    service = _service(incident)
    rows = [
        ("id", incident.get("id")),
        ("number", incident.get("incident_number")),
        ("title", incident.get("title")),
        ("status", incident.get("status")),
        ("urgency", incident.get("urgency")),
        ("service", f"{service.get('summary', '')} ({service.get('id', '')})"),
        ("incident_key", incident.get("incident_key")),
        ("created_at", incident.get("created_at")),
        ("html_url", incident.get("html_url")),
    ]
    from .._errors import one_line

    return "\n".join(
        f"{name}: {'' if value is None else one_line(str(value))}" for name, value in rows
    )


def _run(args: argparse.Namespace, work: Any) -> int:
    """Make the client, run ``work(api, output)``, print errors the send commands' way."""
    from .._errors import AlertwireError
    from ._output import Output
    from ._run import logging_to

    output = Output(json=args.json)
    try:
        with logging_to(output), make_api(args, output) as api:
            work(api, output)
    except AlertwireError as exc:
        return output.fail(exc)
    return 0


def make_api(args: argparse.Namespace, output: Any) -> Any:
    """The client for this run; the token is handed to ``output`` first, to be scrubbed."""
    from .. import _config
    from ..rest import PagerDutyAPI
    from ._clients import client_settings, construct

    token = REST_API_TOKEN.read(args.token_file)
    output.add_secret(token)
    settings = client_settings(args, single=True)  # a command makes a request or two
    return construct(
        PagerDutyAPI,
        token,
        oauth=args.oauth,
        default_from=_config.resolve(args.from_email, ENV_PAGERDUTY_FROM, None),
        base_url=_config.resolve(args.api_url, ENV_PAGERDUTY_API_URL, None),
        said_as={
            "base_url": f"--api-url (or ${ENV_PAGERDUTY_API_URL})",
            "default_from": f"--from (or ${ENV_PAGERDUTY_FROM})",
        },
        **settings,
    )


def _print_incidents(output: Any, incidents: list[dict[str, Any]]) -> None:
    """Incidents as one JSON document with ``--json``, else one line each."""
    if output.json:
        _document(output, incidents=incidents)
        return
    for incident in incidents:
        output.result(_line(incident))


def _document(output: Any, **content: Any) -> None:
    output.document({"ok": True, "exit_code": 0, **content})


def _incident_for_key(api: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The incident ``--dedup-key`` opened (in the ``--service`` services); none is exit 3."""
    from .._errors import NotFound

    incident: dict[str, Any] | None = api.incident_for_dedup_key(args.dedup_key, args.service)
    if incident is None:
        raise NotFound(
            f"PagerDuty has no incident with incident key (dedup key) {args.dedup_key!r}"
        )
    return incident


def _list(args: argparse.Namespace) -> int:
    from .._errors import ValidationError
    from ..protocol.rest import incidents_from

    def work(api: Any, output: Any) -> None:
        if args.dedup_key is not None:
            if not args.dedup_key.strip():
                raise ValidationError("--dedup-key", "must not be blank")
            params = {
                "incident_key": args.dedup_key,
                "date_range": "all",
                "statuses": args.status,
                "service_ids": args.service,
            }
            found = incidents_from(api.list_all("/incidents", params), what="GET /incidents")
        else:
            found = api.incidents(args.status or STATUSES[:2], args.service)
        _print_incidents(output, found)

    return _run(args, work)


def _show(args: argparse.Namespace) -> int:
    from .._errors import ConfigurationError
    from ..protocol.rest import incidents_from

    def work(api: Any, output: Any) -> None:
        if (args.incident_id is None) == (args.dedup_key is None):
            raise ConfigurationError("give an INCIDENT_ID or --dedup-key K (one of the two)")
        if args.dedup_key is not None:
            incident = _incident_for_key(api, args)
        else:
            path = f"/incidents/{_checked_id(args.incident_id)}"
            [incident] = incidents_from([api.rget(path)], what=f"GET {path}")
        if output.json:
            _document(output, incident=incident)
        else:
            output.result(_details(incident))

    return _run(args, work)


def _checked_id(value: str) -> str:
    from .._errors import ValidationError

    if not value.isascii() or not value.isalnum():
        raise ValidationError("INCIDENT_ID", "must be an incident id: letters and digits only")
    return value


def _update(args: argparse.Namespace) -> int:
    from .._errors import ConfigurationError, ResponseError

    def work(api: Any, output: Any) -> None:
        ids = [_checked_id(i) for i in args.incident_ids]
        if not ids and args.dedup_key is None:
            raise ConfigurationError("give INCIDENT_ID(s) or --dedup-key K")
        unchanged: list[dict[str, Any]] = []
        if args.dedup_key is not None:
            incident = _incident_for_key(api, args)
            if incident.get("status") != "resolved":
                ids.append(incident["id"])
            elif args.status == "resolved":
                unchanged.append(incident)
            else:
                raise ResponseError(
                    f"the incident for dedup key {args.dedup_key!r} ({incident.get('id')}) is"
                    " resolved; acknowledging would re-open it, so nothing was sent"
                )
        updated = api.acknowledge(*ids) if args.status == "acknowledged" else api.resolve(*ids)
        incidents = updated + unchanged
        _print_incidents(output, incidents)

    return _run(args, work)
