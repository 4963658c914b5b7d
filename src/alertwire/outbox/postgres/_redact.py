"""Keeping the database password out of every text a PostgreSQL outbox shows.

The password may come in the URL (``postgresql://user:secret@host/db`` or
``?password=secret``); libpq's environment and ``PGPASSFILE`` keep it out of
the URL altogether, which is the way to prefer. Whatever the source, the
store's ``location``, its ``repr`` and every error text go through here.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import unquote

__all__ = ["SECRET_PARAMETERS", "redact_url", "scrub"]

#: libpq's parameters that hold a secret: the password, and ``sslpassword``, the
#: passphrase of the client's TLS key. Compared with the name as libpq reads it,
#: percent-decoded and (for us) in any case.
SECRET_PARAMETERS: Final = frozenset({"password", "sslpassword"})


def redact_url(url: str) -> str:
    """The URL with any password removed (userinfo, ``password=`` and ``sslpassword=``).

    Written without parsing libpq's full grammar on purpose: whatever the URL
    looks like, the text between ``user:`` and ``@`` and every ``password=``
    value go, so a malformed URL cannot smuggle its password into a message.
    A password found there is then removed wherever else it appears too: a URL
    pasted by mistake into the database name or a parameter carries it again.
    (A very short password may blank out more text than itself: this text is
    for people to read, never for connecting.)
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "postgresql://?"
    passwords: list[str] = []
    # libpq's own reading first (fe-connect.c, conninfo_uri_parse_options): the
    # userinfo runs to the first "@" unless a "/" comes before it, a "?" or "&"
    # included, so "postgresql://u:pa?ss@host/db" connects with the password
    # "pa?ss", which the reading below takes for a query and once showed whole.
    first_at, first_slash = rest.find("@"), rest.find("/")
    if first_at >= 0 and (first_slash < 0 or first_at < first_slash):
        _, colon, password = rest[:first_at].partition(":")
        if colon:
            passwords.append(password)
    # The userinfo ends at the last "@" before the query, not at the first "/": a
    # password with an unencoded "/" or "@" must not end it early and be shown. The
    # password up to its first "@" is scrubbed too (a URL pasted after another),
    # when it is long enough not to blank out half the URL.
    before_query = rest.partition("?")[0]
    login = ""
    if "@" in before_query:
        last = before_query.rindex("@")
        userinfo, rest = rest[:last], rest[last + 1 :]
        user, colon, password = userinfo.partition(":")
        if colon:
            passwords.append(password)
            if len(first := password.partition("@")[0]) >= 4:
                passwords.append(first)
        login = f"{user}:***@" if colon else f"{user}@"
    authority, slash, tail = rest.partition("/")
    authority = login + authority
    path, qmark, query = tail.partition("?")
    if qmark:
        parts = []
        for part in query.split("&"):
            name, _, value = part.partition("=")
            secret = unquote(name).lower() in SECRET_PARAMETERS
            if secret:
                passwords.append(value)
            parts.append(f"{name}=***" if secret else part)
        query = "&".join(parts)
    redacted = f"{scheme}://{authority}{slash}{path}{qmark}{query}"
    for password in sorted(passwords, key=len, reverse=True):
        redacted = scrub(redacted, password)
    return redacted


def scrub(text: str, password: str) -> str:
    """``text`` with every occurrence of ``password`` replaced by ``***``."""
    return text.replace(password, "***") if password else text
