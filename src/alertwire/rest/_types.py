"""The argument types of the REST clients' methods, the same for the sync and the async one.

Their names appear in the methods' signatures (``help()``, the docs), so both clients and
:mod:`alertwire.rest._base` use these, not a spelled-out union of their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["Headers", "Ids", "Params", "Path"]

Path = str | Mapping[str, Any]
Params = Mapping[str, Any] | None
Headers = Mapping[str, str] | None
Ids = str | Sequence[str] | None
