"""Each thread's SQLite connection: who may close it, and when.

sqlite3 connections are not shared between threads, so an outbox keeps one
per thread (:class:`ThreadConnection`). Two things can close a connection
other than its own thread's operations, and each needs a guard.

**Closing the outbox from another thread** (``Outbox.close()`` while a
relay's store thread, or a thread inside ``enqueue``, is in a statement or a
transaction). Python's sqlite3 lets a connection be closed from any thread
(``check_same_thread=False``), but not safely while another thread uses it:
``close()`` empties the connection's statement cache before it marks the
connection closed, and a thread whose ``BEGIN IMMEDIATE`` just got the lock
then runs its next statement through that emptied cache, and the interpreter
dies with a segmentation fault. A library must not crash its caller's
process because the caller closed something, so each connection has a lock
(:attr:`ThreadConnection.busy`) that its thread holds for the whole of every
operation (a transaction from ``BEGIN`` to ``COMMIT``, one autocommit
statement, a read, an opening), and ``close()`` takes it before closing that
connection: an operation under way finishes first.

``close()`` waits for that at most the busy timeout, all connections
together: an operation waits for SQLite's lock no longer than that, then
does little. A connection still busy after it is left to its own thread,
which closes it as its operation ends (the store is marked closed first), and
a WARNING says so; ``close()`` never closes a connection in use.

**A thread that ended.** Its connection would stay open (two file
descriptors and a page cache) until ``close()``: a service enqueueing from a
thread per request ran out of file descriptors. Each thread's local storage
holds a :class:`ThreadEnd`, and a ``weakref.finalize`` on it closes the
connection. Python clears a thread's locals when its thread state goes: for
those ``threading`` started and those started by ``_thread.start_new_thread``,
when the OS thread ends. ``threading`` knows the latter only as a
``_DummyThread`` that is never seen to end (``is_alive()`` is always true),
so asking ``threading`` which threads ended missed them. A C extension's
thread that enters Python through ``PyGILState_Ensure`` gets a fresh thread
state at each outermost call, so its connection lasts one call: correct, if
slower for such a caller. In a child made by ``fork`` the parent's other
threads' states go too, and nothing is closed then (:func:`watch_thread_end`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable

__all__ = ["ThreadConnection", "ThreadEnd", "watch_thread_end"]


class ThreadConnection:
    """One thread's connection to the file (``None`` until its first operation opens
    it), what the store set on it, and the lock held for the whole of each operation.

    ``depth`` counts the operations of the owning thread that hold ``busy`` (one
    operation may run inside another, a purge and its ``VACUUM``); only that thread
    reads or changes it, so it needs no lock of its own.
    """

    __slots__ = ("busy", "conn", "depth", "ended", "journal_in_memory", "no_wait")

    def __init__(self) -> None:
        self.busy = threading.Lock()
        self.conn: sqlite3.Connection | None = None
        self.depth = 0
        self.journal_in_memory = False
        self.no_wait = False
        self.ended: weakref.finalize[[], ThreadEnd] | None = None

    def close(self) -> None:
        """Close the connection (the caller holds ``busy``); the next operation opens anew."""
        conn, self.conn = self.conn, None
        self.journal_in_memory = False  # settings of the connection closed here
        self.no_wait = False
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def close_if_idle(self) -> None:
        """Close the connection unless an operation holds it (then its thread does)."""
        if self.busy.acquire(blocking=False):
            try:
                self.close()
            finally:
                self.busy.release()


class ThreadEnd:
    """Kept only in one thread's local storage: freed when that thread ends."""

    __slots__ = ("__weakref__",)


def watch_thread_end(
    end: ThreadEnd, slot: ThreadConnection, forget: Callable[[ThreadConnection], None]
) -> None:
    """Once ``end`` is freed (its thread ended): ``forget(slot)``, then close its connection.

    Not at interpreter exit (``atexit`` off): daemon threads may still be inside an
    operation then, and the process is about to release everything anyway. Not in
    a child made by ``fork`` either: the fork itself drops the other threads' state
    there, which frees their ``end`` and runs this before any code of the child's,
    while a lock of the parent's may be copied held (waiting for it would hang the
    child for good), and the connection is the parent's, which SQLite says a
    child must never use, closing included.
    """
    parent = os.getpid()

    def ended() -> None:
        if os.getpid() != parent:
            return
        forget(slot)
        slot.close_if_idle()

    finalizer = weakref.finalize(end, ended)
    finalizer.atexit = False
    slot.ended = finalizer
