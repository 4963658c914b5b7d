"""``alertwire relay --listen`` as a real subprocess, for the ingest tests.

Why a subprocess: the tests kill it with SIGKILL and SIGTERM, as a supervisor
or a crash would, and restart it on the same port (the sending tools keep
their configured URL). Output goes to files, not pipes, so a chatty relay
can never block on a full pipe. Start-up waits for the "listening on" line,
bounded by a deadline (a hang fails the test instead of stalling it).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["RelayProcess"]

STARTUP_TIMEOUT = 30.0

_LIMITED = """
import os, resource, signal, sys
limit = int(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
os.execv(sys.argv[2], sys.argv[2:])
"""


class RelayProcess:
    """One relay command line; ``start()`` may be called again after ``kill()``."""

    def __init__(
        self,
        workdir: Path,
        *,
        outbox: Path,
        pagerduty_url: str | None = None,
        bigpanda_url: str | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        extra: Sequence[str] = (),
        env: dict[str, str] | None = None,
        file_size_limit: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.outbox = outbox
        self.host = host
        self.port = port
        self.pagerduty_url = pagerduty_url
        self.bigpanda_url = bigpanda_url
        self.extra = list(extra)
        self.env = env
        self.file_size_limit = file_size_limit
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.ca_file: str | None = None
        self.runs = 0

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "alertwire.cli.main",
            "relay",
            "--listen",
            f"{self.host}:{self.port}",
            "--outbox",
            str(self.outbox),
            "--rate-limit",
            "0",
            "--poll-interval",
            "0.05",
            "--timeout",
            "2",
            # A SIGKILLed relay's claims are taken over after the lease: short, for the tests.
            "--lease",
            "3",
            *self.extra,
        ]
        if self.pagerduty_url:
            cmd += ["--pagerduty-url", self.pagerduty_url]
        if self.bigpanda_url:
            cmd += ["--bigpanda-url", self.bigpanda_url]
        if self.file_size_limit is not None:
            # A disk that fills up, honestly: the kernel refuses writes past RLIMIT_FSIZE
            # (EFBIG, SQLITE_FULL); SIGXFSZ ignored so the write fails instead of killing.
            cmd = [sys.executable, "-c", _LIMITED, str(self.file_size_limit), *cmd]
        return cmd

    @property
    def stdout_path(self) -> Path:
        return self.workdir / f"relay-{self.runs}.out"

    @property
    def stderr_path(self) -> Path:
        return self.workdir / f"relay-{self.runs}.err"

    def start(self) -> RelayProcess:
        self.runs += 1
        env = {**os.environ, **(self.env or {})}
        env.setdefault("PYTHONUNBUFFERED", "1")
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            text = self.stdout_path.read_text(errors="replace")
            match = re.search(r"listening on (\S+)", text)
            if match and "health:" in text:
                self.url = match.group(1)
                ca = re.search(r"CA certificate: (\S+)", text)
                self.ca_file = ca.group(1) if ca else None
                if self.port == 0:  # keep the port across restarts, as a tool's config would
                    self.port = int(self.url.rsplit(":", 1)[1])
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"relay exited {self.process.returncode}: {self.output()}")
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"relay did not start in {STARTUP_TIMEOUT}s: {self.output()}")

    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(
            errors="replace"
        )

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as a crash or the OOM killer."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.kill()
