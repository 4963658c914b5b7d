"""Settings from the environment, shared by ``from_env()`` and the command line.

One reader per setting, so the library and the CLI can never disagree about
which variable means what. Keys come from a variable or from a file named
by a variable (files keep keys out of ``ps`` output and shell history).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Final, TypeVar

from ._errors import ConfigurationError
from ._numbers import is_whole
from ._secret import Secret

__all__ = [
    "BIGPANDA_TOKEN",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_DRAIN_TIMEOUT",
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_MAX_AGE",
    "DEFAULT_MAX_BACKOFF",
    "DEFAULT_MAX_PENDING",
    "DEFAULT_MAX_PENDING_PER_KEY",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_RATE_LIMIT_PER_MINUTE",
    "DEFAULT_REGION",
    "DEFAULT_RESOLVE_MAX_AGE",
    "DEFAULT_TIMEOUT",
    "ENV_BIGPANDA_APP_KEY",
    "ENV_BIGPANDA_TOKEN",
    "ENV_BIGPANDA_URL",
    "ENV_OUTBOX",
    "ENV_PAGERDUTY_API_TOKEN",
    "ENV_PAGERDUTY_API_URL",
    "ENV_PAGERDUTY_FROM",
    "ENV_PAGERDUTY_URL",
    "ENV_REGION",
    "ENV_ROUTING_KEY",
    "MAX_PORT",
    "MAX_SECRET_FILE_CHARS",
    "MAX_TIMEOUT",
    "PAGERDUTY_API_TOKEN",
    "ROUTING_KEY",
    "Credential",
    "check_port",
    "optional_env",
    "parse_host_port",
    "read_secret_file",
    "resolve",
    "secret_from_env",
]

T = TypeVar("T")

ENV_ROUTING_KEY: Final = "ALERTWIRE_ROUTING_KEY"
ENV_PAGERDUTY_URL: Final = "ALERTWIRE_PAGERDUTY_URL"
ENV_REGION: Final = "ALERTWIRE_REGION"
ENV_BIGPANDA_TOKEN: Final = "ALERTWIRE_BIGPANDA_TOKEN"
ENV_BIGPANDA_APP_KEY: Final = "ALERTWIRE_BIGPANDA_APP_KEY"
ENV_BIGPANDA_URL: Final = "ALERTWIRE_BIGPANDA_URL"
ENV_OUTBOX: Final = "ALERTWIRE_OUTBOX"
#: The PagerDuty REST API (``alertwire.rest``, ``alertwire incidents``): a REST API
#: token, not the Events API integration key above; its base URL; and the user's
#: email sent as ``From`` (PagerDuty needs it on incident updates made with an
#: account-level token).
ENV_PAGERDUTY_API_TOKEN: Final = "ALERTWIRE_PAGERDUTY_API_TOKEN"
ENV_PAGERDUTY_API_URL: Final = "ALERTWIRE_PAGERDUTY_API_URL"
ENV_PAGERDUTY_FROM: Final = "ALERTWIRE_PAGERDUTY_FROM"

#: Longest ``Relay.run(drain=True)`` / ``alertwire relay --drain`` runs, in seconds
#: (0 = no bound). Five minutes: a cron job every few minutes neither piles up relays
#: while an upstream is down nor gives up too early on a healthy backlog (a relay
#: sends thousands of events a minute); the next run carries on where this one
#: stopped. Here, not in the relay module, so the CLI's ``--help`` can show it
#: without importing asyncio.
DEFAULT_DRAIN_TIMEOUT: Final = 300.0

# The library's defaults, each defined once. They live here, not in the modules that
# use them (the relay, the outbox rules, the clients), so that ``--help`` can show them
# without importing asyncio or the outbox; those modules import them from here.

#: Sends in flight at once: a relay's concurrency, ``send_many``'s and ``alertwire send``'s.
DEFAULT_CONCURRENCY: Final = 16
#: Seconds before one HTTP attempt is given up.
DEFAULT_TIMEOUT: Final = 10.0
#: The longest timeout a client takes for one attempt (a day): far beyond any use, and
#: within what a socket can be given (about 292 years in nanoseconds; 1e300 seconds
#: raised OverflowError from inside the first send).
MAX_TIMEOUT: Final = 86400.0
#: Service region when no base URL is given.
DEFAULT_REGION: Final = "us"
#: The relay's longest wait between two tries of one event (a 429's Retry-After may ask
#: for more). A direct send's retries, bounded by attempts, use ``_retry``'s 30 s instead.
DEFAULT_MAX_BACKOFF: Final = 300.0
#: How often an idle relay looks for events other processes enqueued.
DEFAULT_POLL_INTERVAL: Final = 0.5
#: Default age after which an undelivered event is dead-lettered instead of sent.
DEFAULT_MAX_AGE: Final = 24 * 3600.0
#: The same bound for an event that closes an incident (a PagerDuty resolve, a BigPanda
#: alert whose every status is "ok"): a late resolve pages nobody, and not sending it
#: leaves the incident open (docs/delivery-guarantee.md, "Old events").
DEFAULT_RESOLVE_MAX_AGE: Final = 7 * 24 * 3600.0
#: PagerDuty's documented limit per integration key: about 120 events per minute.
DEFAULT_RATE_LIMIT_PER_MINUTE: Final = 120
#: How long a claim is held; a relay killed mid-send holds its events no longer than this.
DEFAULT_LEASE_SECONDS: Final = 60.0
#: Ingest: pending events at most, in total (about 100 MB of outbox at 1 KB an event).
DEFAULT_MAX_PENDING: Final = 100_000
#: Ingest: pending events at most per routing key (or BigPanda token and app key).
DEFAULT_MAX_PENDING_PER_KEY: Final = 10_000


#: The most of a key file that is read: keys and tokens are tens of characters. A
#: path such as ``/dev/zero`` read whole never ended and took all the memory.
MAX_SECRET_FILE_CHARS: Final = 64 * 1024


def read_secret_file(path: str | os.PathLike[str], *, what: str) -> Secret:
    """The first line of a key file, whitespace stripped; errors never quote the content."""
    try:
        # utf-8-sig: a byte order mark (Windows editors write one) is not part of the
        # key; read as text, it made a good key "must contain only letters and digits".
        with open(path, encoding="utf-8-sig") as file:  # not pathlib: start-up time
            text = file.read(MAX_SECRET_FILE_CHARS + 1)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the {what} file {os.fspath(path)!r}: {exc.strerror}"
        ) from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"the {what} file {os.fspath(path)!r} is not UTF-8 text") from None
    if len(text) > MAX_SECRET_FILE_CHARS:
        raise ConfigurationError(
            f"the {what} file {os.fspath(path)!r} is larger than a key file"
            f" ({MAX_SECRET_FILE_CHARS // 1024} Ki characters at most)"
        )
    value = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not value:
        raise ConfigurationError(f"the {what} file {os.fspath(path)!r} is empty")
    return Secret(value)


def secret_from_env(
    variable: str, file_variable: str, *, what: str, env: Mapping[str, str] | None = None
) -> Secret:
    """``variable``, else the file named by ``file_variable``; a clear error naming both."""
    env = os.environ if env is None else env
    value = env.get(variable, "").strip()
    if value:
        return Secret(value)
    path = env.get(file_variable, "").strip()
    if path:
        return read_secret_file(path, what=what)
    raise ConfigurationError(f"no {what}: set {variable} (or {file_variable} to a file holding it)")


class Credential:
    """A secret the environment may hold: its variable, the ``_FILE`` variable naming a file
    that holds it instead, and what errors call it. One per credential, so ``from_env()``
    and the command line read and name each the same way. The file variable is always the
    variable's name with ``_FILE`` appended; the convention is kept here alone."""

    __slots__ = ("file_variable", "variable", "what")

    def __init__(self, variable: str, what: str) -> None:
        self.variable = variable
        self.file_variable = f"{variable}_FILE"
        self.what = what

    def from_env(self, env: Mapping[str, str] | None = None) -> Secret:
        return secret_from_env(self.variable, self.file_variable, what=self.what, env=env)


ROUTING_KEY: Final = Credential(ENV_ROUTING_KEY, "PagerDuty routing key")
BIGPANDA_TOKEN: Final = Credential(ENV_BIGPANDA_TOKEN, "BigPanda token")
PAGERDUTY_API_TOKEN: Final = Credential(ENV_PAGERDUTY_API_TOKEN, "PagerDuty REST API token")


def optional_env(variable: str, env: Mapping[str, str] | None = None) -> str | None:
    value = (os.environ if env is None else env).get(variable, "").strip()
    return value or None


def resolve(
    flag: T | None,
    variable: str,
    default: T,
    *,
    parse: Callable[[str], T] | None = None,
    env: Mapping[str, str] | None = None,
) -> T:
    """A setting's value: the flag if given, else the environment ``variable``, else ``default``.

    The one precedence every command uses, so no option can quietly prefer the
    environment over what the user typed. An empty flag (``--region ""``) or an
    empty or blank variable counts as not given, as a shell user expects of
    ``VAR= alertwire ...``. ``parse`` turns the variable's text into the value
    (its errors propagate, naming the variable is the caller's job); without it
    the text is returned as is.
    """
    if flag is not None and flag != "":
        return flag
    text = optional_env(variable, env)
    if text is None:
        return default
    return parse(text) if parse is not None else text  # type: ignore[return-value]  # T is str


#: The highest TCP port; port 0 asks the system for a free one.
MAX_PORT: Final = 65535


def check_port(port: object) -> int:
    """A ``port=`` to listen on (the ingest's, the sandbox's): a whole number from 0
    to :data:`MAX_PORT`. Compared only, ``True`` listened on port 1 and a ``"8080"``
    from a config file failed with a bare TypeError."""
    if not is_whole(port, minimum=0, maximum=MAX_PORT):
        raise ConfigurationError(
            f"port must be a whole number between 0 and {MAX_PORT}, got {port!r:.40}"
        )
    return port


def parse_host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8765`` for IPv6) -> ``(host, port)``; the one parser of listen addresses.

    The port may be 0 (the system picks one). A bad address is a
    :class:`~alertwire.ConfigurationError` (a :class:`ValueError`), so argparse
    reports it as a bad option value and the library as a bad setting.
    """
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= MAX_PORT:
        raise ConfigurationError(f"listen address must be HOST:PORT, got {text!r:.80}")
    return host.strip("[]"), int(port)
