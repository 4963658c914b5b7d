"""Connection fields and hook arguments turned into validated delivery settings.

Pure logic, no Airflow import: the hooks hand over what Airflow's connection
holds (``password``, ``login``, the ``extra`` mapping) and what the caller
passed, and get back one frozen value with the key held as a
:class:`~alertwire.Secret`. Keeping it here makes every rule testable
without Airflow, and keeps the hook modules to Airflow glue.

Which connection fields mean what (the official provider's, plus ours) is
documented in docs/airflow.md. Decisions:

* An argument beats the connection, the connection beats the environment
  (``ALERTWIRE_OUTBOX``), as the official hooks let ``integration_key=``
  beat the connection's password.
* An ``extra`` field we do not know is logged at WARNING (by name, never by
  value): a misspelt ``outbox`` would otherwise silently turn durable
  delivery off. A known field of the wrong type is a
  :class:`~alertwire.ConfigurationError` naming it, except ``outbox``: the
  page must still go out, so an ``outbox`` that is not a string is logged at
  ERROR and counts as not given (the next source, ``ALERTWIRE_OUTBOX``, else
  a direct send), as an outbox that cannot be opened falls back to a direct
  send. A ``region`` or ``base_url`` of the wrong type still stops the page:
  guessing the destination could send a key to the wrong service region.
* What the connection does not say, the environment may: the variables
  the command line reads (``ALERTWIRE_PAGERDUTY_URL``, ``ALERTWIRE_BIGPANDA_URL``,
  ``ALERTWIRE_REGION``, ``ALERTWIRE_OUTBOX``), so one worker-wide setting
  covers ``integration_key=`` callers that have no connection at all.
* A connection that has a ``region`` but no ``base_url`` stores the region's
  URL with every queued page, so the relay sends an EU key to the EU
  endpoint whatever its own setting.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .. import _config
from .._errors import ConfigurationError
from .._retry import RetryPolicy
from .._secret import Secret
from ..protocol import bigpanda as bp_protocol
from ..protocol import pagerduty as pd_protocol
from ..protocol.http import resolve_base_url

__all__ = [
    "BIGPANDA_EXTRAS",
    "EVENTS_EXTRAS",
    "REST_EXTRAS",
    "ConnectionFields",
    "Destination",
    "read_extras",
    "region_of",
    "resolve_outbox",
]

logger = logging.getLogger("alertwire.airflow")

#: The ``extra`` fields each kind of connection understands.
EVENTS_EXTRAS: Final = frozenset({"region", "base_url", "outbox"})
REST_EXTRAS: Final = frozenset({"routing_key", "region", "base_url", "events_base_url"})
BIGPANDA_EXTRAS: Final = frozenset({"region", "base_url", "outbox"})


@dataclass(frozen=True, slots=True)
class ConnectionFields:
    """What an Airflow connection holds, as plain values (``None``: no connection)."""

    conn_id: str
    password: str | None = None
    login: str | None = None
    extra: Mapping[str, Any] | None = None

    def __repr__(self) -> str:
        return f"ConnectionFields(conn_id={self.conn_id!r})"


def read_extras(fields: ConnectionFields | None, known: frozenset[str]) -> dict[str, str]:
    """The connection's known ``extra`` fields as non-empty strings; warn about the rest."""
    if fields is None or not fields.extra:
        return {}
    extra = fields.extra
    if not isinstance(extra, Mapping):
        raise ConfigurationError(
            f"connection {fields.conn_id!r}: extra must be a JSON object, not {type(extra).__name__}"
        )
    unknown = sorted(str(name) for name in extra if name not in known)
    if unknown:
        logger.warning(
            "connection %r: ignoring unknown extra field(s) %s (known: %s)",
            fields.conn_id,
            ", ".join(unknown),
            ", ".join(sorted(known)),
        )
    values: dict[str, str] = {}
    for name in known:
        value = extra.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str) and name == "outbox":
            logger.error(
                "connection %r: extra field 'outbox' must be a string, not %s: ignored"
                " (ALERTWIRE_OUTBOX if set, else pages are sent directly)",
                fields.conn_id,
                type(value).__name__,
            )
            continue
        if not isinstance(value, str):
            raise ConfigurationError(
                f"connection {fields.conn_id!r}: extra field {name!r} must be a string,"
                f" not {type(value).__name__}"
            )
        values[name] = value.strip()
    return values


def resolve_outbox(
    argument: str | os.PathLike[str] | None,
    extras: Mapping[str, str],
    env: Mapping[str, str] | None = None,
) -> str | None:
    """The outbox to store pages in: the argument, else the connection's, else ``ALERTWIRE_OUTBOX``."""
    if argument is not None and os.fspath(argument).strip():
        return os.fspath(argument).strip()
    if extras.get("outbox"):
        return extras["outbox"]
    return _config.optional_env(_config.ENV_OUTBOX, env)


@dataclass(frozen=True, slots=True)
class Destination:
    """Where and how to deliver: a key, a URL setting, an optional outbox, a retry policy."""

    key: Secret
    region: str
    base_url: str | None
    outbox: str | None
    retry: RetryPolicy | None = None
    app_key: str | None = None

    def __repr__(self) -> str:
        return (
            f"Destination(key={self.key!r}, region={self.region!r}, base_url={self.base_url!r},"
            f" outbox={'set' if self.outbox else None!r})"
        )

    def queued_base_url(self, kind: str) -> str | None:
        """The URL stored with a queued page: explicit, or the region's when not the default."""
        if self.base_url is not None:
            return self.base_url
        if self.region == "us":
            return None
        regions = pd_protocol.REGIONS if kind == "pagerduty" else bp_protocol.REGIONS
        return resolve_base_url(self.region, None, regions=regions)


def region_of(
    extras: Mapping[str, str], conn_id: str | None, env: Mapping[str, str] | None = None
) -> str:
    """The connection's ``region``, else ``ALERTWIRE_REGION``, else ``us``."""
    region = (extras.get("region") or _config.optional_env(_config.ENV_REGION, env) or "us").lower()
    if region not in pd_protocol.REGIONS:
        where = f"connection {conn_id!r} extra field 'region'" if conn_id else "region"
        raise ConfigurationError(
            f"{where} (or {_config.ENV_REGION}) must be one of"
            f" {', '.join(sorted(pd_protocol.REGIONS))}"
        )
    return region
