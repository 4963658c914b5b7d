"""Settings from flags and environment, turned into the library's clients.

Precedence, most specific first: a flag, then the variable, then the
variable naming a file (``ALERTWIRE_ROUTING_KEY_FILE``), then the default.
The variables are read by :mod:`alertwire._config`, the same readers the
library's ``from_env()`` uses, so the two can never disagree.

A client is made only for a destination that is actually used, so a file
of PagerDuty events needs no BigPanda token. A one-event command
(``single=True``) is given a ``StdlibTransport`` (pooled HTTP/1.1) made
here; ``send`` keeps the clients' default, which is the same transport. Every key and token read here
is also handed to the :class:`~alertwire.cli._output.Output`, which scrubs it
from anything printed: a service that echoes a key in an error body cannot
make the CLI print it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .. import _config
from .._errors import ConfigurationError, ValidationError
from .._retry import DEFAULT_INITIAL_BACKOFF, RetryPolicy
from .._secret import Secret
from ._credentials import BIGPANDA_TOKEN, ROUTING_KEY
from ._output import Output

if TYPE_CHECKING:
    from ..outbox.machine import Destination

__all__ = ["Clients", "client_settings", "construct"]


def _retry(args: argparse.Namespace) -> RetryPolicy:
    settings: dict[str, Any] = {}
    if args.max_attempts is not None:
        settings["max_attempts"] = args.max_attempts
    if args.max_backoff is not None:
        settings["max_backoff"] = args.max_backoff
        settings["initial_backoff"] = min(DEFAULT_INITIAL_BACKOFF, args.max_backoff)
    if args.max_time is not None:
        settings["max_elapsed"] = args.max_time
    return RetryPolicy(**settings)


def _region(args: argparse.Namespace) -> str:
    if args.region is not None:
        return str(args.region)
    return _config.resolve(None, _config.ENV_REGION, _config.DEFAULT_REGION).lower()


def _verify(args: argparse.Namespace) -> bool | str:
    if args.ca_file is None:
        return True
    if not os.access(args.ca_file, os.R_OK) or not os.path.isfile(args.ca_file):
        raise ConfigurationError(f"--ca-file {args.ca_file!r} is not a readable file")
    return str(args.ca_file)


def _routing_key(args: argparse.Namespace) -> Secret:
    # --routing-key-file wins over --routing-key, which wins over the environment. The
    # flag's text is stripped as a file's or a variable's is, and an empty one counts as
    # not given (``--routing-key "$KEY"`` with the variable unset), as every empty flag.
    given = (args.routing_key or "").strip()
    if args.routing_key_file is None and given:
        return Secret(given)
    return ROUTING_KEY.read(args.routing_key_file)


def _app_key(args: argparse.Namespace) -> str:
    app_key = _config.resolve(args.app_key, _config.ENV_BIGPANDA_APP_KEY, None)
    if not app_key:
        raise ConfigurationError(
            f"no BigPanda app key: pass --app-key KEY or set {_config.ENV_BIGPANDA_APP_KEY}"
        )
    return str(app_key)


def construct(
    client_class: Any,
    *positional: Any,
    said_as: Mapping[str, str] | None = None,
    **settings: Any,
) -> Any:
    """``client_class(...)``, its refusals said in the words the user typed, for every
    client the CLI makes (exit 2 either way).

    ``said_as`` maps a library argument to the option (or variable) it came from:
    ``base_url: must be ...`` reads ``--api-url (or $ALERTWIRE_PAGERDUTY_API_URL)
    must be ...``, where ``base_url`` is a name the user never gave. A CA bundle
    TLS cannot load is said as ``--ca-file``. ``ssl`` is not imported for this:
    only loading a CA bundle can raise its error, and that loads ``ssl`` first; a
    one-event command to an ``http://`` URL (a local relay, the sandbox) then
    never imports it.
    """
    names = said_as or {}
    try:
        return client_class(*positional, **settings)
    except ValidationError as exc:
        if not any(field in names for field, _ in exc.problems):
            raise
        problems = [(names.get(field, field), rule) for field, rule in exc.problems]
        raise ValidationError(*problems[0], problems=problems) from None
    except ConfigurationError as exc:
        # The library's refusal of ``verify=`` (a CA bundle TLS cannot load) keeps the
        # loader's error as its cause; here it is said as the option the user gave.
        ssl = sys.modules.get("ssl")
        if ssl is not None and isinstance(exc.__cause__, ssl.SSLError):
            raise ConfigurationError(
                f"--ca-file is not a usable CA bundle: {exc.__cause__}"
            ) from None
        text = str(exc)
        for name, option in names.items():
            if text.startswith(name + " "):
                raise ConfigurationError(option + text[len(name) :]) from None
        raise


def client_settings(args: argparse.Namespace, *, single: bool) -> dict[str, Any]:
    """What every client the CLI makes is given alike: region, retries, TLS trust and the
    timeout; and for a command that makes one request or a few (``single``), the
    sync transport (the clients' default is the same, pooled; see its docstring)."""
    verify = _verify(args)
    settings: dict[str, Any] = {"region": _region(args), "retry": _retry(args), "verify": verify}
    if single:
        from ..transport import StdlibTransport

        settings["http_client"] = construct(StdlibTransport, verify=verify)
    if args.timeout is not None:
        settings["timeout"] = args.timeout
    return settings


class Clients:
    """The clients a run needs, made on first use and closed together."""

    def __init__(self, args: argparse.Namespace, output: Output, *, single: bool = False) -> None:
        #: The parsed options the clients are made from; ``--queue`` reads them too.
        self.args = args
        self._output = output
        self._single = single
        self._made: dict[Destination, Any] = {}

    def prepare(self, destinations: Iterable[Destination]) -> None:
        """Make every client up front: a configuration error stops the run before any send."""
        for destination in sorted(set(destinations)):
            self.get(destination)

    def get(self, destination: Destination) -> Any:
        client = self._made.get(destination)
        if client is None:
            client = self._made[destination] = self._make(destination)
        return client

    def _make(self, destination: Destination) -> Any:
        args = self.args
        common = client_settings(args, single=self._single)
        if destination == "pagerduty":
            from .._pagerduty_client import PagerDuty

            key = _routing_key(args)
            self._output.add_secret(key)
            url = _config.resolve(args.pagerduty_url, _config.ENV_PAGERDUTY_URL, None)
            said_as = {"base_url": f"--pagerduty-url (or ${_config.ENV_PAGERDUTY_URL})"}
            return construct(PagerDuty, key, base_url=url, said_as=said_as, **common)
        from .._bigpanda_client import BigPanda

        token = BIGPANDA_TOKEN.read(args.token_file)
        self._output.add_secret(token)
        url = _config.resolve(args.bigpanda_url, _config.ENV_BIGPANDA_URL, None)
        app_key = _app_key(args)
        self._output.add_secret(app_key)
        said_as = {"base_url": f"--bigpanda-url (or ${_config.ENV_BIGPANDA_URL})"}
        return construct(BigPanda, token, app_key, base_url=url, said_as=said_as, **common)

    def close(self) -> None:
        for client in self._made.values():
            client.close()
        self._made.clear()
