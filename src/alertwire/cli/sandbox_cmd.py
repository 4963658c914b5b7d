"""``alertwire sandbox``: the local PagerDuty + BigPanda, in the foreground until a signal.

Prints where it listens (and, with ``--tls``, the CA file to trust), then
serves until SIGTERM or Ctrl-C and exits 0. It binds loopback by default and
refuses any other address without ``--allow-non-loopback`` (exit 2).

The REST API accepts any non-empty token unless ``--api-token-file`` names a
file holding the one to accept: a file, not an argument, so the token never
shows in ``ps`` or shell history. An unreadable or empty file exits 2.
"""

from __future__ import annotations

import argparse
from typing import Any

from .._config import MAX_PORT
from . import _exit
from ._options import Command, add_throwaway_tls_options, int_between

__all__ = ["COMMAND", "register"]

COMMAND = Command(
    "sandbox",
    help="run a local PagerDuty + BigPanda sandbox with a dashboard",
    description="Serve PagerDuty's Events API v2 (/v2/enqueue, /v2/change/enqueue), a"
    " subset of its REST API (/incidents, /services, /oncalls) and BigPanda's Alerts"
    " API (/data/v2/alerts) locally, with real answers and alert and incident state,"
    " an inspection API under /sandbox/ and a dashboard at /. Stops on SIGTERM or"
    " Ctrl-C.",
    epilog=_exit.epilog(
        _exit.OK,
        _exit.BAD_INPUT,
        say={
            _exit.OK: "stopped by SIGTERM or Ctrl-C",
            _exit.BAD_INPUT: "bad option (e.g. a non-loopback --host without --allow-non-loopback)",
        },
    ),
)


def register(subparsers: Any, only: str | None = None) -> None:
    """Adds this module's one command (``only``, the command invoked, cannot leave it out)."""
    command = COMMAND.add_to(subparsers)
    command.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; loopback only)"
    )
    command.add_argument(
        "--port",
        type=int_between(0, MAX_PORT),
        default=8765,
        help="port to listen on (default 8765; 0 picks a free one)",
    )
    add_throwaway_tls_options(command, ca_flag="--ca-file")
    command.add_argument(
        "--rate-limit",
        type=int_between(1, 1_000_000),
        metavar="N",
        help="answer 429 beyond N events per minute per routing key (sliding window)",
    )
    command.add_argument(
        "--rest-rate-limit",
        type=int_between(1, 1_000_000),
        metavar="N",
        help="answer 429 (with ratelimit-* headers) beyond N REST requests per minute per token",
    )
    command.add_argument(
        "--api-token-file",
        metavar="PATH",
        help="accept only the REST API token in this file (default: any non-empty token)",
    )
    command.add_argument(
        "--allow-non-loopback",
        action="store_true",
        help="allow --host to be a non-loopback address (anyone who can reach it can send)",
    )
    command.set_defaults(handler=_sandbox)


def _sandbox(args: argparse.Namespace) -> int:
    import asyncio

    if args.ca_file is not None and not args.tls:
        # Served over plain http, it would write no CA where the user waits for one
        # (the relay's --tls-ca-file without --tls is refused the same way).
        from .._errors import ConfigurationError

        raise ConfigurationError("--ca-file goes with --tls")
    token = None
    if args.api_token_file is not None:
        from .._config import read_secret_file

        # The key files' one rule: the first line, whitespace and a byte order mark
        # dropped, at most 64 Ki characters read; errors name the file, never its content.
        token = read_secret_file(
            args.api_token_file, what="sandbox API token (--api-token-file)"
        ).reveal()
    asyncio.run(_serve(args, token))
    return _exit.OK


async def _serve(args: argparse.Namespace, api_token: str | None) -> None:
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
        api_token=api_token,
        rest_rate_limit=args.rest_rate_limit,
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
        token_rule = "the token in --api-token-file" if api_token else "any token"
        print(
            f"  REST API:   {url}/incidents, /services, /oncalls"
            f" (Authorization: Token token=<{token_rule}>)",
            flush=True,
        )
        print(f"  inspect:    {url}/sandbox/alerts, /sandbox/incidents, /sandbox/events,", end="")
        print(
            " /sandbox/changes, /sandbox/bigpanda; POST /sandbox/faults, /sandbox/reset", flush=True
        )
        if server.rate_limit is not None:
            print(f"  rate limit: {server.rate_limit} events per minute per key", flush=True)
        if args.rest_rate_limit is not None:
            print(f"  REST limit: {args.rest_rate_limit} requests per minute per token", flush=True)
        if server.ca_file is not None:
            print(f"  CA certificate: {server.ca_file}", flush=True)
        print("Stop with Ctrl-C (or SIGTERM).", flush=True)
        await stop.wait()
    finally:
        await server.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    print("alertwire sandbox stopped", flush=True)
