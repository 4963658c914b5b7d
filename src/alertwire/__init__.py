"""alertwire: get alerts to PagerDuty and BigPanda, reliably.

The public API is what ``__all__`` lists; everything else is private and may
change.

Importing this package costs almost nothing: each public name is loaded from
its module on first access (PEP 562 ``__getattr__``), so ``import alertwire``
in a DAG file, a plugin or a short script does not pay for the clients, the
models or their standard-library dependencies until they are used, and
``from alertwire import TriggerAlert`` loads the models but no HTTP library.
``asyncio`` (async transport) and ``socket`` (sync transport) are imported
only when a client first needs them. Type checkers and IDEs see the ordinary imports
below, under ``TYPE_CHECKING``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    "HeldBack",
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

#: Where each public name lives (relative to this package); loaded on first access.
_WHERE: dict[str, str] = {
    "AsyncBigPanda": "._bigpanda_client",
    "BigPanda": "._bigpanda_client",
    **dict.fromkeys(
        (
            "AlertwireError",
            "BadRequest",
            "ConfigurationError",
            "DeliveryError",
            "Forbidden",
            "HeldBack",
            "NetworkError",
            "NotFound",
            "OutboxError",
            "RateLimited",
            "ResponseError",
            "ServerError",
            "Unauthorized",
            "UnexpectedResponse",
            "ValidationError",
        ),
        "._errors",
    ),
    "AsyncPagerDuty": "._pagerduty_client",
    "PagerDuty": "._pagerduty_client",
    "SendOutcome": "._pagerduty_client",
    "RetryPolicy": "._retry",
    "instant_retries": "._retry",
    "Secret": "._secret",
    "BigPandaAlert": ".models.bigpanda",
    "BigPandaStatus": ".models.bigpanda",
    "group_dedup_key": ".models.dedup",
    "action_from_level": ".models.levels",
    "bigpanda_status_from_level": ".models.levels",
    "severity_from_level": ".models.levels",
    **dict.fromkeys(
        (
            "AcknowledgeAlert",
            "Change",
            "Image",
            "Link",
            "PagerDutyEvent",
            "ResolveAlert",
            "Severity",
            "TriggerAlert",
        ),
        ".models.pagerduty",
    ),
    "EventResult": ".models.results",
}

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from ._bigpanda_client import AsyncBigPanda, BigPanda
    from ._errors import (
        AlertwireError,
        BadRequest,
        ConfigurationError,
        DeliveryError,
        Forbidden,
        HeldBack,
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


def _lazy_exports(
    namespace: dict[str, Any], where: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's PEP 562 ``__getattr__`` and ``__dir__`` for the names in ``where``.

    ``where`` maps each public name to the module, relative to the package,
    that defines it. A name is imported on first access and then kept in the
    package's ``namespace``, so later reads are plain lookups; a name not
    listed stays an ``AttributeError``. This package and its sub-packages
    (``alertwire.airflow``, ``alertwire.transport``) share it. It lives here
    rather than in a module of its own so that ``import alertwire`` still
    loads none of the library's modules (tests/project/test_import_light.py).
    """
    package = namespace["__name__"]

    def load(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        from importlib import import_module

        value = getattr(import_module(module, package), name)
        namespace[name] = value
        return value

    def listing() -> list[str]:
        return sorted({*namespace, *namespace["__all__"]})

    return load, listing


_load, __dir__ = _lazy_exports(globals(), _WHERE)

if not TYPE_CHECKING:
    # Hidden from type checkers, which see the imports above instead: a
    # misspelt ``alertwire.Tigger`` stays an error for them, not ``object``.
    __getattr__ = _load

del TYPE_CHECKING  # not part of the public namespace
