"""Allow-lists: the keys and tokens a relay forwards for, so it is never an open forwarder.

A file holds one routing key (or BigPanda token) per line; blank lines and
lines starting with ``#`` are ignored, surrounding whitespace is stripped.
Only SHA-256 digests are kept in memory: the list can be checked without
holding every credential as plain text, and nothing here can print one.
Errors name the file and the line number, never the line.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Final

from .._errors import ConfigurationError
from .._secret import Secret
from ..models.pagerduty_rules import check_routing_key

__all__ = ["Allowlist", "load_allowlist"]


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


@dataclass(frozen=True, slots=True)
class Allowlist:
    """A set of credentials, by digest. ``what`` names them in messages."""

    what: str
    digests: frozenset[bytes]

    @classmethod
    def of(cls, values: list[str | Secret], *, what: str) -> Allowlist:
        return cls(what, frozenset(_digest(Secret(v).reveal()) for v in values))

    def allows(self, credential: Secret) -> bool:
        return _digest(credential.reveal()) in self.digests

    def __len__(self) -> int:
        return len(self.digests)

    def __repr__(self) -> str:
        return f"Allowlist({self.what}, {len(self.digests)} entries)"


#: The most of an allow-list file that is read: some hundred thousand keys, far beyond
#: any real list. A path such as ``/dev/zero`` given by mistake was read for ever at start.
MAX_ALLOWLIST_CHARS: Final = 16 * 1024 * 1024


def load_allowlist(path: str | os.PathLike[str], *, routing_keys: bool) -> Allowlist:
    """Read an allow-list file; routing keys are checked with PagerDuty's own rules."""
    what = "routing keys" if routing_keys else "BigPanda tokens"
    try:
        # utf-8-sig: the byte order mark a Windows editor writes first is not part of the
        # first line. Kept, it made the first token a different one: that BigPanda
        # token's alerts were answered 403, which a sender does not retry.
        with open(path, encoding="utf-8-sig") as handle:
            text = handle.read(MAX_ALLOWLIST_CHARS + 1)
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ConfigurationError(
            f"cannot read the allow-list of {what} {path!s}: {reason}"
        ) from None
    if len(text) > MAX_ALLOWLIST_CHARS:
        raise ConfigurationError(
            f"the allow-list of {what} {path!s} is larger than an allow-list"
            f" ({MAX_ALLOWLIST_CHARS // (1024 * 1024)} Mi characters at most)"
        )
    lines = text.splitlines()
    values: list[str | Secret] = []
    for number, line in enumerate(lines, start=1):
        value = line.strip()
        if not value or value.startswith("#"):
            continue
        if routing_keys:
            problems = check_routing_key(value)
            if problems:
                raise ConfigurationError(
                    f"{path!s} line {number}: not a routing key ({problems[0].wire_text})"
                )
        values.append(value)
    if not values:
        raise ConfigurationError(
            f"the allow-list {path!s} holds no {what}: the relay would refuse everything"
        )
    return Allowlist.of(values, what=what)
