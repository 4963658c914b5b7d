"""``import alertwire`` stays light: the transports' libraries load on first use only."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from tests.support.loopback_server import LoopbackServer, serve
from tests.support.services import free_port

server = pytest.fixture(serve)

HEAVY = ("aiohttp", "urllib3", "httpx")


def _imported_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(out.stdout.split())


def test_import_alertwire_imports_no_http_library() -> None:
    assert _imported_after("import alertwire") == set()


def test_building_events_and_clients_stays_light() -> None:
    code = (
        "import alertwire\n"
        "e = alertwire.TriggerAlert('x', severity='crit')\n"
        "c = alertwire.AsyncPagerDuty('R0uT1nGkEy0123456789abcdefABCDEF')\n"
    )
    assert _imported_after(code) == set()


def test_an_async_clients_send_loads_no_http_library() -> None:
    """The async default speaks HTTP/1.1 over asyncio itself (docs/transports.md): an async
    client's first send no longer pays aiohttp's import (about 0.4 s)."""
    code = (
        "import asyncio, alertwire\n"
        "async def main():\n"
        "    async with alertwire.AsyncPagerDuty('R0uT1nGkEy0123456789abcdefABCDEF',"
        " base_url='http://127.0.0.1:9', retry=alertwire.RetryPolicy.never()) as pd:\n"
        "        try:\n"
        "            await pd.trigger('x')\n"
        "        except alertwire.NetworkError:\n"
        "            print('sent')\n"
        "asyncio.run(main())\n"
    )
    probe = f"{code}import sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["sent"]


def test_the_public_transport_types_load_no_http_library() -> None:
    """``alertwire.transport`` names every adapter, but each loads its library on first use."""
    loaded = _loaded_after(
        "import alertwire.transport, alertwire.protocol.http\n"
        "from alertwire.transport import MockTransport, Request, Response, Transport\n"
    )
    assert [m for m in (*HEAVY, "ssl", "http.client") if m in loaded] == []
    assert "urllib3" in _loaded_after("from alertwire.transport import Urllib3Transport")


def test_the_probe_can_see_a_heavy_import() -> None:
    """Guard against a probe that can never fail."""
    assert "aiohttp" in _imported_after("import aiohttp")


# --- ``import alertwire`` itself loads no module of the library ---------------------------
#
# The public names load on first access (PEP 562), so a bare import, the one
# every DAG file, plugin and short script pays, stops at the package's own
# ``__init__``: none of the library's modules, and none of the standard
# library's costlier parts that those modules use (the figures:
# ``python -m bench.run --only import``, docs/benchmarks.md).

#: What ``import alertwire`` (and ``import alertwire.airflow``) must leave unloaded.
NOT_ON_IMPORT = (
    "aiohttp",
    "urllib3",
    "httpx",
    "orjson",
    "asyncio",
    "sqlite3",
    "ssl",
    "socket",
    "http.client",
    "json",
    "logging",
    "dataclasses",
    "inspect",
    "hashlib",
    "datetime",
    "importlib.metadata",
    "airflow",
)

#: What a one-event ``alertwire trigger`` must leave unloaded: the async and pooled
#: transports, the outbox's databases, and what only other commands or paths use.
NOT_FOR_ONE_EVENT = (
    "aiohttp",
    "urllib3",
    "httpx",
    "asyncio",
    "concurrent.futures",
    "sqlite3",
    "psycopg",
    "importlib.metadata",
    "pathlib",
    "hmac",
    "shutil",  # argparse's help formatters would import it; cli/main.py sizes them itself
    "textwrap",  # for help texts only: cli/main.py's parser wraps them when --help reads them
)


def _ran(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60, env=env)


def _printed_by(code: str, env: dict[str, str] | None = None) -> list[str]:
    """The words a fresh interpreter running ``code`` prints (it must succeed)."""
    out = _ran([sys.executable, "-c", code], env)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def _loaded_after(code: str, env: dict[str, str] | None = None) -> list[str]:
    return _printed_by(f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))", env)


def test_import_alertwire_loads_none_of_its_own_modules() -> None:
    loaded = _loaded_after("import alertwire")
    assert [m for m in loaded if m.startswith("alertwire.")] == []
    assert [m for m in NOT_ON_IMPORT if m in loaded] == []


def test_import_alertwire_airflow_loads_neither_airflow_nor_the_library() -> None:
    loaded = _loaded_after("import alertwire.airflow")
    assert [m for m in loaded if m.startswith("alertwire.")] == ["alertwire.airflow"]
    assert [m for m in NOT_ON_IMPORT if m in loaded] == []


def test_public_names_still_load_on_first_access() -> None:
    """Lazy, not missing: each name arrives from its module, and stays."""
    loaded = _loaded_after(
        "import alertwire\n"
        "assert alertwire.TriggerAlert.__module__ == 'alertwire.models.pagerduty'\n"
        "assert 'TriggerAlert' in vars(alertwire)\n"
        "from alertwire import Secret, ValidationError\n"
    )
    assert "alertwire.models.pagerduty" in loaded
    assert "alertwire._secret" in loaded
    assert "urllib3" not in loaded


def test_unknown_names_are_still_attribute_errors() -> None:
    import alertwire

    with pytest.raises(AttributeError, match="Tigger"):
        _ = alertwire.Tigger  # type: ignore[attr-defined]
    assert set(alertwire.__all__) <= set(dir(alertwire))


# --- ``alertwire trigger`` builds only its own command ------------------------------------


def _registered_by(*modules: str) -> list[str]:
    from alertwire.cli import main

    parser = main._Parser(prog="alertwire")
    subparsers = parser.add_subparsers()
    for name in modules:
        importlib.import_module(f"alertwire.cli.{name}").register(subparsers)
    return list(subparsers.choices)


def test_every_command_has_its_home_module_listed() -> None:
    """``COMMAND_HOMES`` names, for every top-level command, the module that registers it."""
    from alertwire.cli import main

    assert _registered_by(*main.COMMAND_MODULES) == list(main.COMMAND_HOMES)
    for module in main.COMMAND_MODULES:
        listed = [c for c, home in main.COMMAND_HOMES.items() if home == module]
        assert _registered_by(module) == listed, module


@pytest.mark.parametrize("command", ["trigger", "resolve", "change"])
def test_an_invoked_command_is_the_only_one_built(command: str) -> None:
    """``alertwire trigger`` builds the trigger's parser, not its module's three others."""
    from alertwire.cli import main

    built = main.build_parser([command, "--help"])
    assert [c.prog for c in main.subcommands(built)] == [f"alertwire {command}"]
    everything = [c.prog for c in main.subcommands(main.build_parser(["--help"]))]
    assert len(everything) == len(main.COMMAND_HOMES)


def test_a_one_event_command_loads_no_other_command_module() -> None:
    code = (
        "import contextlib, io\n"
        "from alertwire.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['trigger', 'disk full', '--source', 'h', '--dry-run']) == 0\n"
    )
    env = {**os.environ, "ALERTWIRE_ROUTING_KEY": "R0uT1nGkEy0123456789abcdefABCDEF"}
    loaded = _loaded_after(code, env)
    commands = [m for m in loaded if m.startswith("alertwire.cli.") and m.endswith("_cmd")]
    assert commands == ["alertwire.cli.pagerduty_cmd"]
    assert [m for m in NOT_FOR_ONE_EVENT if m in loaded] == []


#: What a one-event send to an http:// URL must leave unloaded on top of NOT_FOR_ONE_EVENT:
#: ``ssl`` is for https only, ``logging`` for a warning only, ``random`` for a retry only,
#: and the transport writes HTTP/1.1 itself (no ``http.client`` or ``email``).
NOT_FOR_ONE_HTTP_SEND = ("ssl", "http.client", "email.parser", "logging", "random")

_ONE_EVENT_ENV = {**os.environ, "ALERTWIRE_ROUTING_KEY": "R0uT1nGkEy0123456789abcdefABCDEF"}


def _trigger_code(*argv: str) -> str:
    return (
        "import contextlib, io, sys\n"
        "from alertwire.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = main({list(argv)!r})\n"
    )


def test_a_one_event_send_over_http_loads_neither_ssl_nor_logging(server: LoopbackServer) -> None:
    code = _trigger_code("trigger", "disk full", "--source", "h", "--pagerduty-url", server.url)
    loaded = _loaded_after(code + "assert code == 0, code\n", _ONE_EVENT_ENV)
    assert len(server.received) == 1
    assert [m for m in (*NOT_FOR_ONE_EVENT, *NOT_FOR_ONE_HTTP_SEND) if m in loaded] == []


#: The model modules a trigger never needs: each defines dataclasses, and making one costs a
#: one-event ``alertwire trigger`` about half a millisecond (docs/cli.md, "Start-up cost").
NOT_FOR_A_TRIGGER = (
    "alertwire.models.pagerduty_keyed",
    "alertwire.models.pagerduty_change",
    "alertwire.models.pagerduty_event",
)


def test_a_trigger_creates_no_other_event_class(server: LoopbackServer) -> None:
    code = _trigger_code("trigger", "disk full", "--source", "h", "--pagerduty-url", server.url)
    loaded = _loaded_after(code + "assert code == 0, code\n", _ONE_EVENT_ENV)
    assert len(server.received) == 1
    assert "alertwire.models.pagerduty" in loaded
    assert [m for m in NOT_FOR_A_TRIGGER if m in loaded] == []


def test_the_other_event_classes_still_load_from_the_models_module() -> None:
    """Lazy, not missing: ``models.pagerduty`` exports them, and their field types resolve."""
    loaded = _loaded_after(
        "from alertwire.models.pagerduty import TriggerAlert\n"
        "import alertwire.models.pagerduty as m\n"
        "assert TriggerAlert('x', source='h', links=['https://x.example']).links[0].href\n"
        "from alertwire.models.pagerduty import AcknowledgeAlert, Change, PagerDutyEvent\n"
        "assert isinstance(Change('x', source='h'), PagerDutyEvent)\n"
        "assert m.ResolveAlert('k').dedup_key == 'k' and m.Image is m.Image\n"
        "assert {'Change', 'Link', 'PagerDutyEvent'} <= set(dir(m))\n"
        "import typing\n"
        "for cls in (TriggerAlert, AcknowledgeAlert, m.ResolveAlert, Change, m.Link, m.Image):\n"
        "    assert typing.get_type_hints(cls), cls\n"
        "from alertwire import AsyncPagerDuty, PagerDuty\n"
        "assert typing.get_type_hints(PagerDuty.send)['event'] is PagerDutyEvent\n"
        "assert typing.get_type_hints(AsyncPagerDuty.send)['event'] is PagerDutyEvent\n"
    )
    assert [m for m in NOT_FOR_A_TRIGGER if m not in loaded] == []


def test_a_one_event_send_still_prints_its_warnings_once_logging_loads() -> None:
    """The CLI's handler waits for the first warning (cli/_run.logging_to, lazily)."""
    port = free_port()  # nothing listens there: every attempt is refused
    code = _trigger_code(
        "trigger",
        "x" * 1100,
        "--source",
        "h",
        "--pagerduty-url",
        f"http://127.0.0.1:{port}",
        "--max-attempts",
        "2",
        "--max-backoff",
        "0.01",
    )
    done = subprocess.run(
        [sys.executable, "-c", code + "sys.exit(code)\n"],
        capture_output=True,
        text=True,
        env=_ONE_EVENT_ENV,
        timeout=60,
        check=False,
    )
    assert done.returncode == 4
    lines = done.stderr.splitlines()
    assert lines[0] == (
        "alertwire: summary of 1100 characters shortened to 1024 (PagerDuty refuses longer ones)"
    )
    assert lines[1].startswith(f"alertwire: attempt 1 to http://127.0.0.1:{port}/v2/enqueue failed")
    assert lines[2].startswith("alertwire: error: retries exhausted after 2 attempts")


def test_the_version_is_a_constant_that_matches_the_installed_package() -> None:
    """``alertwire --version`` reads a constant: importlib.metadata costs start-up time."""
    from importlib.metadata import version

    import alertwire

    assert alertwire.__version__ == version("alertwire")


def _help_lines(columns: int) -> list[str]:
    code = (
        "import contextlib, io, sys\n"
        "from alertwire.cli.main import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
        "    main(['trigger', '--help'])\n"
        "print(out.getvalue(), end='')\n"
    )
    env = {**os.environ, "COLUMNS": str(columns)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return done.stdout.splitlines()


def test_help_still_follows_the_terminal_width_without_shutil() -> None:
    """The formatters sized by cli/main.py wrap the options' help at COLUMNS, as argparse's
    own do (the description and exit-code table are pre-formatted and may be wider)."""
    narrow, wide = _help_lines(60), _help_lines(160)
    assert len(narrow) > len(wide)
    options = narrow[narrow.index("options:") + 1 :]
    options = options[: options.index("")]
    assert max(len(line) for line in options) <= 60
    assert max(len(line) for line in wide) > 80


# --- the ``alertwire`` program ends without the collector's last walk -------------------
#
# ``console()`` (the installed script's entry point) runs ``main()`` and then freezes
# the cyclic garbage collector, since the process exits right after (docs/cli.md,
# "Start-up cost"); ``main()`` itself, called in-process, leaves the collector as it was.

_CONSOLE_PROBE = """
import contextlib, gc, io, sys
from alertwire.cli import main
sys.argv = ["alertwire", "trigger", "disk full", "--source", "h", "--dry-run"]
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = main.{entry}()
print(code, gc.get_freeze_count() > 0, gc.isenabled(), "POST" in out.getvalue())
"""


def test_the_installed_script_runs_console() -> None:
    (script,) = entry_points(group="console_scripts", name="alertwire")
    assert script.value == "alertwire.cli.main:console"


def test_console_returns_mains_exit_code_and_freezes_the_collector() -> None:
    code = _CONSOLE_PROBE.format(entry="console")
    assert _printed_by(code, _ONE_EVENT_ENV) == ["0", "True", "True", "True"]


def test_main_alone_leaves_the_collector_as_it_was() -> None:
    code = _CONSOLE_PROBE.format(entry="main")
    assert _printed_by(code, _ONE_EVENT_ENV) == ["0", "False", "True", "True"]


def test_the_script_exits_with_mains_codes() -> None:
    """Through the real script: a success, and a usage error (argparse's exit 2)."""
    alertwire = os.path.join(os.path.dirname(sys.executable), "alertwire")
    ok = _ran([alertwire, "trigger", "disk full", "--source", "h", "--dry-run"], _ONE_EVENT_ENV)
    assert (ok.returncode, ok.stdout.startswith("POST ")) == (0, True), ok.stderr
    bad = _ran([alertwire, "trigger"], _ONE_EVENT_ENV)
    assert bad.returncode == 2
    assert bad.stderr.startswith("alertwire: error: the following arguments are required")
