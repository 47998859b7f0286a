"""Fetching an image URL found in a dataset, without trusting it.

A dataset from elsewhere decides which addresses the library calls, so :func:`fetch`:

- speaks ``http`` and ``https`` only, and follows a redirect only to another ``http(s)`` URL
  (at most :data:`MAX_REDIRECTS`);
- resolves the host itself, refuses it when *any* of its addresses is loopback, link-local,
  private, shared, reserved, multicast or unspecified (unless ``allow_private=True``: e.g. a test
  server on 127.0.0.1), and connects to the address it checked, so a second DNS answer cannot
  swap in another one (DNS rebinding);
- stops reading at ``max_bytes`` (a larger ``Content-Length`` is refused before the body);
- gives the whole transfer one deadline (``timeout`` seconds for connecting, redirects and the
  last byte of the body), so a server trickling bytes cannot stretch it (name resolution is the
  system resolver's, with its own timeouts);
- never uses proxies from the environment (a proxy would resolve the host itself).

A refusal or failure raises :class:`UrlError` whose ``status`` is a row status:
``url_not_allowed: <why>``, ``url_fetch_failed[: <why>]`` or ``image_too_large: <detail>``.
Statuses and log lines show a URL without its credentials, query string or fragment.

    >>> fetch("ftp://example.com/a.png", timeout=1, max_bytes=10)
    Traceback (most recent call last):
    ...
    hfgcot.urls.UrlError: url_not_allowed: ftp url
    >>> address_problem("169.254.169.254"), address_problem("93.184.215.14")
    ('link-local address', None)
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

__all__ = [
    "IMAGE_TOO_LARGE",
    "MAX_REDIRECTS",
    "URL_FETCH_FAILED",
    "URL_NOT_ALLOWED",
    "UrlError",
    "address_problem",
    "fetch",
    "is_url",
    "safe_url",
]

URL_NOT_ALLOWED = "url_not_allowed"
URL_FETCH_FAILED = "url_fetch_failed"
IMAGE_TOO_LARGE = "image_too_large"
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
_USER_AGENT = "hfgcot-images/1"


class UrlError(Exception):
    """A URL that was refused or could not be fetched; ``status`` is the row status."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


def is_url(value: object) -> bool:
    """Whether ``value`` is an ``http://`` or ``https://`` URL (any case).

    >>> is_url("HTTPS://x.org/a.png"), is_url("file:///a.png"), is_url(None)
    (True, False, False)
    """
    return isinstance(value, str) and value[:8].lower().startswith(("http://", "https://"))


def safe_url(url: str) -> str:
    """``scheme://host[:port]/path`` of ``url``: no credentials, query string or fragment.

    >>> safe_url("https://me:pw@x.org:8443/a.png?sig=SECRET#f")
    'https://x.org:8443/a.png'
    >>> safe_url("http://[::1]:9/a.png")
    'http://[::1]:9/a.png'
    """
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparsable url>"
    if ":" in host:  # IPv6
        host = f"[{host}]"
    if port:
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}{parts.path}"


def address_problem(address: str) -> str | None:
    """Why a library must not call ``address`` on behalf of a dataset, or ``None`` if public.

    IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.

    >>> address_problem("127.0.0.1"), address_problem("::ffff:10.0.0.1"), address_problem("::1")
    ('loopback address', 'private address', 'loopback address')
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind in ("loopback", "link_local", "unspecified", "multicast", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return f"{kind.replace('_', '-')} address"
    if not ip.is_global:  # e.g. 100.64.0.0/10, shared address space of carrier NAT
        return "non-global address"
    return None


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str


def _target(url: str, redirected: bool) -> _Target:
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlError(f"{URL_FETCH_FAILED}: bad url") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        where = "redirect to " if redirected else ""
        raise UrlError(f"{URL_NOT_ALLOWED}: {where}{scheme or 'relative'} url")
    if not parts.hostname:
        raise UrlError(f"{URL_FETCH_FAILED}: bad url")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return _Target(scheme, parts.hostname, port or (443 if scheme == "https" else 80), path)


def _addresses(target: _Target, allow_private: bool) -> list[str]:
    """Every address of the host, checked; a host with one refused address is refused."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UrlError(f"{URL_FETCH_FAILED}: cannot resolve host") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not allow_private:
        for address in addresses:
            problem = address_problem(address)
            if problem:
                raise UrlError(f"{URL_NOT_ALLOWED}: {problem}")
    if not addresses:
        raise UrlError(f"{URL_FETCH_FAILED}: cannot resolve host")
    return addresses


def _remaining(deadline: float, timeout: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise UrlError(f"{URL_FETCH_FAILED}: timeout after {timeout:g}s")
    return left


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to a checked address; the ``Host`` header keeps the host name."""

    def __init__(self, target: _Target, address: str, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.address = address

    def _socket(self) -> socket.socket:
        return socket.create_connection((self.address, self.port), self.timeout)

    def connect(self) -> None:
        self.sock = self._socket()


class _PinnedHTTPS(_PinnedHTTP):
    """HTTPS to a checked address; the certificate is verified for the host name."""

    default_port = http.client.HTTPS_PORT

    def connect(self) -> None:
        context = ssl.create_default_context()
        self.sock = context.wrap_socket(self._socket(), server_hostname=self.host)


def _abort(connection: http.client.HTTPConnection) -> None:
    """End a transfer at its deadline: a blocked read returns at once."""
    sock = connection.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _connect(target: _Target, addresses: list[str], deadline: float, timeout: float) -> Any:
    """A connection to the first of the checked ``addresses`` that answers."""
    cls = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
    for address in addresses:
        connection = cls(target, address, _remaining(deadline, timeout))
        try:
            connection.connect()
            return connection
        except OSError as exc:
            connection.close()
            logger.debug("connecting to %s failed: %s", safe_url(_url(target)), type(exc).__name__)
    _remaining(deadline, timeout)
    raise UrlError(f"{URL_FETCH_FAILED}: cannot connect")


def _get(
    target: _Target, addresses: list[str], deadline: float, timeout: float, max_bytes: int
) -> tuple[int, str | None, bytes]:
    """``(http status, Location header, body)`` of one GET of ``target``."""
    connection = _connect(target, addresses, deadline, timeout)
    watchdog = threading.Timer(_remaining(deadline, timeout), _abort, (connection,))
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.request("GET", target.path, headers={"User-Agent": _USER_AGENT})
        response = connection.getresponse()
        if response.status != 200:
            return response.status, response.getheader("Location"), b""
        return 200, None, _body(response, deadline, timeout, max_bytes)
    except UrlError:
        raise
    except Exception as exc:  # reset, TLS, protocol errors, the watchdog ...
        _remaining(deadline, timeout)  # past the deadline: say so
        logger.debug("fetching %s failed: %s", safe_url(_url(target)), type(exc).__name__)
        raise UrlError(URL_FETCH_FAILED) from None
    finally:
        watchdog.cancel()
        connection.close()


def _body(
    response: http.client.HTTPResponse, deadline: float, timeout: float, max_bytes: int
) -> bytes:
    length = response.getheader("Content-Length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise UrlError(f"{IMAGE_TOO_LARGE}: {length} bytes, more than max_image_bytes")
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = response.read1(_CHUNK)  # at most one read from the socket
        _remaining(deadline, timeout)
        if not chunk:
            break
        total += len(chunk)
        if total > max_bytes:
            raise UrlError(f"{IMAGE_TOO_LARGE}: more than max_image_bytes ({max_bytes})")
        chunks.append(chunk)
    if length and length.isdigit() and total < int(length):
        raise UrlError(f"{URL_FETCH_FAILED}: incomplete body")
    return b"".join(chunks)


def _url(target: _Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host  # IPv6
    return f"{target.scheme}://{host}:{target.port}{target.path}"


def fetch(
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    allow_private: bool = False,
) -> bytes:
    """The body of ``url`` (an ``http(s)`` URL), by the rules of the module docstring.

    Raises:
        UrlError: with the row status (``url_not_allowed: ...``, ``url_fetch_failed...``,
            ``image_too_large: ...``).
    """
    deadline = time.monotonic() + timeout
    redirected = False
    for _ in range(MAX_REDIRECTS + 1):
        target = _target(url, redirected)
        addresses = _addresses(target, allow_private)
        status, location, body = _get(target, addresses, deadline, timeout, max_bytes)
        if status == 200:
            return body
        if status in _REDIRECTS and location:
            url, redirected = urllib.parse.urljoin(url, location), True
            continue
        logger.debug("fetching %s failed: HTTP %s", safe_url(url), status)
        raise UrlError(f"{URL_FETCH_FAILED}: http {status}")
    raise UrlError(f"{URL_FETCH_FAILED}: more than {MAX_REDIRECTS} redirects")
