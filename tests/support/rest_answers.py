"""Scripted REST API answers for :class:`~tests.support.loopback_server.LoopbackServer`,
shared by the library's and the command line's tests of the same server behaviour."""

from __future__ import annotations

from tests.support.loopback_server import Answer, Received

__all__ = ["BULK_IDS", "refuse_a_bulk_update_of_one"]

#: 251 incident ids: two bulk ``PUT /incidents`` requests, of 250 and of 1.
BULK_IDS = [f"P{n:06d}" for n in range(251)]


def refuse_a_bulk_update_of_one(received: Received) -> Answer:
    """A bulk update of several incidents succeeds; one of a single incident is a 404."""
    sent = received.json()["incidents"]
    if len(sent) == 1:
        return Answer(404, {"error": {"message": "Not Found", "code": 2100}})
    return Answer(200, {"incidents": [{**i, "type": "incident"} for i in sent]})
