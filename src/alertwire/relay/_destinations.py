"""Where a stored row goes and how its answer is read: the relay's one use of the protocols.

A row carries its own base URL when it was enqueued with one (a sandbox, a
proxy); otherwise the relay's ``pagerduty_url`` / ``bigpanda_url``, else the
``region``'s hosts. The request and the answer's reading are the sans-IO
protocol modules' (the same the clients use), so nothing about the wire
format is written in the relay.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace

from .._relay_loop import RELAY_LOOP_HEADER, RELAY_PATH_HEADER, RelayLoopGuard
from ..models.results import EventResult
from ..outbox.machine import Claimed
from ..outbox.metrics import destination_of
from ..protocol import bigpanda as bp_protocol
from ..protocol import pagerduty as pd_protocol
from ..protocol.http import check_base_url
from ..transport import Request, Response

__all__ = ["Destinations"]


@dataclass(frozen=True, slots=True)
class Destinations:
    """The default base URLs, checked once (https, or http to loopback only).

    ``loop_guard``: set by a relay that listens (``Relay(listen=...)``); every
    request then carries its mark in
    :data:`~alertwire._relay_loop.RELAY_LOOP_HEADER`, and what the default
    upstream answers about the relays behind it is learned, so that the
    relay's own endpoint can refuse an event that would go round a ring of
    relays (or to itself) for ever instead of storing it (:mod:`alertwire._relay_loop`).
    """

    pagerduty_url: str
    bigpanda_url: str
    loop_guard: RelayLoopGuard | None = None

    @classmethod
    def resolve(
        cls, *, pagerduty_url: str | None, bigpanda_url: str | None, region: str
    ) -> Destinations:
        return cls(
            pagerduty_url=(
                check_base_url(pagerduty_url, setting="pagerduty_url")
                if pagerduty_url
                else pd_protocol.base_url_for_region(region)
            ),
            bigpanda_url=(
                check_base_url(bigpanda_url, setting="bigpanda_url")
                if bigpanda_url
                else bp_protocol.base_url_for_region(region)
            ),
        )

    def with_loop_guard(self, guard: RelayLoopGuard) -> Destinations:
        return replace(self, loop_guard=guard)

    def request_for(self, row: Claimed) -> tuple[Request, Callable[[Response], EventResult]]:
        """The request for a stored row and the parser for its answer (marked, when the
        relay listens)."""
        request, parse = self._request_for(row)
        guard = self.loop_guard
        if guard is None:
            return request, parse
        headers = {**request.headers, RELAY_LOOP_HEADER: guard.mark}
        request = Request(request.method, request.url, headers, request.body)
        if row.base_url is not None:  # not the default upstream: nothing to learn
            return request, parse
        destination = destination_of(row.kind)

        def learning(response: Response) -> EventResult:
            if 200 <= response.status <= 299:
                guard.learn(destination, response.header(RELAY_PATH_HEADER))
            return parse(response)

        return request, learning

    def _request_for(self, row: Claimed) -> tuple[Request, Callable[[Response], EventResult]]:
        if row.kind == "bigpanda.alert":
            request = bp_protocol.build_raw_request(
                row.base_url or self.bigpanda_url, row.credential, row.body
            )
            return request, functools.partial(bp_protocol.parse_response, token=row.credential)
        kind: pd_protocol.Kind = "change" if row.kind == "pagerduty.change" else "alert"
        request = pd_protocol.build_raw_request(row.base_url or self.pagerduty_url, kind, row.body)
        return request, functools.partial(
            pd_protocol.parse_response,
            kind=kind,
            sent_dedup_key=row.dedup_key,
            routing_key=row.credential,
        )
