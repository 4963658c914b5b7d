"""The exception tree: every error alertwire raises on purpose.

::

    AlertwireError
    ├── ValidationError        (also a ValueError) bad input, caught before the network
    ├── ConfigurationError     (also a ValueError) missing or unusable settings
    ├── OutboxError            the durable outbox cannot accept or store an event
    │                          (``retryable`` when the cause is passing: lock, disk, connection)
    └── DeliveryError          the event left us but was not accepted
        ├── NetworkError       transport failure: refused, reset, timeout, TLS   retryable
        └── ResponseError      the service answered, but not with success
            ├── BadRequest     400: the service's own ``errors`` list          not retryable
            ├── Unauthorized   401/403: key or token refused                   not retryable
            │   └── Forbidden  403: token valid, but not allowed (REST API)    not retryable
            ├── NotFound       404: no such object (REST API)                  not retryable
            ├── RateLimited    429: ``retry_after`` seconds when the service said  retryable
            ├── ServerError    5xx, or 408 (a proxy's or edge's timeout)        retryable
            └── UnexpectedResponse  any other status, or garbage where JSON was due

Transport failures and HTTP-status failures are separate branches (as httpx
does it), so ``except ResponseError`` never swallows a dropped connection.
Every delivery error says whether retrying can help (``retryable``) and keeps
the service's own text (``body``), JSON or not: hiding a 400 body is how
other tools made alert loss impossible to debug. No message ever contains a
routing key or token: the callers pass only :class:`~alertwire.Secret` values,
and a body we echo is first cut of our key (``protocol.http.scrubbed``), in
case a service or a proxy between quotes it back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

__all__ = [
    "AlertwireError",
    "BadRequest",
    "ConfigurationError",
    "DeliveryError",
    "Forbidden",
    "GiveUp",
    "NetworkError",
    "NotFound",
    "OutboxError",
    "RateLimited",
    "ResponseError",
    "ServerError",
    "Unauthorized",
    "UnexpectedResponse",
    "ValidationError",
]

#: How much of a response body an error message quotes (the full body stays in ``.body``).
_BODY_EXCERPT = 500


class AlertwireError(Exception):
    """Root of every error alertwire raises on purpose."""


class ValidationError(AlertwireError, ValueError):
    """Input that can never be delivered; raised before anything touches the network.

    ``field`` is the dotted wire name of the offending field (``payload.severity``)
    and ``rule`` says what it must be; ``problems`` holds every ``(field, rule)``
    found, since PagerDuty too reports several problems in one answer.
    """

    def __init__(self, field: str, rule: str, *, problems: Sequence[tuple[str, str]] = ()) -> None:
        self.field = field
        self.rule = rule
        self.problems: tuple[tuple[str, str], ...] = tuple(problems) or ((field, rule),)
        text = "; ".join(f"{f}: {r}" for f, r in self.problems)
        super().__init__(text)


class ConfigurationError(AlertwireError, ValueError):
    """A setting is missing or unusable (no routing key, an http:// URL off loopback...)."""


class OutboxError(AlertwireError):
    """The outbox could not durably store (or read) an event: disk full, read-only, corrupt.

    Raised at enqueue so that a caller never believes an alert was kept when it
    was not. ``retryable`` says whether the same call may succeed later
    unchanged: ``True`` for a passing cause (a lock held past the busy
    timeout, a full disk, a lost database connection), ``False`` for one that
    needs a person (a read-only file, a foreign or corrupt database, a bad
    path). The CLI maps the two to different exit codes, ingest a retryable
    one to 503 with ``Retry-After``, so a script never drops a page because
    the outbox was busy for a moment.
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        self.retryable = retryable
        super().__init__(message)


def _tries(n: int) -> str:
    return f"{n} attempt{'s' if n != 1 else ''}"


class GiveUp(NamedTuple):
    """Why a retryable failure was not tried again: the bound that stopped it, in numbers.

    The senders (:mod:`alertwire._retry`) attach it to the error they raise (``DeliveryError.gave_up``),
    so that a message can name the bound instead of a bare "retries exhausted"
    (a 429 asking for 600 s against a 120 s budget is never retried at all).

    A ``NamedTuple``, not a frozen dataclass: making one of those costs a one-event
    ``alertwire trigger`` about half a millisecond of start-up (docs/cli.md, "Start-up cost").
    """

    attempts: int
    max_attempts: int
    elapsed: float
    max_elapsed: float
    #: The service's ``Retry-After`` when waiting it out is what overran the budget.
    retry_after: float | None = None

    def describe(self, *, budget: str = "max_elapsed", attempts_limit: str = "max_attempts") -> str:
        """One clause; ``budget`` / ``attempts_limit`` name the settings (a CLI gives its options)."""
        if self.attempts >= self.max_attempts:
            return (
                f"retries exhausted after {_tries(self.attempts)}"
                f" (the limit, {attempts_limit} {self.max_attempts})"
            )
        left = max(self.max_elapsed - self.elapsed, 0.0)
        limit = f"the retry budget of {self.max_elapsed:g} s ({budget})"
        if self.elapsed >= 1:
            limit = f"the {left:.0f} s left of {limit}"
        if self.retry_after is not None:
            tail = (
                "not retried"
                if self.attempts == 1
                else f"not retried after {_tries(self.attempts)}"
            )
            return (
                f"the service asked to wait {self.retry_after:g} s (Retry-After),"
                f" longer than {limit}; {tail}"
            )
        return (
            f"retries exhausted after {_tries(self.attempts)}: the next wait would overrun {limit}"
        )


class DeliveryError(AlertwireError):
    """The event was not accepted by the service.

    ``retryable`` follows the service's own retry table; ``http_status`` is
    ``None`` when no answer came; ``body`` is the answer's text, verbatim.
    """

    retryable: bool = False
    #: Set when a retryable failure was not tried again: the bound that stopped it.
    gave_up: GiveUp | None = None

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        body: str = "",
        attempts: int = 1,
    ) -> None:
        self.http_status = http_status
        self.body = body
        self.attempts = attempts
        super().__init__(message)

    @property
    def message(self) -> str:
        """The error's own text, without the retry bound that :meth:`__str__` adds."""
        return str(self.args[0]) if self.args else ""

    def __str__(self) -> str:
        """The message, then (when the retries stopped early) which bound stopped them.

        Why here and not only in ``gave_up``: ``str(error)`` is what a script's
        log line, an Airflow traceback or a relay's ``last_error`` shows, and a
        429 asking for 600 s against a 120 s budget reads as a service that
        never answered unless it says it was never retried. The bound is
        numbers and setting names only, never a key.
        """
        text = super().__str__()
        return text if self.gave_up is None else f"{text}; {self.gave_up.describe()}"


def one_line(text: str) -> str:
    """``text`` as one line that is safe to print: each run of white space (line breaks
    included) is one space, and any other control character is written as Python writes
    it (``\\x1b``), so a service's text (or an incident title anyone with a routing key
    wrote) can neither break a line-per-item output nor move a terminal's cursor."""
    text = " ".join(text.split())
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text


class HeldBack(DeliveryError):
    """Not sent: an earlier event of the same dedup key failed (``send_many``, ``alertwire send``).

    Why not send it anyway: a resolve sent after its trigger failed is dropped
    (nothing is open), and re-sending the failed trigger afterwards, which an
    outcome per event invites, opens an incident that was over. Held back, the
    key's failed event and the ones after it are re-sent together, in order.
    Retryable exactly when that failure is (the CLI gives the line the
    failure's exit code); ``attempts`` is 0: the event never left;
    ``failure`` is the earlier event's error.
    """

    def __init__(self, failure: DeliveryError, *, earlier: str = "an earlier event") -> None:
        super().__init__(
            f"not sent: {earlier}, an earlier event of the same key, failed, and this one"
            " sent without it would change what the key ends as; send them again"
            " together, in order",
            attempts=0,
        )
        self.retryable = failure.retryable
        self.failure = failure


class NetworkError(DeliveryError):
    """No answer: connection refused or reset, timeout, TLS failure. Always retryable."""

    retryable = True


class ResponseError(DeliveryError):
    """The service answered with something other than success."""

    @staticmethod
    def excerpt(body: str) -> str:
        """``body`` quoted in an error message: one line, at most 500 characters.

        A proxy's or load balancer's error page comes in lines: each run of
        white space (line breaks included) is one space, so the error stays the
        one line a log or the CLI shows. Other control characters are written
        as ``\\x1b``: printed raw, a carriage return or an escape sequence
        from the server would rewrite what the terminal shows. The answer
        itself stays whole in ``.body``.
        """
        text = one_line(body)
        return text if len(text) <= _BODY_EXCERPT else text[:_BODY_EXCERPT] + "…"


class BadRequest(ResponseError):
    """400: the service refused the event as invalid. Retrying sends the same mistake."""

    def __init__(
        self,
        message: str,
        *,
        errors: Sequence[str] = (),
        http_status: int | None = 400,
        body: str = "",
        attempts: int = 1,
    ) -> None:
        self.errors: tuple[str, ...] = tuple(errors)
        if self.errors:
            message = f"{message}: {'; '.join(self.errors)}"
        super().__init__(message, http_status=http_status, body=body, attempts=attempts)


class Unauthorized(ResponseError):
    """401/403: the key or token was refused. Not retryable."""


class Forbidden(Unauthorized):
    """403: the token is valid but may not do this (a read-only key writing, a missing scope).

    A subclass of :class:`Unauthorized`, so code that already treats 401/403
    alike keeps working; the REST API client raises it so a caller can tell
    "wrong token" from "right token, wrong rights".
    """


class NotFound(ResponseError):
    """404: the REST API has no such object (an incident id from another account, a typo)."""


class RateLimited(ResponseError):
    """429: too many events for this key. ``retry_after`` is the service's hint, if any."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        http_status: int | None = 429,
        body: str = "",
        attempts: int = 1,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, http_status=http_status, body=body, attempts=attempts)


class ServerError(ResponseError):
    """5xx: the service had a problem; or 408: it (or a proxy on the way) stopped waiting
    for the request, which no service we call defines otherwise. Retryable after a delay."""

    retryable = True


class UnexpectedResponse(ResponseError):
    """A status the protocol does not define, or a body that is not what it must be."""
