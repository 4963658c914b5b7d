"""The warnings a send can give (a shortened field, a retry), with ``logging`` imported only
when one is given.

Why: ``import logging`` (with ``traceback``, ``string`` and ``threading``'s
users) is a few milliseconds of a one-event ``alertwire trigger``'s
start-up, and a send answered at once warns about nothing (docs/cli.md,
"Start-up cost"). The records are the same as ``logging.getLogger("alertwire")
.warning(...)`` gives, made at the caller's line (``stacklevel``), so a
program's own logging configuration and pytest's ``caplog`` see no
difference.

The CLI prints these warnings on stderr for the duration of a command
(``cli/_run.logging_to``); it hands its handler to :func:`when_logging`,
which installs it at once if ``logging`` is loaded, else just before the
first warning given here. Modules that log more than these few warnings
(the outbox, the relay, the REST client) import ``logging`` as usual.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["LOGGER", "warning", "when_logging"]

#: The one logger the library writes to.
LOGGER = "alertwire"

#: What runs before the first warning given here (the CLI's handler), then is forgotten.
_pending: list[Callable[[], None]] = []


def warning(message: str, *args: object) -> None:
    """``logging.getLogger("alertwire").warning(message, *args)``, from the caller's line."""
    import logging

    while _pending:
        _pending.pop(0)()
    logging.getLogger(LOGGER).warning(message, *args, stacklevel=2)


def when_logging(install: Callable[[], None]) -> Callable[[], None]:
    """Run ``install`` now if ``logging`` is loaded, else before the first :func:`warning`.

    Returns what cancels it if it has not run yet (a command that warned about nothing).
    """
    if "logging" in sys.modules:
        install()
        return lambda: None
    _pending.append(install)

    def cancel() -> None:
        if install in _pending:
            _pending.remove(install)

    return cancel
