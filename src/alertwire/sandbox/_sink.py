"""The sandbox as a wire sink: rate limit, then remember."""

from __future__ import annotations

from ..wire import IncomingBigPanda, IncomingPagerDuty, SinkRateLimited
from .ratelimit import SlidingWindowLimiter
from .state import SandboxState

__all__ = ["SandboxSink"]

#: PagerDuty documents only "429 - Request Limit Exceeded".
RATE_LIMITED = "Request Limit Exceeded"


class SandboxSink:
    """Keeps accepted events in :class:`SandboxState`; ``limiter`` may be swapped at run time."""

    def __init__(self, state: SandboxState, limiter: SlidingWindowLimiter | None = None) -> None:
        self.state = state
        self.limiter = limiter

    def _check_rate(self, key: object) -> None:
        limiter = self.limiter
        if limiter is not None and not limiter.allow(key):
            raise SinkRateLimited(RATE_LIMITED)

    async def accept_pagerduty(self, event: IncomingPagerDuty) -> None:
        self._check_rate(("pagerduty", event.routing_key))
        self.state.record_pagerduty(event)

    async def accept_bigpanda(self, request: IncomingBigPanda) -> None:
        self._check_rate(("bigpanda", request.token))
        self.state.record_bigpanda(request)
