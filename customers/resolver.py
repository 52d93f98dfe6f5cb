"""Who held an IP address at a given instant.

Every network that can cover an address is one of its prefixes: 33 for IPv4, 129 for
IPv6. Allocation.network stores the canonical text of each network, so resolve() asks
for exactly those strings, valid at `at`, most specific first. That is a handful of
index probes on (network, valid_from) whatever the table's size, and it gives the same
answer on SQLite and PostgreSQL because it uses nothing but equality and comparison.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime

from django.utils import timezone

from customers.models import Allocation

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def normalize_ip(ip: str | IPAddress) -> IPAddress:
    """An address object; IPv4-mapped IPv6 (::ffff:198.51.100.7) becomes IPv4. Raises ValueError."""
    addr = (
        ip if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address) else ipaddress.ip_address(str(ip).strip())
    )
    if addr.version == 6 and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def candidate_networks(addr: IPAddress) -> list[str]:
    """The canonical text of every network containing addr, most specific first."""
    bits = addr.max_prefixlen
    value = int(addr)
    cls = ipaddress.IPv4Network if addr.version == 4 else ipaddress.IPv6Network
    out = []
    for prefixlen in range(bits, -1, -1):
        mask = ((1 << bits) - 1) ^ ((1 << (bits - prefixlen)) - 1)
        out.append(str(cls((value & mask, prefixlen))))
    return out


def resolve(ip: str | IPAddress, at: datetime | None = None) -> Allocation | None:
    """The allocation (customer loaded) that held ip at instant at, or None.

    valid_from is inclusive, valid_to exclusive. The most specific network wins.
    """
    if at is None:
        at = timezone.now()
    if timezone.is_naive(at):
        raise ValueError("resolve() needs an aware datetime")
    addr = normalize_ip(ip)
    return (
        Allocation.objects.filter(network__in=candidate_networks(addr))
        .valid_at(at)
        .select_related("customer")
        .order_by("-prefixlen", "-valid_from")
        .first()
    )


def history(ip: str | IPAddress, limit: int = 50) -> list[Allocation]:
    """Every allocation that ever covered ip, newest first, most specific first."""
    addr = normalize_ip(ip)
    return list(
        Allocation.objects.filter(network__in=candidate_networks(addr))
        .select_related("customer")
        .order_by("-valid_from", "-prefixlen")[:limit]
    )
