"""``PagerDutyEvent``: the union of the four PagerDuty events, for annotations and ``isinstance``.

Apart from :mod:`alertwire.models.pagerduty` because building the union
needs every event class, which a one-event ``alertwire trigger`` never
loads (docs/cli.md, "Start-up cost"); that module still exports the name,
loading this one on first access.
"""

from __future__ import annotations

from typing import TypeAlias

from .pagerduty import TriggerAlert
from .pagerduty_change import Change
from .pagerduty_keyed import AcknowledgeAlert, ResolveAlert

__all__ = ["PagerDutyEvent"]

PagerDutyEvent: TypeAlias = TriggerAlert | AcknowledgeAlert | ResolveAlert | Change
