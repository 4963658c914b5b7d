"""Settings from the environment, shared by ``from_env()`` and the command line.

One reader per setting, so the library and the CLI can never disagree about
which variable means what. Keys come from a variable or from a file named
by a variable (files keep keys out of ``ps`` output and shell history).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

from ._errors import ConfigurationError
from ._secret import Secret

__all__ = [
    "DEFAULT_DRAIN_TIMEOUT",
    "ENV_BIGPANDA_APP_KEY",
    "ENV_BIGPANDA_TOKEN",
    "ENV_BIGPANDA_TOKEN_FILE",
    "ENV_BIGPANDA_URL",
    "ENV_OUTBOX",
    "ENV_PAGERDUTY_API_TOKEN",
    "ENV_PAGERDUTY_API_TOKEN_FILE",
    "ENV_PAGERDUTY_API_URL",
    "ENV_PAGERDUTY_FROM",
    "ENV_PAGERDUTY_URL",
    "ENV_REGION",
    "ENV_ROUTING_KEY",
    "ENV_ROUTING_KEY_FILE",
    "read_secret_file",
    "secret_from_env",
]

ENV_ROUTING_KEY: Final = "ALERTWIRE_ROUTING_KEY"
ENV_ROUTING_KEY_FILE: Final = "ALERTWIRE_ROUTING_KEY_FILE"
ENV_PAGERDUTY_URL: Final = "ALERTWIRE_PAGERDUTY_URL"
ENV_REGION: Final = "ALERTWIRE_REGION"
ENV_BIGPANDA_TOKEN: Final = "ALERTWIRE_BIGPANDA_TOKEN"
ENV_BIGPANDA_TOKEN_FILE: Final = "ALERTWIRE_BIGPANDA_TOKEN_FILE"
ENV_BIGPANDA_APP_KEY: Final = "ALERTWIRE_BIGPANDA_APP_KEY"
ENV_BIGPANDA_URL: Final = "ALERTWIRE_BIGPANDA_URL"
ENV_OUTBOX: Final = "ALERTWIRE_OUTBOX"
#: The PagerDuty REST API (``alertwire.rest``, ``alertwire incidents``): a REST API
#: token, not the Events API integration key above; its base URL; and the user's
#: email sent as ``From`` (PagerDuty needs it on incident updates made with an
#: account-level token).
ENV_PAGERDUTY_API_TOKEN: Final = "ALERTWIRE_PAGERDUTY_API_TOKEN"
ENV_PAGERDUTY_API_TOKEN_FILE: Final = "ALERTWIRE_PAGERDUTY_API_TOKEN_FILE"
ENV_PAGERDUTY_API_URL: Final = "ALERTWIRE_PAGERDUTY_API_URL"
ENV_PAGERDUTY_FROM: Final = "ALERTWIRE_PAGERDUTY_FROM"

#: Longest ``Relay.run(drain=True)`` / ``alertwire relay --drain`` runs, in seconds
#: (0 = no bound). Five minutes: a cron job every few minutes neither piles up relays
#: while an upstream is down nor gives up too early on a healthy backlog (a relay
#: sends thousands of events a minute); the next run carries on where this one
#: stopped. Here, not in the relay module, so the CLI's ``--help`` can show it
#: without importing asyncio.
DEFAULT_DRAIN_TIMEOUT: Final = 300.0


def read_secret_file(path: str | os.PathLike[str], *, what: str) -> Secret:
    """The first line of a key file, whitespace stripped; errors never quote the content."""
    try:
        with open(path, encoding="utf-8") as file:  # not pathlib: start-up time
            text = file.read()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the {what} file {os.fspath(path)!r}: {exc.strerror}"
        ) from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"the {what} file {os.fspath(path)!r} is not UTF-8 text") from None
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


def optional_env(variable: str, env: Mapping[str, str] | None = None) -> str | None:
    value = (os.environ if env is None else env).get(variable, "").strip()
    return value or None
