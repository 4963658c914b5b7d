"""Real external servers for the tests: PostgreSQL, Prometheus Alertmanager, Chromium, tinyproxy.

Why real programs instead of fakes: the project promises delivery through a
real PostgreSQL, alerts from a real Alertmanager webhook and a dashboard that
renders in a real browser; a fake would only test our idea of them. Every
server binds 127.0.0.1 on a free port, keeps its files in a fresh temporary
directory and is stopped and deleted at teardown, so parallel runs (and other
engineers' servers) never collide.

The programs come from Debian's packages, which ``scripts/test.sh`` installs.
When one is missing the fixture skips with the reason; under
``ALERTWIRE_REQUIRE_ALL=1`` / ``CI=true`` ``tests/conftest.py`` turns that skip
into a failure, so a missing server can never pass silently.

Fixtures (registered in ``tests/conftest.py``):

- ``postgres_cluster`` (session): a throwaway cluster; ``.dsn`` logs in as the
  password-protected role ``alertwire`` over TCP, ``.new_database()`` gives a
  fresh empty database for tests that need isolation.
- ``postgres_dsn`` (session): ``postgres_cluster.dsn``.
- ``alertmanager_bin`` (session) and ``run_alertmanager`` (function): a factory
  ``run_alertmanager(config_yaml) -> RunningAlertmanager(base_url, process)``.
- ``chromium_bin`` (session) and ``chromium`` (session): a :class:`Chromium`
  with ``dump_dom(url)`` and ``screenshot(url, out_png, width, height)``.
- ``run_tinyproxy`` (function): a factory ``run_tinyproxy(login=None) ->
  RunningProxy(url, log)``: Debian's tinyproxy, an HTTP proxy with CONNECT,
  optionally asking for Basic credentials ``(user, password)``; ``log`` is the
  text of its log so far (each request it was asked for is a line there).

Helpers: :func:`free_port`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.support.pg_cluster import ClusterUnavailable, PostgresCluster, throwaway_cluster
from tests.support.waiting import wait_for

__all__ = [
    "Chromium",
    "PostgresCluster",
    "RunningAlertmanager",
    "alertmanager_bin",
    "chromium",
    "chromium_bin",
    "free_port",
    "postgres_cluster",
    "postgres_dsn",
    "run_alertmanager",
    "run_tinyproxy",
]

#: How long a server may take to come up before the fixture gives up.
STARTUP_TIMEOUT = 60.0
#: How long one headless Chromium run may take.
CHROMIUM_TIMEOUT = 60.0

ALERTMANAGER_BIN = "/usr/bin/prometheus-alertmanager"
CHROMIUM_BIN = "/usr/bin/chromium"
TINYPROXY_BIN = "/usr/bin/tinyproxy"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago.

    There is a window between closing this socket and the server binding the
    port; fixtures that use it retry the start when the server loses that race.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process started with ``start_new_session=True`` and all it spawned."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    # Children (Chromium's renderers) may outlive the leader: the group goes too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


@contextlib.contextmanager
def _cleaned_up(started: list[subprocess.Popen[bytes]], dirs: list[Path]) -> Iterator[None]:
    """A server factory's teardown: every process it started stopped, every directory gone."""
    try:
        yield
    finally:
        for proc in started:
            _kill_group(proc)
        for tmp in dirs:
            shutil.rmtree(tmp, ignore_errors=True)


# --- PostgreSQL ------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster on a free loopback port, deleted afterwards.

    Started by :mod:`tests.support.pg_cluster` (shared with ``bench/``).
    """
    try:
        with throwaway_cluster() as cluster:
            yield cluster
    except ClusterUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def postgres_dsn(postgres_cluster: PostgresCluster) -> str:
    """``postgresql://alertwire:PASSWORD@127.0.0.1:PORT/alertwire`` of the test cluster."""
    return postgres_cluster.dsn


# --- Prometheus Alertmanager -----------------------------------------------


class RunningAlertmanager(NamedTuple):
    """What ``run_alertmanager`` returns; unpacks as ``base_url, process``."""

    base_url: str
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="session")
def alertmanager_bin() -> str:
    """Debian's Alertmanager binary."""
    path = ALERTMANAGER_BIN
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path} not found (Debian package prometheus-alertmanager)")
    return path


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> bool:
    """Poll ``url`` until it answers 200; False if the process died first."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {STARTUP_TIMEOUT}s: {log.read_text()[-2000:]}")


@pytest.fixture
def run_alertmanager(
    alertmanager_bin: str,
) -> Iterator[Callable[[str], RunningAlertmanager]]:
    """Factory: start an Alertmanager with the given YAML config; all stopped at teardown.

    Clustering is off (``--cluster.listen-address=``), so it opens no gossip
    port and needs no peers; storage lives in a fresh temporary directory.
    """
    started: list[subprocess.Popen[bytes]] = []
    dirs: list[Path] = []

    def start(config_yaml: str) -> RunningAlertmanager:
        tmp = Path(tempfile.mkdtemp(prefix="alertwire-am-"))
        dirs.append(tmp)
        config = tmp / "alertmanager.yml"
        config.write_text(config_yaml)
        log = tmp / "alertmanager.log"
        for _ in range(5):
            port = free_port()
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [
                        alertmanager_bin,
                        f"--config.file={config}",
                        f"--storage.path={tmp / 'data'}",
                        f"--web.listen-address=127.0.0.1:{port}",
                        "--cluster.listen-address=",
                        "--log.level=warn",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            started.append(proc)
            base_url = f"http://127.0.0.1:{port}"
            if _wait_ready(f"{base_url}/-/ready", proc, log):
                return RunningAlertmanager(base_url, proc)
            text = log.read_text(errors="replace")
            if "address already in use" not in text:
                raise RuntimeError(f"alertmanager exited: {text[-2000:]}")
        raise RuntimeError("alertmanager could not bind a free port in 5 tries")

    with _cleaned_up(started, dirs):
        yield start


# --- tinyproxy -------------------------------------------------------------


@dataclass(frozen=True)
class RunningProxy:
    """What ``run_tinyproxy`` returns: its ``http://127.0.0.1:PORT`` URL and log file."""

    url: str
    log_file: Path

    def log(self) -> str:
        """Everything the proxy logged so far (requests appear as ``Request ...`` lines)."""
        return self.log_file.read_text(errors="replace")


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _listening_or_gone(proc: subprocess.Popen[bytes], port: int) -> bool:
    """The server came up (its port accepts) or will not (it exited)."""
    return proc.poll() is not None or _accepts(port)


@pytest.fixture
def run_tinyproxy() -> Iterator[Callable[..., RunningProxy]]:
    """Factory: start Debian's tinyproxy on a free loopback port; stopped at teardown.

    Every port may be tunnelled to (no ``ConnectPort`` line), so the tests'
    TLS sandbox on a high port is reachable through ``CONNECT``.
    """
    if not os.access(TINYPROXY_BIN, os.X_OK):
        pytest.skip(f"{TINYPROXY_BIN} not found (Debian package tinyproxy)")
    started: list[subprocess.Popen[bytes]] = []
    dirs: list[Path] = []

    def start(login: tuple[str, str] | None = None) -> RunningProxy:
        tmp = Path(tempfile.mkdtemp(prefix="alertwire-proxy-"))
        dirs.append(tmp)
        log = tmp / "tinyproxy.log"
        for _ in range(5):
            port = free_port()
            config = tmp / "tinyproxy.conf"
            config.write_text(
                f"Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 64\n"
                f'LogFile "{log}"\nLogLevel Info\n'
                + (f"BasicAuth {login[0]} {login[1]}\n" if login else "")
            )
            proc = subprocess.Popen(
                [TINYPROXY_BIN, "-d", "-c", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            started.append(proc)
            wait_for(
                "tinyproxy to listen or exit",
                functools.partial(_listening_or_gone, proc, port),
                timeout=STARTUP_TIMEOUT,
            )
            if proc.poll() is None:
                return RunningProxy(f"http://127.0.0.1:{port}", log)
            _kill_group(proc)
        text = log.read_text(errors="replace") if log.exists() else ""
        raise RuntimeError(f"tinyproxy did not start in 5 tries: {text[-2000:]}")

    with _cleaned_up(started, dirs):
        yield start


# --- Chromium --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chromium:
    """Headless Chromium runs, each with a fresh profile and a time limit.

    The flags are the ones known to work on these machines as root: no sandbox
    (root), no GPU (no screen), and no background networking, sync or
    component updates, whose connections this machine's closed network refuses.
    ``virtual_time_budget_ms`` lets pages with JavaScript timers finish: Chromium
    fast-forwards virtual time instead of the test sleeping.
    """

    binary: str
    timeout: float = CHROMIUM_TIMEOUT

    def _run(self, args: list[str], *, virtual_time_budget_ms: int | None) -> str:
        with tempfile.TemporaryDirectory(prefix="alertwire-chromium-") as tmp:
            out_path = Path(tmp) / "stdout"
            err_path = Path(tmp) / "stderr"
            command = [
                self.binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                f"--user-data-dir={Path(tmp) / 'profile'}",
            ]
            if virtual_time_budget_ms is not None:
                command.append(f"--virtual-time-budget={virtual_time_budget_ms}")
            command += args
            # Output to files, not pipes: Chromium's helper processes inherit
            # the descriptors and could keep a pipe open after the browser exits.
            with out_path.open("wb") as out, err_path.open("wb") as err:
                proc = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                )
                try:
                    proc.wait(timeout=self.timeout)
                except subprocess.TimeoutExpired:
                    _kill_group(proc)
                    raise RuntimeError(
                        f"chromium did not finish in {self.timeout}s: "
                        f"{err_path.read_text(errors='replace')[-2000:]}"
                    ) from None
                finally:
                    _kill_group(proc)
            if proc.returncode != 0:
                raise RuntimeError(
                    f"chromium exited with {proc.returncode}: "
                    f"{err_path.read_text(errors='replace')[-2000:]}"
                )
            return out_path.read_text(errors="replace")

    def dump_dom(self, url: str, *, virtual_time_budget_ms: int | None = 5000) -> str:
        """The page's DOM as HTML, after scripts ran (and timers, within the budget)."""
        return self._run(["--dump-dom", url], virtual_time_budget_ms=virtual_time_budget_ms)

    def screenshot(
        self,
        url: str,
        out_png: Path | str,
        width: int = 1280,
        height: int = 800,
        *,
        virtual_time_budget_ms: int | None = 5000,
    ) -> Path:
        """Render ``url`` into a ``width`` x ``height`` PNG at ``out_png``."""
        out = Path(out_png).resolve()
        out.unlink(missing_ok=True)
        self._run(
            ["--hide-scrollbars", f"--window-size={width},{height}", f"--screenshot={out}", url],
            virtual_time_budget_ms=virtual_time_budget_ms,
        )
        if not out.exists():
            raise RuntimeError(f"chromium wrote no screenshot to {out}")
        return out


@pytest.fixture(scope="session")
def chromium_bin() -> str:
    """Debian's Chromium binary."""
    path = CHROMIUM_BIN
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path} not found (Debian package chromium)")
    return path


@pytest.fixture(scope="session")
def chromium(chromium_bin: str) -> Chromium:
    """A :class:`Chromium` runner for Debian's Chromium."""
    return Chromium(chromium_bin)
