"""The SQLite outbox names the SQLite library it needs instead of failing on a statement.

Python links whichever SQLite the system gave it; the outbox's statements use
``RETURNING`` (3.35) and ``UPDATE ... FROM`` (3.33), which an older library
reads as a syntax error at the first enqueue or relay cycle. The check is
pure: it is given a version, so an old library is not needed to test it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from alertwire import ConfigurationError
from alertwire.outbox import Outbox
from alertwire.outbox.sqlite._connection import MIN_SQLITE, check_sqlite_library


@pytest.mark.parametrize("version", [(3, 35, 3), (3, 34, 1), (3, 31, 1), (3, 7, 17)])
def test_an_older_library_is_refused_by_name(version: tuple[int, int, int]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_sqlite_library(version)
    text = str(caught.value)
    assert "SQLite 3.35.5 or newer" in text
    assert "SQLite " + ".".join(map(str, version)) in text


@pytest.mark.parametrize("version", [MIN_SQLITE, (3, 40, 1), (4, 0, 0)])
def test_the_minimum_and_newer_are_accepted(version: tuple[int, int, int]) -> None:
    check_sqlite_library(version)


def test_this_machine_s_library_opens_an_outbox(tmp_path: Path) -> None:
    assert sqlite3.sqlite_version_info >= MIN_SQLITE
    with Outbox(tmp_path / "outbox.sqlite3") as box:
        assert box.stats().pending == 0
