"""The local sandbox: a PagerDuty + BigPanda stand-in on loopback.

It speaks the real wire protocol through the same routes as the relay's
ingest (:mod:`alertwire.wire`), keeps alert and incident state as PagerDuty
does (:mod:`.state`, :mod:`.incidents`), serves a subset of PagerDuty's REST
API on that state (:mod:`.rest_routes`), and adds an inspection API, fault
injection, rate limiting and a dashboard. ``from alertwire.sandbox import Sandbox``;
``with Sandbox() as sb: ...``. See ``docs/sandbox.md``.
"""

from __future__ import annotations

from ._embedded import Sandbox
from .server import SandboxServer

__all__ = ["Sandbox", "SandboxServer"]
