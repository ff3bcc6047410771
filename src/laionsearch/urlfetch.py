"""Fetching an image by URL with bounded size and time, and, for a server, from public addresses only.

A web server that fetches URLs its clients name can be made to probe its own
loopback, the local network or a cloud metadata address. ``fetch`` resolves
the host itself, refuses every address that is not public (loopback, private,
link-local, multicast, reserved, unspecified; IPv4 or IPv6, IPv4-mapped and
NAT64-style spellings included), then connects to the address it checked (so a
second DNS answer cannot differ), and checks each redirect the same way. Error
messages say only "refused" for addresses it will not contact, so they reveal
nothing about what is there.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

from .errors import EncoderError

MAX_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 3
DEADLINE_SECONDS = 15.0
_READ_TIMEOUT = 2.0  # a trickling server is cut off at most this long after the deadline

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchRefused(EncoderError):
    """An image URL that laionsearch will not fetch, or that did not give an image in time."""


def is_public(address: Address) -> bool:
    """Whether ``address`` is a public unicast address (what a server may fetch from)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None:
            return is_public(embedded)
        if address in ipaddress.ip_network("64:ff9b::/96"):  # NAT64: the IPv4 address is the last 32 bits
            return is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return address.is_global and not address.is_multicast


def fetch(
    url: str,
    *,
    allow_private: bool = False,
    max_bytes: int = MAX_BYTES,
    deadline: float = DEADLINE_SECONDS,
    allowed: Callable[[Address], bool] | None = None,
) -> bytes:
    """The body of ``url`` (http or https): at most ``max_bytes``, within ``deadline`` seconds in all.

    Only public addresses are contacted unless ``allow_private``; ``allowed``
    replaces that rule (tests). Follows up to ``MAX_REDIRECTS`` redirects.
    """
    import httpx

    if allowed is not None:
        check = allowed
    elif allow_private:
        check = _anything
    else:
        check = is_public
    ends = time.monotonic() + deadline
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchRefused("image_url must be an http(s) URL with a host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise FetchRefused("image_url has a bad port") from None
        address = _resolve(parts.hostname, port, check)
        host = f"[{address}]" if address.version == 6 else str(address)
        direct = parts._replace(netloc=f"{host}:{port}").geturl()
        headers = {"Host": parts.netloc.rpartition("@")[2], "Accept": "image/*"}
        extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
        remaining = ends - time.monotonic()
        if remaining <= 0:
            raise FetchRefused("image_url took too long")
        timeout = httpx.Timeout(min(remaining, _READ_TIMEOUT), connect=min(remaining, 5.0))
        try:
            with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
                with client.stream("GET", direct, headers=headers, extensions=extensions) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise FetchRefused(f"image_url answered HTTP {response.status_code}")
                    return _read(response, max_bytes, ends)
        except httpx.HTTPError:
            raise FetchRefused("image_url could not be fetched (no answer in time, or the connection failed)") from None
    raise FetchRefused(f"image_url redirected more than {MAX_REDIRECTS} times")


def _anything(address: Address) -> bool:
    return True


def _resolve(host: str, port: int, check: Callable[[Address], bool]) -> Address:
    """The address to connect to; refused unless every address the name resolves to passes ``check``."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError):
        raise FetchRefused("image_url: the host name does not resolve") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses or not all(check(a) for a in addresses):
        raise FetchRefused("image_url refused: it does not point to a public address")
    return addresses[0]


def _read(response, max_bytes: int, ends: float) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise FetchRefused(f"image is larger than the {max_bytes // (1024 * 1024)} MB limit")
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise FetchRefused(f"image is larger than the {max_bytes // (1024 * 1024)} MB limit")
        if time.monotonic() > ends:
            raise FetchRefused("image_url took too long")
    return bytes(body)
