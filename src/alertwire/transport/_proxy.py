"""Which proxy, if any, a default transport goes through for one origin.

Scripts and cron jobs behind a corporate proxy set ``HTTPS_PROXY`` (and
``NO_PROXY``) once for every tool, as curl, requests and PagerDuty's own CLI
honour them; a page that cannot leave the network because *our* tool ignores
them is the failure this module exists to prevent. The rules, decided here
once and written in docs/transports.md:

* ``https://`` origins use ``HTTPS_PROXY``, ``http://`` origins ``HTTP_PROXY``;
  either falls back to ``ALL_PROXY``. Lower-case names win over upper-case
  and ``HTTP_PROXY`` is ignored in a CGI request, as in the standard library.
* ``NO_PROXY`` lists what is reached directly: ``*``, names (each with its
  subdomains; ``.example.com`` and ``example.com`` alike), ``name:port``,
  and for IP addresses an address or a network (``10.0.0.0/8``), as curl and
  requests read it (:func:`_listed`).
* **Loopback is always direct** (``localhost``, ``127.0.0.0/8``, ``::1``), as
  in Go's standard library: the sandbox, a local relay's ingest endpoint and
  Alertmanager's neighbours are on this machine, and a proxy cannot reach
  them there.
* A proxy is spoken to in plain HTTP (``http://host:port``, the scheme may be
  left out); TLS to the service goes through a ``CONNECT`` tunnel, verified
  end to end as without a proxy. Credentials in the proxy URL
  (``http://user:password@proxy:3128``) become a ``Proxy-Authorization:
  Basic`` header and are never shown. An ``https://`` or ``socks`` proxy is
  refused with a :class:`~alertwire.ConfigurationError` (a ``ValueError``)
  naming the variable, not silently skipped: the CLI exits 2 with it.

The environment is read when a transport is made, once; ``urllib.parse`` is
imported only if a proxy variable is set, so a one-shot ``alertwire
trigger`` pays nothing for this otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from .._errors import ConfigurationError

if TYPE_CHECKING:
    from ipaddress import IPv4Address, IPv6Address

    IPAddress = IPv4Address | IPv6Address

__all__ = ["Proxy", "ProxySettings", "check_tunnel", "proxy_settings", "transport_proxies"]

#: Names whose presence (any case) means the environment configures a proxy.
_NAMES: Final = frozenset({"https_proxy", "http_proxy", "all_proxy", "no_proxy"})


class Proxy:
    """A proxy to go through: where it is, and the header that logs in to it, if any.

    (Plain classes, not dataclasses, here: this module is imported by every
    start of the CLI, and a dataclass costs a fraction of a millisecond to make.)
    """

    __slots__ = ("authorization", "host", "port")

    def __init__(self, host: str, port: int, authorization: str | None = None) -> None:
        self.host = host
        self.port = port
        #: ``Basic ...`` for ``Proxy-Authorization``; a credential, never in a repr.
        self.authorization = authorization

    def __repr__(self) -> str:
        return f"Proxy(host={self.host!r}, port={self.port})"

    def tunnel_request(self, host: str, port: int) -> bytes:
        """The ``CONNECT`` request that asks this proxy for a tunnel to ``host:port``
        (both default transports send it, then run TLS inside the tunnel)."""
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
        if self.authorization:
            lines.append(f"Proxy-Authorization: {self.authorization}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def check_tunnel(status: int) -> None:
    """A proxy's answer to ``CONNECT``: anything but a 2xx is an ``OSError`` (a network
    failure, retried like one), worded as ``http.client`` words it."""
    if not 200 <= status < 300:
        raise OSError(f"Tunnel connection failed: {status}")


class ProxySettings:
    """The proxies the environment names, checked: ``scheme -> Proxy`` and ``NO_PROXY``.

    ``loopback_direct`` is ``False`` for a proxy given explicitly (``proxy=``):
    it is used for loopback too.
    """

    __slots__ = ("_decided", "by_scheme", "loopback_direct", "no_proxy")

    def __init__(
        self,
        by_scheme: Mapping[str, Proxy],
        no_proxy: str | None = None,
        *,
        loopback_direct: bool = True,
    ) -> None:
        self.by_scheme = by_scheme
        self.no_proxy = no_proxy
        self.loopback_direct = loopback_direct
        #: origin -> its proxy (``None``: direct), decided once per origin for the
        #: transports, which ask per request or per URL.
        self._decided: dict[tuple[str, str, int], Proxy | None] = {}

    def __repr__(self) -> str:
        return f"ProxySettings(by_scheme={self.by_scheme!r}, no_proxy={self.no_proxy!r})"

    @classmethod
    def everywhere(cls, url: str) -> ProxySettings:
        """One proxy for every origin, loopback included (a transport's ``proxy=``)."""
        return cls({"all": _parse(url, "proxy")}, loopback_direct=False)

    def for_origin(self, scheme: str, host: str, port: int) -> Proxy | None:
        """The proxy for ``scheme://host:port``, or ``None`` to connect directly."""
        origin = (scheme, host, port)
        if origin not in self._decided:
            if len(self._decided) >= 1024:
                self._decided.clear()  # origins are few; this only bounds a strange caller
            self._decided[origin] = self._decide(scheme, host, port)
        return self._decided[origin]

    def _decide(self, scheme: str, host: str, port: int) -> Proxy | None:
        proxy = self.by_scheme.get(scheme) or self.by_scheme.get("all")
        if proxy is None:
            return None
        name, address = _host(host)
        if self.loopback_direct and _is_loopback(name, address):
            return None
        if self.no_proxy and _listed(self.no_proxy, name, address, port):
            return None
        return proxy


def proxy_settings(environ: Mapping[str, str] | None = None) -> ProxySettings | None:
    """The proxy settings in ``environ`` (the process environment by default); ``None``
    when no proxy variable is set. A proxy URL we cannot use is a
    :class:`~alertwire.ConfigurationError` now, when the transport is made,
    naming the variable.

    Read as ``urllib.request.getproxies_environment`` reads ``os.environ``
    (every ``*_proxy`` name, lower case winning, an empty lower-case one
    unsetting, ``http`` dropped in a CGI request), over any mapping.
    """
    env = os.environ if environ is None else environ
    found: dict[str, tuple[str, str]] = {}  # scheme -> (variable, value)
    for lower_case_wins in (False, True):
        for name, value in env.items():
            if name.lower() in _NAMES and (name == name.lower()) == lower_case_wins:
                scheme = name.lower().removesuffix("_proxy")
                if value:
                    found[scheme] = (name, value)
                elif lower_case_wins:
                    found.pop(scheme, None)
    if "REQUEST_METHOD" in env:
        found.pop("http", None)  # CGI: HTTP_PROXY may come from a request's Proxy: header
    no_proxy = found.pop("no", None)
    if not found:
        return None
    by_scheme = {scheme: _parse(value, name) for scheme, (name, value) in found.items()}
    return ProxySettings(by_scheme, no_proxy[1] if no_proxy else None)


def transport_proxies(*, trust_env: bool, proxy: str | None) -> ProxySettings | None:
    """What a default transport's ``trust_env=`` and ``proxy=`` settle on: the one
    proxy given, else the environment's, else none."""
    if proxy is not None:
        return ProxySettings.everywhere(proxy)
    return proxy_settings() if trust_env else None


def _host(host: str) -> tuple[str, IPAddress | None]:
    """``host`` as both rules compare it (no brackets, no trailing dot, lower case),
    and its IP address if it is one."""
    import ipaddress  # only with a proxy set: not a cost of every start-up

    name = host.strip("[]").rstrip(".").lower()
    try:
        return name, ipaddress.ip_address(name)
    except ValueError:
        return name, None


def _listed(no_proxy: str, name: str, address: IPAddress | None, port: int) -> bool:
    """Whether ``NO_PROXY`` names the host ``name`` (or ``name:port``).

    Entries are comma-separated: ``*`` (everything), a name (itself and its
    subdomains; a leading dot changes nothing), ``name:port`` (that port
    only), or for an IP address an address or a network (``10.0.0.0/8``), as
    curl and requests read them. Written here rather than borrowed: the
    standard library's matcher is not a documented API.
    """
    import ipaddress

    for entry in (part.strip() for part in no_proxy.lower().split(",")):
        if entry == "*":
            return True
        if not entry:
            continue
        if address is not None and not entry.startswith("["):
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
                continue
            except ValueError:
                pass
        entry_host, _, entry_port = entry.rpartition(":") if _has_port(entry) else (entry, "", "")
        if entry_port and entry_port != str(port):
            continue
        entry_host = entry_host.strip("[]").lstrip(".").rstrip(".")
        if entry_host and (name == entry_host or name.endswith("." + entry_host)):
            return True
    return False


def _has_port(entry: str) -> bool:
    """``host:port`` or ``[v6]:port``, not a bare IPv6 address."""
    head, colon, tail = entry.rpartition(":")
    return bool(colon) and tail.isdigit() and (head.endswith("]") or ":" not in head)


def _is_loopback(name: str, address: IPAddress | None) -> bool:
    if address is not None:
        return address.is_loopback
    return name == "localhost" or name.endswith(".localhost")


def _parse(url: str, variable: str) -> Proxy:
    """``http://[user:password@]host[:port]`` -> :class:`Proxy`; anything else is refused."""
    from urllib.parse import unquote, urlsplit

    url = url if "://" in url else f"http://{url}"
    after_scheme = url.partition("://")[2]
    if "@" in after_scheme and "/" in after_scheme[: after_scheme.rindex("@")]:
        # An unencoded "/" in the user or password would end the address early and show
        # part of the password as the proxy's host or port: refuse it, without showing it.
        raise ConfigurationError(
            f"{variable}: the user or password in the proxy URL must be percent-encoded"
            " (a '/' in it is written %2F)"
        )
    parts = urlsplit(url)
    if parts.scheme.lower() != "http":
        raise ConfigurationError(
            f"{variable}: only http:// proxies are supported (TLS to the service goes"
            f" through a CONNECT tunnel); got a {parts.scheme}:// proxy"
        )
    try:
        port = parts.port or 80
    except ValueError:
        port = -1
    if not parts.hostname or port <= 0:
        raise ConfigurationError(f"{variable}: not a proxy address (want http://host:port)")
    authorization = None
    if parts.username is not None:
        import base64

        login = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(login.encode()).decode("ascii")
    return Proxy(parts.hostname, port, authorization)
