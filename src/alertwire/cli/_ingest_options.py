"""``alertwire relay --listen ...``: the ingest endpoint's options.

Kept apart from :mod:`.relay_cmd` so the relay command only gains two calls:
:func:`add_ingest_options` and :func:`ingest_config`. Parsing is thin; every
rule (loopback without TLS, allow-list files) is the library's
(:mod:`alertwire.ingest`), and its :class:`~alertwire.ConfigurationError`
becomes the usual one-line message and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = [
    "DEFAULT_MAX_PENDING",
    "DEFAULT_MAX_PENDING_PER_KEY",
    "add_ingest_options",
    "ingest_config",
]

from .._config import DEFAULT_MAX_PENDING, DEFAULT_MAX_PENDING_PER_KEY
from ._options import add_throwaway_tls_options


def add_ingest_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "ingest endpoint",
        "Serve PagerDuty's and BigPanda's HTTP APIs so any tool can send through the relay:"
        " an event is answered 202 only once it is on disk.",
    )
    group.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="serve /v2/enqueue, /v2/change/enqueue, /data/v2/alerts, /healthz and /metrics"
        " here (e.g. 127.0.0.1:8765; loopback unless --tls)",
    )
    add_throwaway_tls_options(group, ca_flag="--tls-ca-file", tls_note=" (its CA file is printed)")
    group.add_argument("--tls-cert", metavar="PATH", help="serve https with this certificate")
    group.add_argument("--tls-key", metavar="PATH", help="the private key of --tls-cert")
    group.add_argument(
        "--allow-routing-keys",
        metavar="FILE",
        help="answer 403 to any routing key not in FILE (one per line; # comments)",
    )
    group.add_argument(
        "--allow-bigpanda-tokens",
        metavar="FILE",
        help="answer 403 to any BigPanda token not in FILE (one per line; # comments)",
    )
    group.add_argument(
        "--allow-any-client",
        action="store_true",
        help="listen on a non-loopback address without an allow-list (refused otherwise:"
        " anyone who reaches it could send through the relay)",
    )
    group.add_argument(
        "--max-pending",
        metavar="N",
        type=_bound,
        default=DEFAULT_MAX_PENDING,
        help="answer 429 + Retry-After once N events wait to be delivered"
        f" (default {DEFAULT_MAX_PENDING:,}; 0: no bound)",
    )
    group.add_argument(
        "--max-pending-per-key",
        metavar="N",
        type=_bound,
        default=DEFAULT_MAX_PENDING_PER_KEY,
        help="the same, per routing key or BigPanda token and app key"
        f" (default {DEFAULT_MAX_PENDING_PER_KEY:,}; 0: no bound)",
    )


def _bound(text: str) -> int | None:
    """``N`` events (``0``: no bound)."""
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a whole number (0: no bound), got {text!r:.40}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (no bound) or more, got {value}")
    return value or None


def _announce(url: str, ca_file: str | None) -> None:
    print(f"alertwire relay listening on {url}", flush=True)
    print(f"  PagerDuty:  {url}/v2/enqueue, {url}/v2/change/enqueue", flush=True)
    print(f"  BigPanda:   {url}/data/v2/alerts", flush=True)
    print(f"  health:     {url}/healthz   metrics: {url}/metrics", flush=True)
    if ca_file is not None:
        print(f"  CA certificate: {ca_file}", flush=True)


def ingest_config(args: argparse.Namespace) -> Any:
    """The :class:`~alertwire.ingest.IngestConfig` for ``--listen``, or ``None`` without it."""
    from .._errors import ConfigurationError

    tls_given = args.tls or args.tls_cert or args.tls_key or args.tls_ca_file
    allow_given = args.allow_routing_keys or args.allow_bigpanda_tokens or args.allow_any_client
    bounds_given = (args.max_pending, args.max_pending_per_key) != (
        DEFAULT_MAX_PENDING,
        DEFAULT_MAX_PENDING_PER_KEY,
    )
    if args.listen is None:
        if tls_given or allow_given or bounds_given:
            raise ConfigurationError(
                "--tls*, --allow-*, --max-pending* only make sense with --listen"
            )
        return None
    if args.drain:
        raise ConfigurationError(
            "--drain and --listen exclude each other (a listener never drains)"
        )
    if args.tls_ca_file and not args.tls:
        raise ConfigurationError("--tls-ca-file goes with --tls")
    from ..ingest import IngestConfig, load_allowlist, parse_listen

    host, port = parse_listen(args.listen)
    config = IngestConfig(
        host=host,
        port=port,
        tls=args.tls,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_ca_file=args.tls_ca_file,
        allow_routing_keys=(
            load_allowlist(args.allow_routing_keys, routing_keys=True)
            if args.allow_routing_keys
            else None
        ),
        allow_bigpanda_tokens=(
            load_allowlist(args.allow_bigpanda_tokens, routing_keys=False)
            if args.allow_bigpanda_tokens
            else None
        ),
        allow_any_client=args.allow_any_client,
        max_pending=args.max_pending,
        max_pending_per_key=args.max_pending_per_key,
        announce=_announce,
    )
    config.check()
    sys.stdout.flush()
    return config
