"""Each default is defined once (``alertwire._config``); the CLI and the library agree on it.

The parser is walked option by option, so a number typed into ``relay_cmd`` or
``send_cmd`` beside the library's constant fails here; and one precedence,
flag > environment > default, is resolved by one function.
"""

from __future__ import annotations

import argparse
import inspect
from typing import Any

import pytest

from alertwire import _config
from alertwire._config import parse_host_port, resolve
from alertwire._errors import ConfigurationError
from alertwire._pagerduty_client import AsyncPagerDuty, PagerDuty
from alertwire.cli.main import build_parser
from alertwire.ingest import IngestConfig, parse_listen
from alertwire.relay import Relay


def _command(name: str) -> argparse.ArgumentParser:
    parser = build_parser([name])
    for action in parser._actions:  # argparse offers no public way to reach subparsers
        if isinstance(action, argparse._SubParsersAction):
            command: argparse.ArgumentParser = action.choices[name]
            return command
    raise AssertionError(f"no {name} command")


def _numeric_defaults(parser: argparse.ArgumentParser) -> dict[str, Any]:
    """``dest -> default`` of every option whose default is a number (not a flag's False)."""
    return {
        action.dest: action.default
        for action in parser._actions
        if isinstance(action.default, (int, float)) and not isinstance(action.default, bool)
    }


def _signature_default(function: Any, name: str) -> Any:
    return inspect.signature(function).parameters[name].default


# Every numeric relay option: the library constant, and where the library uses it.
RELAY_OPTIONS: dict[str, tuple[Any, Any]] = {
    "concurrency": (_config.DEFAULT_CONCURRENCY, _signature_default(Relay, "concurrency")),
    "rate_limit": (
        _config.DEFAULT_RATE_LIMIT_PER_MINUTE,
        _signature_default(Relay, "rate_limit_per_minute"),
    ),
    "max_backoff": (_config.DEFAULT_MAX_BACKOFF, _signature_default(Relay, "max_backoff")),
    "max_age": (_config.DEFAULT_MAX_AGE, _signature_default(Relay, "max_age")),
    "resolve_max_age": (
        _config.DEFAULT_RESOLVE_MAX_AGE,
        _signature_default(Relay, "resolve_max_age"),
    ),
    "timeout": (_config.DEFAULT_TIMEOUT, _signature_default(Relay, "timeout")),
    "lease": (_config.DEFAULT_LEASE_SECONDS, _signature_default(Relay, "lease_seconds")),
    "poll_interval": (_config.DEFAULT_POLL_INTERVAL, _signature_default(Relay, "poll_interval")),
    "drain_timeout": (
        _config.DEFAULT_DRAIN_TIMEOUT,
        _signature_default(Relay.run_async, "drain_timeout"),
    ),
    "max_pending": (_config.DEFAULT_MAX_PENDING, IngestConfig().max_pending),
    "max_pending_per_key": (
        _config.DEFAULT_MAX_PENDING_PER_KEY,
        IngestConfig().max_pending_per_key,
    ),
}

SEND_OPTIONS: dict[str, tuple[Any, Any]] = {
    "concurrency": (
        _config.DEFAULT_CONCURRENCY,
        _signature_default(PagerDuty.send_many, "concurrency"),
    ),
}


@pytest.mark.parametrize(
    ("command", "expected"), [("relay", RELAY_OPTIONS), ("send", SEND_OPTIONS)]
)
def test_every_numeric_option_default_is_the_library_constant(
    command: str, expected: dict[str, tuple[Any, Any]]
) -> None:
    defaults = _numeric_defaults(_command(command))
    assert set(defaults) == set(expected), "an option's default is not tied to a constant"
    for dest, (constant, library_default) in expected.items():
        assert defaults[dest] == constant == library_default, dest


def test_async_client_shares_the_concurrency_default() -> None:
    assert _signature_default(AsyncPagerDuty.send_many, "concurrency") == (
        _config.DEFAULT_CONCURRENCY
    )


def test_relay_help_shows_the_constants() -> None:
    text = " ".join(_command("relay").format_help().split())
    for value in (
        _config.DEFAULT_CONCURRENCY,
        _config.DEFAULT_RATE_LIMIT_PER_MINUTE,
        _config.DEFAULT_MAX_BACKOFF,
        _config.DEFAULT_MAX_AGE,
        _config.DEFAULT_TIMEOUT,
        _config.DEFAULT_LEASE_SECONDS,
        _config.DEFAULT_POLL_INTERVAL,
        _config.DEFAULT_DRAIN_TIMEOUT,
    ):
        assert f"(default {value:g}" in text, value
    assert f"else {_config.DEFAULT_REGION})" in text


# --- flag, else environment, else default --------------------------------------------


def test_resolve_prefers_the_flag_to_the_environment() -> None:
    env = {"ALERTWIRE_X": "from-env"}
    assert resolve("from-flag", "ALERTWIRE_X", "default", env=env) == "from-flag"


def test_resolve_takes_the_environment_without_a_flag() -> None:
    env = {"ALERTWIRE_X": "  from-env  "}
    assert resolve(None, "ALERTWIRE_X", "default", env=env) == "from-env"
    assert resolve("", "ALERTWIRE_X", "default", env=env) == "from-env"


def test_resolve_falls_back_to_the_default() -> None:
    assert resolve(None, "ALERTWIRE_X", "default", env={}) == "default"
    assert resolve(None, "ALERTWIRE_X", "default", env={"ALERTWIRE_X": "  "}) == "default"
    assert resolve(None, "ALERTWIRE_X", None, env={}) is None


def test_resolve_parses_only_the_environment_text() -> None:
    env = {"ALERTWIRE_N": "7"}
    assert resolve(None, "ALERTWIRE_N", 3, parse=int, env=env) == 7
    assert resolve(5, "ALERTWIRE_N", 3, parse=int, env=env) == 5
    assert resolve(None, "ALERTWIRE_N", 3, parse=int, env={}) == 3
    with pytest.raises(ValueError):
        resolve(None, "ALERTWIRE_N", 3, parse=int, env={"ALERTWIRE_N": "seven"})


def test_resolve_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTWIRE_REGION", "eu")
    assert resolve(None, _config.ENV_REGION, _config.DEFAULT_REGION) == "eu"
    monkeypatch.delenv("ALERTWIRE_REGION")
    assert resolve(None, _config.ENV_REGION, _config.DEFAULT_REGION) == "us"


# --- one HOST:PORT parser ----------------------------------------------------------------


def test_one_host_port_parser() -> None:
    assert parse_listen is parse_host_port
    assert parse_host_port("127.0.0.1:8765") == ("127.0.0.1", 8765)
    assert parse_host_port(" [::1]:0 ") == ("::1", 0)


@pytest.mark.parametrize("text", ["8765", ":8765", "host:", "host:port", "host:65536"])
def test_host_port_refuses_bad_addresses(text: str) -> None:
    with pytest.raises(ConfigurationError, match="HOST:PORT"):
        parse_host_port(text)


def test_delivery_option_help_shows_the_retry_and_timeout_constants() -> None:
    from alertwire import _retry

    text = " ".join(_command("trigger").format_help().split())
    assert f"after this long (default {_config.DEFAULT_TIMEOUT:g})" in text
    assert f"never retry (default {_retry.DEFAULT_MAX_ATTEMPTS})" in text
    assert f"two tries (default {_retry.DEFAULT_MAX_BACKOFF:g};" in text
    assert f"exponentially from {_retry.DEFAULT_INITIAL_BACKOFF:g} s" in text
    assert f"else {_config.DEFAULT_REGION})" in text
