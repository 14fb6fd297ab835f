"""The address of the person or machine on the other end of a request.

Behind a reverse proxy every connection comes from the proxy, and the client's address
is in `X-Forwarded-For`. That header is whatever the client chose to send, plus one
entry per proxy it went through, so it is believed only as far as the hops are proxies
Rapport was told to trust (`RAPPORT_TRUSTED_PROXIES`): read from the right, each entry
appended by a trusted proxy is taken, and the first address that is not a trusted
proxy is the client. Everything left of it is the client's own claim and ignored, so
that forged headers can neither lock someone else out of signing in nor put another
address in the audit log. Throttling (django-ratelimit's `RATELIMIT_IP_META_KEY`) and
the audit log both use `client_address`.
"""

import functools
import ipaddress
from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks_parse(entries: Iterable[str]) -> tuple[Network, ...]:
    """Addresses and networks as written in the setting ("10.0.0.5", "10.0.0.0/8")."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"RAPPORT_TRUSTED_PROXIES: {entry!r} is not an IP address or network"
            ) from exc
    return tuple(networks)


def _parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[::1]:443" as some proxies write it
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "192.0.2.1:443"
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _trusted(address, networks: tuple[Network, ...]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_address_resolve(
    *, remote_addr: str, forwarded_for: str, trusted: tuple[Network, ...]
) -> str | None:
    """The client's address given the connection's peer and the X-Forwarded-For header."""
    peer = _parse(remote_addr or "")
    if peer is None:
        return None
    if not forwarded_for or not _trusted(peer, trusted):
        return str(peer)
    current = peer
    for hop in reversed(forwarded_for.split(",")):
        claimed = _parse(hop)
        if claimed is None:
            # A trusted proxy does not write garbage: the entry is the client's own, and
            # the last proxy that could be believed is all that is known.
            return str(current)
        current = claimed
        if not _trusted(current, trusted):
            return str(current)
    return str(current)


@functools.lru_cache(maxsize=8)
def _trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return trusted_networks_parse(entries)


def client_address(request: HttpRequest) -> str | None:
    trusted = _trusted_networks(tuple(getattr(settings, "RAPPORT_TRUSTED_PROXIES", ())))
    return client_address_resolve(
        remote_addr=request.META.get("REMOTE_ADDR", ""),
        forwarded_for=request.META.get("HTTP_X_FORWARDED_FOR", ""),
        trusted=trusted,
    )


def client_address_for_throttle(request: HttpRequest) -> str:
    """django-ratelimit's key: never empty (a Unix socket peer has no address)."""
    return client_address(request) or "0.0.0.0"  # noqa: S104 - a key, not a bind address
