"""alertwire: get alerts to PagerDuty and BigPanda, reliably.

The public API is what ``__all__`` lists; everything else is private and may
change. Importing this package stays light: aiohttp (async transport) and
urllib3 (sync transport) are imported only when a client first needs them.
"""

from __future__ import annotations

from ._bigpanda_client import AsyncBigPanda, BigPanda
from ._errors import (
    AlertwireError,
    BadRequest,
    ConfigurationError,
    DeliveryError,
    Forbidden,
    NetworkError,
    NotFound,
    OutboxError,
    RateLimited,
    ResponseError,
    ServerError,
    Unauthorized,
    UnexpectedResponse,
    ValidationError,
)
from ._pagerduty_client import AsyncPagerDuty, PagerDuty, SendOutcome
from ._retry import RetryPolicy, instant_retries
from ._secret import Secret
from .models.bigpanda import BigPandaAlert, BigPandaStatus
from .models.dedup import group_dedup_key
from .models.levels import action_from_level, bigpanda_status_from_level, severity_from_level
from .models.pagerduty import (
    AcknowledgeAlert,
    Change,
    Image,
    Link,
    PagerDutyEvent,
    ResolveAlert,
    Severity,
    TriggerAlert,
)
from .models.results import EventResult

__version__ = "0.1.0"

__all__ = [
    "AcknowledgeAlert",
    "AlertwireError",
    "AsyncBigPanda",
    "AsyncPagerDuty",
    "BadRequest",
    "BigPanda",
    "BigPandaAlert",
    "BigPandaStatus",
    "Change",
    "ConfigurationError",
    "DeliveryError",
    "EventResult",
    "Forbidden",
    "Image",
    "Link",
    "NetworkError",
    "NotFound",
    "OutboxError",
    "PagerDuty",
    "PagerDutyEvent",
    "RateLimited",
    "ResolveAlert",
    "ResponseError",
    "RetryPolicy",
    "Secret",
    "SendOutcome",
    "ServerError",
    "Severity",
    "TriggerAlert",
    "Unauthorized",
    "UnexpectedResponse",
    "ValidationError",
    "__version__",
    "action_from_level",
    "bigpanda_status_from_level",
    "group_dedup_key",
    "instant_retries",
    "severity_from_level",
]
