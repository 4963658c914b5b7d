"""The ``alertwire`` program ends without the collector's last walk over every object.

``console()`` (the installed script's entry point) runs ``main()`` and then
freezes the cyclic garbage collector, since the process exits right after
(docs/cli.md, "Start-up cost"); ``main()`` itself, called in-process, leaves
the collector as it was.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points

_ENV = {**os.environ, "ALERTWIRE_ROUTING_KEY": "R0uT1nGkEy0123456789abcdefABCDEF"}

_PROBE = """
import contextlib, gc, io, sys
from alertwire.cli import main
sys.argv = ["alertwire", "trigger", "disk full", "--source", "h", "--dry-run"]
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = main.{entry}()
print(code, gc.get_freeze_count() > 0, gc.isenabled(), "POST" in out.getvalue())
"""


def _run(entry: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(entry=entry)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=_ENV,
    )
    return done.stdout.split()


def test_the_installed_script_runs_console() -> None:
    (script,) = entry_points(group="console_scripts", name="alertwire")
    assert script.value == "alertwire.cli.main:console"


def test_console_returns_mains_exit_code_and_freezes_the_collector() -> None:
    assert _run("console") == ["0", "True", "True", "True"]


def test_main_alone_leaves_the_collector_as_it_was() -> None:
    assert _run("main") == ["0", "False", "True", "True"]


def test_the_script_exits_with_mains_codes() -> None:
    """Through the real script: a success, and a usage error (argparse's exit 2)."""
    alertwire = os.path.join(os.path.dirname(sys.executable), "alertwire")
    ok = subprocess.run(
        [alertwire, "trigger", "disk full", "--source", "h", "--dry-run"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=_ENV,
    )
    assert (ok.returncode, ok.stdout.startswith("POST ")) == (0, True), ok.stderr
    bad = subprocess.run(
        [alertwire, "trigger"], capture_output=True, text=True, check=False, timeout=60, env=_ENV
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("alertwire: error: the following arguments are required")
