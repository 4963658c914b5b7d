"""Flux's level mappings (InfluxData ``pagerduty`` and ``bigpanda`` packages), exactly.

Flux alert pipelines carry a ``_level`` of ``crit``, ``warn``, ``info`` or
``ok``; these turn it into the destination's vocabulary the way Flux does, so
a pipeline moved to alertwire pages the same way. Input is lower-cased, and
anything unknown maps to the loud choice (``error`` / ``critical``): a typo
in a level should page, not vanish.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["action_from_level", "bigpanda_status_from_level", "severity_from_level"]

_SEVERITY = {"warn": "warning", "crit": "critical", "info": "info", "ok": "info"}
_BIGPANDA_STATUS = {"warn": "warning", "crit": "critical", "info": "ok", "ok": "ok"}


def severity_from_level(level: str) -> Literal["critical", "error", "warning", "info"]:
    """``pagerduty.severityFromLevel``: warn→warning, crit→critical, info/ok→info, else error."""
    return _SEVERITY.get(str(level).lower(), "error")  # type: ignore[return-value]


def action_from_level(level: str) -> Literal["trigger", "resolve"]:
    """``pagerduty.actionFromLevel``: ok→resolve, anything else→trigger."""
    return "resolve" if str(level).lower() == "ok" else "trigger"


def bigpanda_status_from_level(level: str) -> Literal["ok", "critical", "warning"]:
    """``bigpanda.statusFromLevel``: warn→warning, crit→critical, info/ok→ok, else critical."""
    return _BIGPANDA_STATUS.get(str(level).lower(), "critical")  # type: ignore[return-value]
