"""How the relay says it dead-lettered events: WARNING lines, few or summarised.

A dead letter is an alert that will not arrive without a person, so it is
never quiet: every one is a WARNING (``relay --quiet`` keeps them) with the
id, kind, route digest, reason, tries and the service's own text. In bulk
(``max_age`` expiring a backlog of thousands, a key that the service refuses
over and over) one line per event would bury everything else, so dead
letters are gathered while they keep coming, for at most
:data:`SUMMARY_INTERVAL` seconds, and said in ONE line with the count by
reason and the first ids. Up to :data:`LINES_PER_BATCH` of them still get a
line each. Never a key: the route is a digest prefix.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Final

from ..outbox.machine import Claimed, MarkDead

__all__ = ["LINES_PER_BATCH", "SUMMARY_IDS", "SUMMARY_INTERVAL", "DeadLetterLog"]

#: Dead letters in one batch up to which each gets its own line.
LINES_PER_BATCH: Final = 5
#: How many ids a summary line names.
SUMMARY_IDS: Final = 10
#: Longest a batch gathers before it is said (seconds).
SUMMARY_INTERVAL: Final = 5.0


class DeadLetterLog:
    """Gathers dead letters while they keep coming; :meth:`flush` says them.

    Only what the lines need is kept (the first few lines, counts, the first
    ids), so a sweep of a million rows costs constant memory.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._reset()

    def _reset(self) -> None:
        self._lines: list[tuple[int, str, str, str, int, int | None, str]] = []
        self._count = 0
        self._reasons: Counter[str] = Counter()
        self._never_tried = 0
        self._first_ids: list[int] = []
        self._since: float | None = None

    def add(self, dead: list[tuple[Claimed, MarkDead]]) -> None:
        """Record a cycle's dead letters; an empty cycle ends the batch (said now)."""
        for row, outcome in dead:
            tries = row.attempts - outcome.unsent
            self._count += 1
            self._reasons[outcome.reason] += 1
            self._never_tried += tries == 0
            if len(self._first_ids) < SUMMARY_IDS:
                self._first_ids.append(row.id)
            if len(self._lines) < LINES_PER_BATCH:
                self._lines.append(
                    (
                        row.id,
                        row.kind,
                        row.route[:8],
                        outcome.reason,
                        tries,
                        outcome.http_status,
                        outcome.error[:200],
                    )
                )
        if dead and self._since is None:
            self._since = time.monotonic()
        if self._since is not None and (
            not dead or time.monotonic() - self._since >= SUMMARY_INTERVAL
        ):
            self.flush()

    def flush(self) -> None:
        if self._count == 0:
            return
        if self._count <= LINES_PER_BATCH:
            for line in self._lines:
                self._logger.warning(
                    "event=dead id=%d kind=%s route=%s reason=%s tries=%d status=%s error=%r",
                    *line,
                )
        else:
            self._logger.warning(
                "event=dead_letters count=%d reasons=%s expired_before_delivery=%d"
                ' first_ids=%s note="see alertwire queue dead"',
                self._count,
                ",".join(f"{k}:{v}" for k, v in sorted(self._reasons.items())),
                self._never_tried,
                ",".join(str(i) for i in sorted(self._first_ids)),
            )
        self._reset()
