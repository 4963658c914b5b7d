"""The options every sending command shares, declared once so every ``--help`` reads alike.

Only argparse is imported here: building the parser is on the start-up path
of every command, and a cron job that sends one alert should not pay for the
parts of the library it does not use.
"""

from __future__ import annotations

import argparse
import functools
import math
from typing import Any, NamedTuple

from .._config import (
    DEFAULT_REGION,
    DEFAULT_TIMEOUT,
    ENV_BIGPANDA_APP_KEY,
    ENV_BIGPANDA_URL,
    ENV_OUTBOX,
    ENV_PAGERDUTY_URL,
    ENV_REGION,
    ENV_ROUTING_KEY,
    MAX_TIMEOUT,
)
from .._retry import DEFAULT_INITIAL_BACKOFF, DEFAULT_MAX_ATTEMPTS
from .._retry import DEFAULT_MAX_BACKOFF as DEFAULT_SEND_MAX_BACKOFF
from ._credentials import BIGPANDA_TOKEN, ROUTING_KEY

__all__ = [
    "MAX_CONCURRENCY",
    "QUEUED_AS_EVENT",
    "Command",
    "add_delivery_options",
    "add_key_value_option",
    "add_links_option",
    "add_outbox_option",
    "add_region_and_ca_options",
    "add_retry_options",
    "add_throwaway_tls_options",
    "add_url_option",
    "int_between",
    "key_value",
    "number",
]

#: ``send`` runs at most this many requests at once: the size of the clients' connection pools.
MAX_CONCURRENCY = 32


def number(
    kind: type[int] | type[float],
    *,
    low: float,
    high: float | None = None,
    above: bool = False,
    unit: str = "",
) -> Any:
    """The CLI's one parser of a numeric option, its error naming the rule it enforces.

    ``kind`` is ``int`` (a whole number) or ``float``; the value must be ``low`` or
    more (more than ``low`` with ``above``) and, with ``high``, at most ``high``.
    Infinity and NaN are refused: no option of ours means "for ever" by ``inf``.
    The refusal is one line that says the rule exactly ("at least 1", "0 or more",
    "more than 0", "from 1 to 32"), so the boundary it names is always accepted.
    """

    def show(bound: float) -> str:
        return str(int(bound)) if bound == int(bound) else f"{bound:g}"

    what = "a whole number" if kind is int else "a number"
    suffix = f" {unit}" if unit else ""
    of_unit = f" of {unit}" if unit else ""
    if high is not None and above:
        rule = f"more than {show(low)} and at most {show(high)}{suffix}"
    elif high is not None:
        rule = f"from {show(low)} to {show(high)}{suffix}"
    elif above:
        rule = f"more than {show(low)}{suffix}"
    elif kind is int:
        rule = f"at least {show(low)}{suffix}"
    else:
        rule = f"{show(low)}{suffix} or more"

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}{of_unit}, got {text!r}") from None
        allowed = value > low if above else value >= low
        if not allowed or (high is not None and value > high) or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text!r}")
        return value

    return parse


def int_between(low: int, high: int) -> Any:
    """A whole number from ``low`` to ``high``, both allowed."""
    return number(int, low=low, high=high)


def _seconds(*, zero: bool) -> Any:
    """A number of seconds, more than zero (or, with ``zero``, zero or more)."""
    return number(float, low=0, above=not zero, unit="seconds")


def key_value(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` (the value may contain ``=``; the key must not be empty)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def add_key_value_option(parser: argparse.ArgumentParser, flag: str, *, help: str) -> None:
    """A repeatable ``KEY=VALUE`` option (``--detail``, ``--tag``): each use adds one pair,
    checked by :func:`key_value`, so every such option reads and fails alike."""
    parser.add_argument(flag, action="append", type=key_value, metavar="KEY=VALUE", help=help)


def add_throwaway_tls_options(group: Any, *, ca_flag: str, tls_note: str = "") -> None:
    """``--tls`` and the option naming where its CA certificate is written.

    ``alertwire sandbox`` and ``alertwire relay --listen`` serve https with the same
    throwaway certificate authority, so the two options are declared once; each
    command names its CA option (``--ca-file``, ``--tls-ca-file``) and may add a note.
    """
    group.add_argument(
        "--tls",
        action="store_true",
        help=f"serve https with a throwaway certificate authority{tls_note}",
    )
    group.add_argument(
        ca_flag, metavar="PATH", help="with --tls: where to write the CA certificate"
    )


class Command(NamedTuple):
    """One command as ``alertwire --help`` and its own ``--help`` present it.

    Each command module declares its commands as data (name, one-line help,
    description, exit codes) and makes them with :meth:`add_to` or
    :meth:`add_group_to`, so every command's help is built in this one place: the
    description wrapped, the exit-code table kept as written.
    """

    name: str
    #: The line ``alertwire --help`` (or the group's ``--help``) shows for it.
    help: str
    #: Prose; wrapped here, since raw formatting keeps the exit-code table intact.
    description: str
    #: The exit codes it can return: by default (``None``) the sending commands' list,
    #: which cli/main.py adds to every command without one; others give their own, made
    #: by ``_exit.epilog``.
    epilog: str | None = None

    def add_to(self, subparsers: Any) -> argparse.ArgumentParser:
        """The command's parser, added to ``subparsers``; its options are the caller's."""
        parser: argparse.ArgumentParser = subparsers.add_parser(
            self.name,
            help=self.help,
            # Wrapped when --help reads it (cli/main.py's _Parser says why).
            description=functools.partial(_wrapped, self.description),
            epilog=self.epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        return parser

    def add_group_to(self, subparsers: Any) -> Any:
        """A command made of sub-commands (``queue status``, ``incidents list``): one
        sub-command is required, and ``args.<name>_command`` names it. Returns what the
        sub-commands are added to."""
        parser = self.add_to(subparsers)
        return parser.add_subparsers(dest=f"{self.name}_command", metavar="COMMAND", required=True)


def _wrapped(text: str) -> str:
    import textwrap

    return textwrap.fill(text, width=79)


class _LinkAction(argparse.Action):
    """``--link HREF`` starts a link; a ``--link-text`` right after it names it.

    Both flags build the one ``links`` list, in the order they are given, so one
    action serves both: its ``const`` says which part of a link the flag gives.
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        links = list(getattr(namespace, "links", None) or [])
        if self.const == "href":
            links.append({"href": values})
        elif not links or "text" in links[-1]:
            parser.error("--link-text must follow the --link it describes")
        else:
            links[-1] = {**links[-1], "text": values}
        namespace.links = links


def add_links_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--link",
        dest="links",
        action=_LinkAction,
        const="href",
        metavar="HREF",
        help="a link shown on the event (repeatable)",
    )
    parser.add_argument(
        "--link-text",
        action=_LinkAction,
        const="text",
        metavar="TEXT",
        default=argparse.SUPPRESS,
        help="the text of the --link just before it",
    )


def add_retry_options(
    group: Any, *, timeout_help: str, attempts_help: str, backoff_help: str, budget_help: str
) -> None:
    """``--timeout``, ``--max-attempts``, ``--max-backoff`` and ``--max-time``, in that order.

    The sending commands and ``incidents`` read them through the same retry settings,
    so the names and the rules that check them are written once; each caller words
    the help for what it retries (an event, a REST request).
    """
    group.add_argument(
        "--timeout",
        type=number(float, low=0, above=True, high=MAX_TIMEOUT, unit="seconds"),
        metavar="SECONDS",
        help=timeout_help,
    )
    group.add_argument("--max-attempts", type=int_between(1, 100), metavar="N", help=attempts_help)
    group.add_argument(
        "--max-backoff", type=_seconds(zero=True), metavar="SECONDS", help=backoff_help
    )
    group.add_argument("--max-time", type=_seconds(zero=True), metavar="SECONDS", help=budget_help)


def add_region_and_ca_options(group: Any) -> None:
    """``--region`` and ``--ca-file``: every client the CLI makes reads them through the
    same settings (``_clients.client_settings``), so they are declared once too."""
    group.add_argument(
        "--region",
        choices=("us", "eu"),
        type=str.lower,
        help=f"the service region when no URL is given (default ${ENV_REGION},"
        f" else {DEFAULT_REGION})",
    )
    group.add_argument(
        "--ca-file",
        metavar="PATH",
        help="trust this CA bundle for TLS (a private CA, such as `alertwire sandbox --tls`)",
    )


def _outbox_or_default(text: str) -> str | None:
    """An empty ``--outbox`` counts as not given, as every empty flag does (a script's
    ``--outbox "$OUTBOX"`` with the variable unset); it was taken for the directory
    ``.`` and refused."""
    return text or None


def add_outbox_option(group: Any, *, what: str = "the outbox file or URL") -> None:
    """``--outbox``: ``send --queue``, ``relay`` and ``queue`` open it through the same rule."""
    group.add_argument(
        "--outbox",
        type=_outbox_or_default,
        metavar="PATH|URL",
        help=f"{what} (default ${ENV_OUTBOX}, else"
        " $XDG_STATE_HOME/alertwire/outbox.sqlite3, i.e. ~/.local/state/...)",
    )


#: Each service's ``--*-url`` option: its API's name and the variable it defaults to.
_URL_OPTIONS = {
    "pagerduty": (
        "--pagerduty-url",
        "the Events API",
        ENV_PAGERDUTY_URL,
        ", e.g. a local sandbox or relay",
    ),
    "bigpanda": ("--bigpanda-url", "the Alerts API", ENV_BIGPANDA_URL, ""),
}


def add_url_option(group: Any, service: str) -> None:
    """``--pagerduty-url`` or ``--bigpanda-url``, for the sending commands and the relay alike."""
    flag, api, variable, example = _URL_OPTIONS[service]
    group.add_argument(
        flag,
        metavar="URL",
        help=f"base URL of {api} (default ${variable}, else the region's"
        f" host); http:// only to loopback{example}",
    )


#: What ``--queue`` prints for an event without a dedup key (a change, a BigPanda alert):
#: its outbox id, in the words ``cli/_queue.py`` prints.
QUEUED_AS_EVENT = "'queued in the outbox as event N'"


def add_delivery_options(
    parser: argparse.ArgumentParser, *, pagerduty: bool, bigpanda: bool, queue_prints: str
) -> None:
    """``--json``, ``--dry-run``, timeouts and retries, and the destinations' settings.

    ``queue_prints`` says what the command prints when ``--queue`` stored its events
    (a dedup key only where the event has one), for ``--queue``'s help."""
    output = parser.add_argument_group("output")
    output.add_argument(
        "--json", action="store_true", help="print a machine-readable JSON result on stdout"
    )
    output.add_argument(
        "--dry-run",
        action="store_true",
        help="validate everything and print the request that would be sent"
        " (keys and tokens redacted); send nothing",
    )

    delivery = parser.add_argument_group("delivery")
    add_retry_options(
        delivery,
        timeout_help=f"give up on one attempt after this long (default {DEFAULT_TIMEOUT:g})",
        attempts_help="tries per event, the first included; 1 = never retry"
        f" (default {DEFAULT_MAX_ATTEMPTS})",
        backoff_help=f"longest wait between two tries (default {DEFAULT_SEND_MAX_BACKOFF:g}; the waits"
        f" are jittered and grow exponentially from {DEFAULT_INITIAL_BACKOFF:g} s; a service's"
        " Retry-After is still honoured)",
        budget_help="the retry budget: no try starts later than this after the first (default 120);"
        " a Retry-After longer than what is left is not waited for",
    )
    add_region_and_ca_options(delivery)
    delivery.add_argument(
        "--queue",
        action="store_true",
        help=f"store in the durable outbox and return at once (printing {queue_prints});"
        " `alertwire relay` delivers it",
    )
    add_outbox_option(delivery, what="the outbox for --queue")

    if pagerduty:
        pd = parser.add_argument_group("PagerDuty configuration", ROUTING_KEY.sources())
        key = pd.add_mutually_exclusive_group()
        key.add_argument(
            "--routing-key-file",
            metavar="PATH",
            help="read the Events API v2 integration key from the first line of this file",
        )
        key.add_argument(
            "--routing-key",
            metavar="KEY",
            help="the integration key itself; NOTE: visible to other users in the process"
            " list (ps) and kept in shell history: prefer --routing-key-file or"
            f" ${ENV_ROUTING_KEY}",
        )
        add_url_option(pd, "pagerduty")
    if bigpanda:
        bp = parser.add_argument_group("BigPanda configuration", BIGPANDA_TOKEN.sources())
        bp.add_argument(
            "--token-file",
            metavar="PATH",
            help="read the BigPanda org token from the first line of this file",
        )
        bp.add_argument(
            "--app-key",
            metavar="KEY",
            help=f"the BigPanda integration's app key (default ${ENV_BIGPANDA_APP_KEY})",
        )
        add_url_option(bp, "bigpanda")
