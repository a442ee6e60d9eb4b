"""Outbound HTTP calls to an address a merchant chose (callbacks, P8): only public addresses (TESTING
"Outbound calls"). A URL is checked when it is saved (``check_url``) and again at each call (``post``),
which connects to the very address it has just checked, so a name that resolves elsewhere a moment later
cannot slip in; no redirect is followed and no answer body is read.

Loopback is refused like any other internal address; only the test-only setting
``CALLBACK_ALLOW_LOOPBACK`` (never read from the environment) lets a test server on 127.0.0.1 answer.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from urllib.parse import urlsplit

from django.conf import settings

NOT_PUBLIC = "Callbacks go to public internet addresses only; this address is internal or reserved."


class RefusedAddress(ValueError):
    """The URL's host is not a public address (or cannot be resolved); the message is safe to show."""


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if ip.version == 6:
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return _public(embedded)
    if ip.is_loopback and getattr(settings, "CALLBACK_ALLOW_LOOPBACK", False):
        return True
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def resolve(host: str, port: int) -> list[str]:
    """The addresses of ``host`` (a literal address is its own); RefusedAddress if it does not resolve."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise RefusedAddress(f"The host name {host} cannot be resolved.") from exc
    return [info[4][0].split("%")[0] for info in infos]


def _target(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RefusedAddress("Use an http:// or https:// address.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise RefusedAddress("The port of this address is not valid.") from exc
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port, path


def public_address(host: str, port: int) -> str:
    """One address to connect to, when every address of ``host`` is public; else RefusedAddress."""
    addresses = resolve(host, port)
    if not addresses or not all(_public(ipaddress.ip_address(address)) for address in addresses):
        raise RefusedAddress(NOT_PUBLIC)
    return addresses[0]


def check_url(url: str) -> None:
    """RefusedAddress unless ``url`` is http(s) to a host whose every address is public."""
    _scheme, host, port, _path = _target(url)
    public_address(host, port)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Talks to ``address`` (checked) while the request names ``host`` (Host header)."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As above, over TLS: the certificate is checked against ``host``."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float):
        self.tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self.tls)
        self.address = address

    def connect(self):
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST ``body`` and return the answer's status code (a redirect is returned, not followed).
    Raises RefusedAddress, OSError (unreachable, time-out, TLS) or http.client.HTTPException."""
    scheme, host, port, path = _target(url)
    address = public_address(host, port)
    connection_class = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(host, port, address=address, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()
