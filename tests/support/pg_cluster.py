"""A throwaway PostgreSQL cluster on loopback: shared by the test fixture and the benchmarks.

No pytest here on purpose: ``tests/support/services.py`` wraps it in the session
fixture ``postgres_cluster`` (turning :class:`ClusterUnavailable` into a skip,
which ``scripts/test.sh`` turns into a failure), and ``bench/`` starts one the
same way for its PostgreSQL scenarios. Debian's server binaries; run as the
``postgres`` user when we are root (PostgreSQL refuses root); a free port on
127.0.0.1; everything in a fresh temporary directory deleted at the end.

``durable=False`` (the tests) turns fsync off, which makes the cluster start
and run fast and loses nothing unless the machine itself crashes; the
benchmarks use ``durable=True`` so that commits cost what they cost in
production.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "STARTUP_TIMEOUT",
    "ClusterUnavailable",
    "PostgresCluster",
    "postgres_bindir",
    "restart_postgres",
    "start_postgres",
    "stop_postgres",
    "throwaway_cluster",
]

#: How long the server may take to come up before we give up.
STARTUP_TIMEOUT = 60.0


class ClusterUnavailable(RuntimeError):
    """PostgreSQL cannot be run here (binaries or the ``postgres`` user missing)."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def postgres_bindir() -> Path | None:
    """Debian's newest PostgreSQL server binaries (``/usr/lib/postgresql/N/bin``)."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found = [d for d in found if (d / "pg_ctl").exists() and (d / "psql").exists()]
    if not found:
        return None

    def version(d: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", d.parent.name))

    return max(found, key=version)


@dataclass(frozen=True, slots=True)
class PostgresCluster:
    """A running throwaway cluster. ``password`` belongs to the role ``alertwire``."""

    bindir: Path
    datadir: Path
    socket_dir: Path
    port: int
    user: str
    password: str
    database: str
    run_as: tuple[str, ...] = field(repr=False)

    @property
    def dsn(self) -> str:
        """Password login over TCP, as an application would connect."""
        return self.dsn_for(self.database)

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, *, database: str = "postgres") -> str:
        """Run SQL as the superuser over the cluster's Unix socket; returns stdout."""
        result = subprocess.run(
            [
                *self.run_as,
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
            ],
            input=sql.encode(),
            capture_output=True,
            timeout=STARTUP_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.decode(errors='replace')}")
        return result.stdout.decode()

    def new_database(self) -> str:
        """A fresh empty database owned by ``alertwire``; returns its DSN."""
        name = "t_" + secrets.token_hex(6)
        self.psql(f"CREATE DATABASE {name} OWNER {self.user};")
        return self.dsn_for(name)


def start_postgres(
    tmp: Path, bindir: Path, run_as: tuple[str, ...], *, durable: bool = False
) -> PostgresCluster:
    datadir = tmp / "data"
    log = tmp / "postgres.log"
    subprocess.run(
        [
            *run_as,
            str(bindir / "initdb"),
            "-D",
            str(datadir),
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        ],
        check=True,
        capture_output=True,
        timeout=STARTUP_TIMEOUT,
    )
    last_error = ""
    for _ in range(5):
        port = _free_port()
        result = _pg_ctl_start(bindir, datadir, tmp, port, run_as, durable=durable)
        if result.returncode == 0:
            password = secrets.token_urlsafe(18)
            cluster = PostgresCluster(
                bindir=bindir,
                datadir=datadir,
                socket_dir=tmp,
                port=port,
                user="alertwire",
                password=password,
                database="alertwire",
                run_as=run_as,
            )
            # Through stdin, so the password is not on a command line for `ps` to show.
            cluster.psql(f"CREATE ROLE alertwire LOGIN PASSWORD '{password}';")
            cluster.psql("CREATE DATABASE alertwire OWNER alertwire;")
            return cluster
        last_error = result.stderr.decode(errors="replace")
        if log.exists():
            last_error += log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"PostgreSQL did not start: {last_error}")


def _pg_ctl_start(
    bindir: Path,
    datadir: Path,
    socket_dir: Path,
    port: int,
    run_as: tuple[str, ...],
    *,
    durable: bool,
) -> subprocess.CompletedProcess[bytes]:
    # A test cluster needs no durability: fsync off makes it start and run fast.
    options = f"-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    return subprocess.run(
        [
            *run_as,
            str(bindir / "pg_ctl"),
            "-D",
            str(datadir),
            "-l",
            str(socket_dir / "postgres.log"),
            "-w",
            "-t",
            str(int(STARTUP_TIMEOUT)),
            "-o",
            options,
            "start",
        ],
        capture_output=True,
        timeout=STARTUP_TIMEOUT + 10,
        check=False,
    )


def restart_postgres(cluster: PostgresCluster, *, durable: bool = False) -> None:
    """Start a stopped (or crashed) cluster again on its own port, socket and data.

    For outage tests: after :func:`stop_postgres` (``-m immediate``, as a crash or
    a failover looks to a client) the server runs crash recovery and comes back
    where clients expect it. Raises if it does not come up.
    """
    result = _pg_ctl_start(
        cluster.bindir,
        cluster.datadir,
        cluster.socket_dir,
        cluster.port,
        cluster.run_as,
        durable=durable,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"PostgreSQL did not start again: {result.stderr.decode(errors='replace')}"
        )


def stop_postgres(cluster: PostgresCluster) -> None:
    subprocess.run(
        [
            *cluster.run_as,
            str(cluster.bindir / "pg_ctl"),
            "-D",
            str(cluster.datadir),
            "-m",
            "immediate",
            "-w",
            "stop",
        ],
        capture_output=True,
        timeout=STARTUP_TIMEOUT,
        check=False,
    )


@contextlib.contextmanager
def throwaway_cluster(*, durable: bool = False) -> Iterator[PostgresCluster]:
    """Start a cluster, yield it, stop it and delete its files."""
    bindir = postgres_bindir()
    if bindir is None:
        raise ClusterUnavailable("PostgreSQL server binaries not found (Debian package postgresql)")
    run_as: tuple[str, ...] = ()
    tmp = Path(tempfile.mkdtemp(prefix="alertwire-pg-"))
    try:
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                raise ClusterUnavailable(
                    "running as root and there is no 'postgres' user to run PostgreSQL"
                ) from None
            if shutil.which("runuser") is None:
                raise ClusterUnavailable("running as root and runuser is missing")
            os.chown(tmp, account.pw_uid, account.pw_gid)
            run_as = ("runuser", "-u", "postgres", "--")
        cluster = start_postgres(tmp, bindir, run_as, durable=durable)
        try:
            yield cluster
        finally:
            stop_postgres(cluster)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
