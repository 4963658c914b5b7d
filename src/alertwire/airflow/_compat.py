"""The few Airflow names the hooks and notifiers use, typed for mypy.

Airflow is not installed where alertwire is type-checked (its pins would
decide ours: it runs in a virtual environment of its own, see
docs/testing.md), so mypy sees the small typed outline below instead of
Airflow's classes, and the code that uses them is still checked strictly.
At run time the names are Airflow 3's own, from ``airflow.sdk``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._settings import ConnectionFields

__all__ = ["AirflowNotFoundException", "BaseHook", "BaseNotifier", "connection_fields"]

if TYPE_CHECKING:
    import logging

    class _Connection:
        conn_id: str
        login: str | None
        password: str | None

        @property
        def extra_dejson(self) -> dict[str, Any]: ...

    class AirflowNotFoundException(Exception):
        """Raised by ``BaseHook.get_connection`` for an undefined connection id."""

    class BaseHook:
        log: logging.Logger

        def __init__(self, logger_name: str | None = None) -> None: ...

        @classmethod
        def get_connection(cls, conn_id: str) -> _Connection: ...

    class BaseNotifier:
        template_fields: Sequence[str]
        log: logging.Logger

        def __init__(self, context: Any = None) -> None: ...

        def notify(self, context: Any) -> None: ...

else:
    from airflow.sdk import BaseHook, BaseNotifier
    from airflow.sdk.exceptions import AirflowNotFoundException


def connection_fields(conn_id: str | None, *, required: bool) -> ConnectionFields | None:
    """The connection's fields, or ``None`` when there is none and it is not ``required``.

    ``required`` is false when the caller passed the key itself: then a
    missing connection is not an error (the official hooks raised
    ``AirflowNotFoundException`` there, and sent nothing).
    """
    if conn_id is None:
        return None
    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        if required:
            raise
        return None
    return ConnectionFields(
        conn_id=conn_id, password=conn.password, login=conn.login, extra=conn.extra_dejson
    )
