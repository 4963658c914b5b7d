"""Entry point: builds the parser from the command modules and maps errors to exit codes.

Each command module exposes ``register(subparsers)``, which adds its
sub-commands and sets ``handler`` on them: a function taking the parsed
arguments and returning an exit code. Command modules import the heavy parts
of the library (aiohttp, sqlite, the sandbox) inside their handlers, so that
a one-event ``alertwire trigger`` pays only for what it uses: start-up time
is part of the contract with cron jobs and shell loops.

Errors alertwire raises on purpose become one line on stderr and the
documented exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .._errors import AlertwireError
from . import _exit

#: The command modules, in the order their commands appear in ``--help``.
COMMAND_MODULES: tuple[str, ...] = ()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alertwire",
        description="Send alerts to PagerDuty and BigPanda reliably.",
        epilog=_exit.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"alertwire.cli.{name}").register(subparsers)
    return parser


def _version() -> str:
    from .. import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return _exit.BAD_INPUT
    try:
        code: int = handler(args)
    except AlertwireError as exc:
        print(f"alertwire: error: {exc}", file=sys.stderr)
        return _exit.exit_code_for(exc)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
