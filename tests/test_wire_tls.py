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
