"""URL safety for every URL a user gives us (image URLs, callback URLs): no SSRF into our own network.

https only, no credentials in the URL, and the host must resolve only to public addresses. Every resolved
address is checked, so a name that resolves to one public and one private address is refused.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from functions.common.errors import InvalidRequestError

Resolver = Callable[[str], list[str]]
"""hostname -> every address it resolves to."""


def resolve_host(hostname: str) -> list[str]:
    infos = socket.getaddrinfo(hostname, 443, proto=socket.IPPROTO_TCP)
    return sorted({str(info[4][0]) for info in infos})


NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")


def is_public_address(address: str) -> bool:
    """Globally routable and unicast, including the IPv4 address an IPv6 one may carry inside it."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            return is_public_address(str(ip.sixtofour))
        elif ip in NAT64_PREFIX:
            return is_public_address(str(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)))
    return ip.is_global and not ip.is_multicast


def check_public_https_url(url: str, *, field: str, resolve: Resolver = resolve_host) -> str:
    """The URL unchanged if it is safe to hand to a provider or to call back; InvalidRequestError otherwise."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise InvalidRequestError(f"{field}: is not a valid URL ({exc})", param=field) from exc
    if parts.scheme != "https":
        raise InvalidRequestError(
            f"{field}: must be an https:// URL (got scheme {parts.scheme or 'none'!r})", param=field
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidRequestError(f"{field}: must not carry credentials (user:password@)", param=field)
    hostname = parts.hostname
    if not hostname:
        raise InvalidRequestError(f"{field}: has no host name", param=field)
    try:
        addresses = [hostname] if _is_ip_literal(hostname) else resolve(hostname)
    except (OSError, UnicodeError) as exc:
        raise InvalidRequestError(f"{field}: host {hostname!r} does not resolve", param=field) from exc
    if not addresses:
        raise InvalidRequestError(f"{field}: host {hostname!r} does not resolve", param=field)
    private = [a for a in addresses if not is_public_address(a)]
    if private:
        raise InvalidRequestError(
            f"{field}: host {hostname!r} resolves to a non-public address ({', '.join(private)}); only public "
            "internet addresses are allowed",
            param=field,
        )
    return url


def _is_ip_literal(hostname: str) -> bool:
    try:
        ipaddress.ip_address(hostname.split("%", 1)[0])
    except ValueError:
        return False
    return True
