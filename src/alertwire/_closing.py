"""``with thing:`` and ``async with thing:`` for whatever owns a resource it must release.

The clients (their connection pools), the outbox (its store) and the sandbox
(its server thread) each have one way to let go of what they hold; leaving a
``with`` block calls it, whatever happened inside. Written once here so that
each class names only how it closes, not the context-manager protocol around it.
"""

from __future__ import annotations

from types import TracebackType
from typing import TypeVar

__all__ = ["AsyncClosing", "Closing"]

_S = TypeVar("_S", bound="Closing")
_A = TypeVar("_A", bound="AsyncClosing")


class Closing:
    """``with`` hands back the object itself and calls :meth:`close` on the way out."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClosing:
    """``async with`` hands back the object itself and awaits :meth:`aclose` on the way out."""

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self: _A) -> _A:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
