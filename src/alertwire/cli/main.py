"""Entry point: builds the parser from the command modules and maps errors to exit codes.

Each command module declares what its commands' help says as data
(:class:`._options.Command`: name, help, description, exit codes) and exposes
``register(subparsers, only=None)``, which makes them from it (with ``only``,
the command invoked, just that one), adds their options and sets ``handler``
on them: a function taking the parsed arguments and returning an exit code. Command modules import the heavy parts
of the library (aiohttp, sqlite, the sandbox) inside their handlers, so that
a one-event ``alertwire trigger`` pays only for what it uses: start-up time
is part of the contract with cron jobs and shell loops.

Errors alertwire raises on purpose become one line on stderr and the
documented exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, Final, NoReturn

from .._errors import AlertwireError
from . import _exit

#: Every top-level command, in the order ``alertwire --help`` lists them, and the module
#: that registers it, so that ``alertwire trigger`` imports only ``pagerduty_cmd`` and
#: builds only its own sub-parser (the other modules' imports and sub-parsers cost a
#: one-alert cron job several milliseconds for nothing). The one list of command modules too: a new
#: module is added here with its commands. tests/project/test_import_light.py keeps it complete.
COMMAND_HOMES: dict[str, str] = {
    "trigger": "pagerduty_cmd",
    "acknowledge": "pagerduty_cmd",
    "resolve": "pagerduty_cmd",
    "change": "pagerduty_cmd",
    "incidents": "incidents_cmd",
    "bigpanda": "bigpanda_cmd",
    "send": "send_cmd",
    "relay": "relay_cmd",
    "queue": "queue_cmd",
    "sandbox": "sandbox_cmd",
    "demo": "demo_cmd",
}

#: The command modules, in the order their commands appear in ``--help`` (from the table,
#: so the two cannot disagree).
COMMAND_MODULES: tuple[str, ...] = tuple(dict.fromkeys(COMMAND_HOMES.values()))


def _terminal_columns() -> int:
    """``shutil.get_terminal_size().columns`` (``COLUMNS``, else the terminal, else 80),
    without importing ``shutil``.

    argparse imports ``shutil`` (with ``zlib``, ``bz2`` and ``lzma``) to size each help
    formatter, and it makes one for every option added: a one-event command would
    pay a few milliseconds for it without ever printing help.
    """
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


_SIZED: dict[type[argparse.HelpFormatter], type[argparse.HelpFormatter]] = {}


def _sized(formatter: type[argparse.HelpFormatter]) -> type[argparse.HelpFormatter]:
    """``formatter``, given its width by :func:`_terminal_columns` (see there); one class each."""
    if getattr(formatter, "sized", False):
        return formatter
    sized = _SIZED.get(formatter)
    if sized is None:

        class Sized(formatter):  # type: ignore[valid-type,misc]
            def __init__(
                self,
                prog: str,
                indent_increment: int = 2,
                max_help_position: int = 24,
                width: int | None = None,
            ) -> None:
                if width is None:
                    width = _terminal_columns() - 2  # what HelpFormatter takes off
                super().__init__(prog, indent_increment, max_help_position, width)

        Sized.sized = True
        Sized.unsized = formatter
        Sized.__name__ = Sized.__qualname__ = formatter.__name__
        sized = _SIZED[formatter] = Sized
    return sized


#: A help text (a command's description or epilog), or a function that makes it.
HelpText = str | Callable[[], str]


def _text(text: HelpText | None) -> str | None:
    return text() if callable(text) else text


class _HelpTextField:
    """A parser's ``description`` or ``epilog``, which may be set to a :data:`HelpText`
    function: made into the text when first read (see :class:`_Parser`)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = f"_{name}"

    def __get__(self, parser: object, owner: type | None = None) -> str | None:
        text = _text(getattr(parser, self._slot))
        setattr(parser, self._slot, text)
        return text

    def __set__(self, parser: object, text: HelpText | None) -> None:
        setattr(parser, self._slot, text)


#: Whether the command being parsed takes ``--json`` and was given it: then a usage
#: error is also a JSON document on standard output, as every other exit-2 error of
#: a command run with ``--json`` is (docs/cli.md, "Common options"). A script that
#: parses the output got nothing to parse for ``--timeout 0`` or a mistyped option.
_json_usage_errors = [False]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and still exit code 2), like every other error.

    A cron mail or a CI log then shows what was wrong, not a usage dump;
    ``--help`` still gives the full usage.

    Its help formatters are sized without importing ``shutil`` (:func:`_terminal_columns`).

    It also keeps the sub-command groups made on it (``command_groups``), so
    the commands can be walked without argparse's private fields; the
    commands of a group are made with this class too (argparse's default),
    so nested ones keep theirs.

    Its ``description`` and ``epilog`` may be given as a function that makes the
    text (:data:`HelpText`), called when the text is first read: only ``--help``
    reads them. Wrapping them needs ``textwrap``, whose import and regular
    expressions cost a one-event ``alertwire trigger`` about 2.5% of its
    instructions for help it never prints (docs/cli.md, "Start-up cost").
    """

    _description: HelpText | None
    _epilog: HelpText | None
    description = _HelpTextField()
    epilog = _HelpTextField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["formatter_class"] = _sized(kwargs.get("formatter_class", argparse.HelpFormatter))
        super().__init__(*args, **kwargs)
        #: What :meth:`add_subparsers` returned, in order: each maps names to commands.
        self.command_groups: list[Any] = []

    def add_subparsers(self, **kwargs: Any) -> Any:
        group = super().add_subparsers(**kwargs)
        self.command_groups.append(group)
        return group

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        takes_json = any("--json" in action.option_strings for action in self._actions)
        if takes_json and args is not None and "--json" in args:
            _json_usage_errors[0] = True
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        message = _without_stray_values(message)
        if _json_usage_errors[0]:
            from .. import _json

            document = {"ok": False, "exit_code": _exit.BAD_INPUT, "error": "UsageError"}
            try:
                print(_json.dumps({**document, "message": message}, no_floats=True).decode("utf-8"))
            except BrokenPipeError:  # a closed or full output: the exit code still says 2
                _output_closed()
        self.exit(_exit.BAD_INPUT, f"alertwire: error: {message} (see {self.prog} --help)\n")


_UNRECOGNIZED: Final = "unrecognized arguments: "


def _without_stray_values(message: str) -> str:
    """argparse's "unrecognized arguments: ..." without the values in it.

    A mistyped option's value is a stray argument (``--routng-key R0123...``), and
    argparse quoted it: a routing key on stderr and in ``--json``'s document, which
    scripts capture and log. The options are named (up to an ``=``); the other
    words are only counted.
    """
    if not message.startswith(_UNRECOGNIZED):
        return message
    words = message[len(_UNRECOGNIZED) :].split()
    options = [word.split("=", 1)[0] for word in words if word.startswith("-")]
    values = len(words) - len(options)
    said = ", ".join(options)
    if values:
        said += f"{' and ' if said else ''}{values} value{'s' if values != 1 else ''} (not shown)"
    return _UNRECOGNIZED + said


def subcommands(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The commands directly under ``parser``, each once (an alias names the same one)."""
    found: list[argparse.ArgumentParser] = []
    for group in parser.command_groups if isinstance(parser, _Parser) else ():
        for command in group.choices.values():
            if not any(command is seen for seen in found):
                found.append(command)
    return found


def _with_exit_codes(parser: argparse.ArgumentParser) -> None:
    """Every command's ``--help`` ends with the exit codes, whichever module added it.

    Nested commands (``alertwire queue status``) too. The epilog is completed when
    it is first read (``--help``), as the lists themselves are made (:class:`_Parser`).
    """
    for command in subcommands(parser):
        _with_exit_codes(command)
        given = command._epilog if isinstance(command, _Parser) else command.epilog
        if isinstance(given, str) and "exit codes:" in given:
            continue
        if isinstance(command, _Parser):
            command.epilog = functools.partial(_ending_with_codes, given)
        else:
            command.epilog = _ending_with_codes(given)
        if getattr(command.formatter_class, "unsized", None) is argparse.HelpFormatter:
            command.formatter_class = _sized(argparse.RawDescriptionHelpFormatter)


def _ending_with_codes(given: HelpText | None) -> str:
    """An epilog as given, with the sending commands' exit codes after it unless it has a list."""
    text = _text(given)
    if "exit codes:" in (text or ""):
        return text  # type: ignore[return-value]
    return f"{text}\n\n{_exit.EPILOG}" if text else _exit.EPILOG


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: only the invoked command (from its module alone) when
    ``argv`` starts with a known command, else every command (``--help``, ``--version``,
    a typo, no command)."""
    parser = _Parser(
        prog="alertwire",
        description="Send alerts to PagerDuty and BigPanda reliably.",
        epilog=_exit.all_codes_epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    # Required: a bare ``alertwire`` is a usage error of one line, like any other.
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    invoked = argv[0] if argv and argv[0] in COMMAND_HOMES else None
    if invoked is None:
        for name in COMMAND_MODULES:
            importlib.import_module(f"alertwire.cli.{name}").register(subparsers)
    else:
        module = importlib.import_module(f"alertwire.cli.{COMMAND_HOMES[invoked]}")
        module.register(subparsers, only=invoked)
    _with_exit_codes(parser)
    return parser


#: What Ctrl-C leaves behind, said instead of nothing: a request in flight may have
#: reached the service before its answer was read, and a write to the outbox is a
#: transaction (stored whole or not at all).
INTERRUPTED: Final = (
    "alertwire: interrupted: an event being sent may or may not have reached the service"
    " (sending it again with the same dedup key is safe); one being stored in the outbox"
    " is stored whole or not at all (alertwire queue status shows which)"
)


def _version() -> str:
    from .. import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    _json_usage_errors[0] = False
    parser = build_parser(argv)
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
        print(INTERRUPTED, file=sys.stderr)
        return _exit.INTERRUPTED
    except BrokenPipeError as exc:
        _output_closed()
        if isinstance(exc, _exit.OutputClosedAfterRun) and exc.code != _exit.OK:
            return exc.code
        return _exit.OUTPUT_CLOSED
    # What the command printed may still be buffered (a file, not a terminal): written
    # now, where a failure is still ours to report, not in the interpreter's last flush.
    try:
        if sys.stdout is not None:  # None: started with standard output closed (``>&-``)
            sys.stdout.flush()
    except BrokenPipeError:  # OutputUnwritable too (said on stderr by GuardedStdout)
        _output_closed()
        return code if code != _exit.OK else _exit.OUTPUT_CLOSED
    return code


def console() -> int:
    """The ``alertwire`` program (pyproject's ``[project.scripts]``): :func:`main`, whose
    exit code the process ends with right after.

    The cyclic garbage collector is then told to leave every object alone
    (``gc.freeze``): the interpreter's last act would otherwise be a full collection
    over everything the command loaded (modules, classes, the parser), freeing nothing
    that the process's end does not free anyway. It was about 8 % of the instructions of
    a one-event ``alertwire trigger`` (docs/cli.md, "Start-up cost"). Nothing relies on
    it: every command closes what it opened (connections, the outbox, files) before
    :func:`main` returns, and standard output and error are flushed at exit as before.
    Only here, not in :func:`main`: a program or a test that calls ``main()`` goes on
    running, and keeps its collector as it was.

    Standard output is wrapped first (:class:`~._stdout.GuardedStdout`): a write it
    refuses (a full disk) is then said once and handled as a closed output, whichever
    command printed. Also only here: a caller of ``main()`` keeps its own streams.
    """
    from ._stdout import GuardedStdout

    if sys.stdout is not None:  # a closed standard output (``>&-``) stays None: print skips it
        sys.stdout = GuardedStdout(sys.stdout, sys.stderr)
    code = main()
    gc.freeze()
    return code


def _output_closed() -> None:
    """The reader of our output went away (``alertwire queue dead | head -1``).

    A Unix tool is ended by SIGPIPE there, silently; Python turns it into a
    ``BrokenPipeError``, which came out as a traceback and exit 1 (which
    means a demo step failed here). SIGPIPE itself stays ignored: its default
    action would also end the process on a write to a socket whose peer
    closed, in the middle of a delivery. Standard output is pointed at
    ``/dev/null`` so that the interpreter's last flush at exit does not
    report the same pipe again. The exit code is then 141, unless the command
    had already run and failed (:class:`~._exit.OutputClosedAfterRun`).
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(console())
