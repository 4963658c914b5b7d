"""Keeping the database password out of every text a PostgreSQL outbox shows.

The password may come in the URL (``postgresql://user:secret@host/db`` or
``?password=secret``); libpq's environment and ``PGPASSFILE`` keep it out of
the URL altogether, which is the way to prefer. Whatever the source, the
store's ``location``, its ``repr`` and every error text go through here.
"""

from __future__ import annotations

__all__ = ["redact_url", "scrub"]


def redact_url(url: str) -> str:
    """The URL with any password removed (userinfo and ``password=`` parameters).

    Written without parsing libpq's full grammar on purpose: whatever the URL
    looks like, the text between ``user:`` and ``@`` and every ``password=``
    value go, so a malformed URL cannot smuggle its password into a message.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "postgresql://?"
    authority, slash, tail = rest.partition("/")
    if "@" in authority:
        userinfo, _, hosts = authority.rpartition("@")
        user = userinfo.split(":", 1)[0]
        authority = f"{user}:***@{hosts}" if ":" in userinfo else f"{user}@{hosts}"
    path, qmark, query = tail.partition("?")
    if qmark:
        parts = [
            "password=***" if p.lower().startswith("password=") else p for p in query.split("&")
        ]
        query = "&".join(parts)
    return f"{scheme}://{authority}{slash}{path}{qmark}{query}"


def scrub(text: str, password: str) -> str:
    """``text`` with every occurrence of ``password`` replaced by ``***``."""
    return text.replace(password, "***") if password else text
