"""``alertwire sandbox``: the local PagerDuty + BigPanda, in the foreground until a signal.

Prints where it listens (and, with ``--tls``, the CA file to trust), then
serves until SIGTERM or Ctrl-C and exits 0. It binds loopback by default and
refuses any other address without ``--allow-non-loopback`` (exit 2).
"""

from __future__ import annotations

import argparse
from typing import Any

from . import _exit
from ._options import add_command, int_between

__all__ = ["register"]


def register(subparsers: Any) -> None:
    command = add_command(
        subparsers,
        "sandbox",
        help="run a local PagerDuty + BigPanda sandbox with a dashboard",
        description="Serve PagerDuty's Events API v2 (/v2/enqueue, /v2/change/enqueue) and"
        " BigPanda's Alerts API (/data/v2/alerts) locally, with real answers and alert"
        " state, an inspection API under /sandbox/ and a dashboard at /. Stops on"
        " SIGTERM or Ctrl-C.",
        epilog=_exit.epilog(
            _exit.OK,
            _exit.BAD_INPUT,
            say={
                _exit.OK: "stopped by SIGTERM or Ctrl-C",
                _exit.BAD_INPUT: "bad option (e.g. a non-loopback --host without"
                " --allow-non-loopback)",
            },
        ),
    )
    command.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; loopback only)"
    )
    command.add_argument(
        "--port",
        type=int_between(0, 65535),
        default=8765,
        help="port to listen on (default 8765; 0 picks a free one)",
    )
    command.add_argument(
        "--tls", action="store_true", help="serve https with a throwaway certificate authority"
    )
    command.add_argument(
        "--ca-file", metavar="PATH", help="with --tls: where to write the CA certificate"
    )
    command.add_argument(
        "--rate-limit",
        type=int_between(1, 1_000_000),
        metavar="N",
        help="answer 429 beyond N events per minute per routing key (sliding window)",
    )
    command.add_argument(
        "--allow-non-loopback",
        action="store_true",
        help="allow --host to be a non-loopback address (anyone who can reach it can send)",
    )
    command.set_defaults(handler=_sandbox)


def _sandbox(args: argparse.Namespace) -> int:
    import asyncio

    asyncio.run(_serve(args))
    return _exit.OK


async def _serve(args: argparse.Namespace) -> None:
    import asyncio
    import signal

    from ..sandbox import SandboxServer

    server = SandboxServer(
        host=args.host,
        port=args.port,
        tls=args.tls,
        ca_file=args.ca_file,
        rate_limit=args.rate_limit,
        allow_non_loopback=args.allow_non_loopback,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    try:
        url = server.url
        print(f"alertwire sandbox listening on {url}", flush=True)
        print(f"  dashboard:  {url}/", flush=True)
        print(f"  PagerDuty:  {url}/v2/enqueue, {url}/v2/change/enqueue", flush=True)
        print(f"  BigPanda:   {url}/data/v2/alerts (Authorization: Bearer <token>)", flush=True)
        print(f"  inspect:    {url}/sandbox/alerts, /sandbox/events, /sandbox/changes,", end="")
        print(" /sandbox/bigpanda; POST /sandbox/faults, /sandbox/reset", flush=True)
        if server.rate_limit is not None:
            print(f"  rate limit: {server.rate_limit} events per minute per key", flush=True)
        if server.ca_file is not None:
            print(f"  CA certificate: {server.ca_file}", flush=True)
        print("Stop with Ctrl-C (or SIGTERM).", flush=True)
        await stop.wait()
    finally:
        await server.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    print("alertwire sandbox stopped", flush=True)
