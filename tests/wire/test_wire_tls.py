"""The throwaway CA (``--tls``): trustme is an optional extra, named when it is missing."""

from __future__ import annotations

import ssl
import sys
from pathlib import Path

import pytest

from alertwire import ConfigurationError
from alertwire.wire import make_server_tls


def test_a_throwaway_ca_writes_its_certificate_and_serves_a_context(tmp_path: Path) -> None:
    made = make_server_tls("127.0.0.1", tmp_path / "ca.pem")
    assert isinstance(made.context, ssl.SSLContext)
    assert made.ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert made.temp_dir is None


def test_a_ca_in_a_temporary_directory_names_no_one_server(tmp_path: Path) -> None:
    """The relay's ``--tls`` prints this path too: a directory named after the sandbox
    there made a reader wonder which server they were trusting."""
    import shutil

    made = make_server_tls("127.0.0.1")
    try:
        assert made.temp_dir is not None and made.ca_file.parent == made.temp_dir
        assert made.temp_dir.name.startswith("alertwire-ca-")
        assert made.ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")
    finally:
        shutil.rmtree(made.temp_dir or tmp_path, ignore_errors=True)


def test_without_trustme_the_error_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "trustme", None)  # as if not installed
    with pytest.raises(ConfigurationError, match=r"alertwire\[tls\]") as info:
        make_server_tls("127.0.0.1", tmp_path / "ca.pem")
    assert "--tls-cert" in str(info.value)
    assert not (tmp_path / "ca.pem").exists()


def test_importing_the_servers_does_not_import_trustme() -> None:
    import subprocess

    code = "import sys, alertwire.ingest, alertwire.sandbox.server;print('trustme' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


def test_both_commands_say_which_extra_in_one_line_and_exit_2(tmp_path: Path) -> None:
    """`alertwire sandbox --tls` and `alertwire relay --listen ... --tls`, trustme not installed."""
    import os
    import subprocess

    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "trustme.py").write_text('raise ImportError("not installed")\n')
    env = {**os.environ, "PYTHONPATH": str(hide)}
    commands = [
        ["sandbox", "--tls", "--port", "0"],
        ["relay", "--outbox", str(tmp_path / "o.sqlite3"), "--listen", "127.0.0.1:0", "--tls"],
    ]
    for args in commands:
        done = subprocess.run(
            [sys.executable, "-m", "alertwire.cli.main", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, (args, done.stderr)
        errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
        assert len(errors) == 1 and "alertwire[tls]" in errors[0], (args, done.stderr)
