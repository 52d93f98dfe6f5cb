"""One place that says what an IP address in a report may be: valid, one host, and routable.

Parsers and filing share it, so a zone id or a network is refused the same way in a feed row, an
ARF field and the complaint form, and "nobody can hold this address" means the same everywhere.

- ``parse_host(text) -> (ip, None) | (None, reason)``: one address, canonical text, or why not.
  ``fe80::1%eth0`` (a zone id names an interface on the reporter's own machine) and
  ``192.0.2.0/24`` (a network where one address is expected) are refused with a reason instead of
  being read as ``fe80::1`` or the network's first address.
- ``routable_reason(ip) -> str | None``: None for an address somebody on the Internet can hold;
  otherwise why not, starting with ``NOT_ROUTABLE`` ("not a routable address"). Filing keeps such
  reports with that reason; they are never queued as unassigned, nor resolved to a customer.
- ``is_internal(ip)``: addresses a Received hop can show that never name the sender: the
  non-routable ones and the CGNAT shared space (RFC 6598), which only the ISP itself can see.

The documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) count as
routable on purpose: tests, samples and the demo use them as stand-ins for real public addresses.
"""

from __future__ import annotations

import ipaddress
import re

NOT_ROUTABLE = "not a routable address"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Checked in this order; the first that holds names the reason. RFC 1918 and RFC 4193 first, then
# the special kinds ipaddress knows. 240.0.0.0/4 is "reserved", 255.255.255.255 the broadcast.
_PRIVATE_NETS = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))
_SHARED_NET = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 carrier-grade NAT space
_BROADCAST = ipaddress.ip_address("255.255.255.255")
_V4_RESERVED = ipaddress.ip_network("240.0.0.0/4")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")

_ZONE_ID = re.compile(r"%[^\s/\]]*")
# Address text is hex digits, dots and colons (IPv4, IPv6, IPv4 inside IPv6), nothing else.
_NOT_ADDRESS_TEXT = re.compile(r"[^0-9A-Fa-f:.]")


def _unwrap(addr: IPAddress) -> IPAddress:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def parse_host(text: str | None) -> tuple[str | None, str | None]:
    """(canonical ip, None) for one valid address, else (None, why it was refused).

    Accepts "[1.2.3.4]" and "IPv6:..." as mail headers write them, and a /32 or /128 ("one host
    written as a network"). IPv4-mapped IPv6 comes back as IPv4.
    """
    value = str(text or "").strip().strip("[]()<>\"'").strip()
    if value[:5].lower() == "ipv6:":
        value = value[5:]
    if not value:
        return None, "no address given"
    if len(value) > 100:
        return None, "not an IP address (too long)"
    if "%" in value:
        return None, f"{value[:60]!r} carries an IPv6 zone id (an interface of the reporter's machine), not an address"
    if "/" in value:
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError:
            return None, f"{value[:60]!r} is not an IP address"
        if net.num_addresses == 1:
            return str(_unwrap(net.network_address)), None
        return None, f"{value[:60]!r} is a network of {net.num_addresses} addresses where one address is expected"
    # A host name is asked about far more often than an address is given: a character no address
    # text has settles it without ipaddress's two failed parses.
    if _NOT_ADDRESS_TEXT.search(value):
        return None, f"{value[:60]!r} is not an IP address"
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None, f"{value[:60]!r} is not an IP address"
    return str(_unwrap(addr)), None


def canonical(text: str | None) -> str | None:
    """The canonical text of one address, or None (see parse_host for what is refused)."""
    return parse_host(text)[0]


def has_zone_id(text: str) -> bool:
    return bool(_ZONE_ID.search(text or ""))


def routable_reason(ip: str | IPAddress) -> str | None:
    """None when somebody on the Internet can hold ip; otherwise why not ("not a routable address (...)").

    Raises ValueError for something that is not an address; callers validate first.
    """
    addr = _unwrap(ipaddress.ip_address(ip) if isinstance(ip, str) else ip)
    kind = _non_routable_kind(addr)
    return f"{NOT_ROUTABLE} ({kind})" if kind else None


def _non_routable_kind(addr: IPAddress) -> str:
    if addr.is_unspecified or (addr.version == 4 and addr in _THIS_NETWORK):
        return "unspecified"
    if addr == _BROADCAST:
        return "broadcast"
    if addr.is_loopback:
        return "loopback"
    if addr.is_multicast:
        return "multicast"
    if addr.is_link_local:
        return "link-local"
    if any(addr in net for net in _PRIVATE_NETS if net.version == addr.version):
        return "private network"
    if addr.version == 4 and addr in _V4_RESERVED:
        return "reserved"
    if addr.version == 6 and addr.is_site_local:
        return "site-local"
    return ""


def is_routable(ip: str | IPAddress) -> bool:
    return routable_reason(ip) is None


def is_internal(ip: str | IPAddress) -> bool:
    """True for an address a Received hop may show that can never be the outside sender: every
    non-routable address plus the CGNAT shared space 100.64.0.0/10 (only the ISP sees those)."""
    addr = _unwrap(ipaddress.ip_address(ip) if isinstance(ip, str) else ip)
    return bool(_non_routable_kind(addr)) or (addr.version == 4 and addr in _SHARED_NET)
