"""RestResponse: what ``get``/``post``/``put``/``delete`` return, whatever the status.

The official client hands back its HTTP library's response and leaves the
status to the caller; so do we, with the few members code written for it
uses (``status_code``, ``headers``, ``json()``, ``text``, ``ok``) and
:meth:`RestResponse.raise_for_status` raising our typed errors.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..protocol import rest as protocol
from ..transport import Request, Response

__all__ = ["RestResponse"]


class _Headers(Mapping[str, str]):
    """An answer's headers, looked up in any case (``headers["Content-Type"]``), as the
    official client's (httpx's) are; iterated, the names are lower-case.

    Handing back the transport's lower-case dict made code written for the official
    client (``response.headers["X-Request-Id"]``) fail with a ``KeyError``, and its
    ``.get("Content-Type")`` quietly answer ``None``.
    """

    __slots__ = ("_lower",)

    def __init__(self, lower: Mapping[str, str]) -> None:
        self._lower = lower

    def __getitem__(self, name: str) -> str:
        if not isinstance(name, str):
            raise KeyError(name)
        return self._lower[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._lower)

    def __len__(self) -> int:
        return len(self._lower)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self._lower)!r})"


class RestResponse:
    """One answer of the REST API: ``status``, ``headers`` (any case), ``json()``."""

    __slots__ = ("_response", "method", "url")

    def __init__(self, request: Request, response: Response) -> None:
        self.method = request.method
        self.url = request.url
        self._response = response

    def __repr__(self) -> str:
        return f"RestResponse({self.method} {self.url} -> {self.status})"

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def status_code(self) -> int:
        """The official client's (httpx's) name for :attr:`status`."""
        return self.status

    @property
    def ok(self) -> bool:
        return 200 <= self.status <= 299

    @property
    def headers(self) -> Mapping[str, str]:
        return _Headers(self._response.headers)

    @property
    def content(self) -> bytes:
        return self._response.body

    @property
    def text(self) -> str:
        return self._response.text

    def json(self) -> Any:
        """The body decoded (``None`` for an empty body); raises UnexpectedResponse if not JSON."""
        return protocol.json_of(self._response, method=self.method, url=self.url)

    def raise_for_status(self) -> RestResponse:
        """``self`` for a 2xx; otherwise the typed error (NotFound, Forbidden, RateLimited...)."""
        if not self.ok:
            raise protocol.error_for_rest_response(self._response, method=self.method, url=self.url)
        return self
