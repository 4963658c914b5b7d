"""A throwaway certificate authority for ``--tls``: both servers' https without a real certificate.

Some clients insist on https (PagerDuty's own Python client refuses
``http://`` even for a local server), so the sandbox and the relay's ingest
endpoint can serve TLS with a certificate from a CA made at start-up by
``trustme``. The CA certificate (public; no private key) is written to a
file the caller names or to a fresh private temporary directory, and
clients are pointed at it (``verify=sb.ca_file``). Nothing here is
trustworthy beyond one run, which is the point: a relay that other hosts
reach for good should be given a real certificate (``tls_cert``/``tls_key``).

``trustme`` is the optional extra ``alertwire[tls]`` (part of ``dev``),
imported only when a throwaway CA is made: a production relay with a real
certificate, and every producer, never needs it. Without it,
:func:`make_server_tls` raises a :class:`~alertwire.ConfigurationError`
that names the extra (docs/ingest.md, docs/sandbox.md).
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import ConfigurationError

__all__ = ["ServerTLS", "make_server_tls"]


@dataclass(frozen=True, slots=True)
class ServerTLS:
    context: ssl.SSLContext
    ca_file: Path
    #: The temporary directory to delete at shutdown (``None`` when the caller chose the path).
    temp_dir: Path | None


def _names(host: str) -> list[str]:
    names = ["127.0.0.1", "localhost", "::1"]
    try:
        ipaddress.ip_address(host.strip("[]"))
        host = host.strip("[]")
    except ValueError:
        pass
    if host and host not in names and host not in ("0.0.0.0", "::"):
        names.append(host)
    return names


def _trustme() -> Any:
    """``trustme``, or a one-line ConfigurationError saying which extra brings it."""
    try:
        import trustme
    except ImportError as exc:
        raise ConfigurationError(
            "a throwaway CA (--tls / tls=True) needs the trustme package:"
            " install alertwire[tls], or serve a real certificate with --tls-cert/--tls-key"
        ) from exc
    return trustme


def make_server_tls(host: str, ca_file: str | os.PathLike[str] | None = None) -> ServerTLS:
    """A server context with a certificate for ``host`` (and loopback) from a new CA."""
    ca = _trustme().CA()
    cert = ca.issue_cert(*_names(host))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    temp_dir: Path | None = None
    if ca_file is None:
        temp_dir = Path(tempfile.mkdtemp(prefix="alertwire-ca-"))
        path = temp_dir / "ca.pem"
    else:
        path = Path(ca_file)
    try:
        ca.cert_pem.write_to_path(str(path))
    except OSError as exc:
        # A path the user chose (--ca-file): a one-line error naming it, not a traceback.
        raise ConfigurationError(
            f"cannot write the CA certificate to {os.fspath(path)!r}:"
            f" {exc.strerror or type(exc).__name__}"
        ) from None
    return ServerTLS(context=context, ca_file=path, temp_dir=temp_dir)
