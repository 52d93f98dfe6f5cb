"""DNS look-ups: PTR names and DNSBL listings for enrichment, host addresses for URL reports.

The only module that imports dnspython. The resolver (nameservers, port, timeout) comes
from settings, so tests point it at a server on 127.0.0.1. Answers are kept in dnspython's own
LRU cache for as long as their TTL says (NXDOMAIN for the SOA minimum, RFC 2308), so a burst of
reports about one IP asks DNS once. What dnspython has no notion of is kept here: the "resolver is
down" timer, and a ceiling on how long any answer is kept.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.reversename
from django.conf import settings

# Bounds on the cache: no answer is kept longer than a day, nor more than this many answers.
MAX_CACHE_ENTRIES = 10_000
MAX_TTL = 86_400
# After a timeout the resolver is taken as down for this long: without it, a dead resolver
# would cost every report (PTR + each zone) a full timeout each.
DOWN_SECONDS = 30.0


class DnsError(Exception):
    """A look-up could not be answered; the caller records it and goes on."""


class DnsTimeout(DnsError):
    """No answer within DNS_TIMEOUT (or the resolver timed out a moment ago)."""


class DnsFailure(DnsError):
    """The resolver answered with an error (SERVFAIL, REFUSED) or could not be asked."""


@dataclass(frozen=True)
class ResolverConfig:
    nameservers: tuple[str, ...]
    port: int
    timeout: float

    @classmethod
    def from_settings(cls) -> ResolverConfig:
        nameservers = getattr(settings, "DNS_NAMESERVERS", ()) or ()
        if isinstance(nameservers, str):  # "10.0.0.53,10.0.0.54" set by hand, not through env_list
            nameservers = nameservers.split(",")
        return cls(
            nameservers=tuple(ns.strip() for ns in nameservers if ns.strip()),
            port=int(getattr(settings, "DNS_PORT", 53)),
            timeout=float(getattr(settings, "DNS_TIMEOUT", 2.0)),
        )


class _CappedCache(dns.resolver.LRUCache):
    """dnspython's LRU cache, with no answer kept longer than MAX_TTL whatever its TTL says."""

    def put(self, key, value) -> None:  # type: ignore[override]
        value.expiration = min(value.expiration, time.time() + MAX_TTL)
        super().put(key, value)


_lock = threading.Lock()
_resolvers: dict[ResolverConfig, dns.resolver.Resolver] = {}
_down_until: dict[ResolverConfig, float] = {}


def get_resolver(config: ResolverConfig | None = None) -> dns.resolver.Resolver:
    """A resolver for the current settings (built once per distinct configuration), with its cache."""
    config = config or ResolverConfig.from_settings()
    with _lock:
        resolver = _resolvers.get(config)
        if resolver is None:
            if config.nameservers:
                resolver = dns.resolver.Resolver(configure=False)
                resolver.nameservers = list(config.nameservers)
            else:
                resolver = dns.resolver.Resolver(configure=True)
            resolver.port = config.port
            resolver.timeout = config.timeout
            resolver.lifetime = config.timeout
            resolver.cache = _CappedCache(max_size=MAX_CACHE_ENTRIES)
            _resolvers[config] = resolver
    return resolver


def clear_cache() -> None:
    """Forget every cached answer and every "resolver is down" mark (tests, settings changes)."""
    with _lock:
        for resolver in _resolvers.values():
            if resolver.cache is not None:
                resolver.cache.flush()
        _resolvers.clear()
        _down_until.clear()


def cache_size() -> int:
    with _lock:
        return sum(len(r.cache.data) for r in _resolvers.values() if r.cache is not None)


def _cached(resolver: dns.resolver.Resolver, qname: str, rdtype: str) -> bool:
    name = dns.name.from_text(qname)
    cache = resolver.cache
    return cache is not None and (
        cache.get((name, dns.rdatatype.from_text(rdtype), dns.rdataclass.IN)) is not None
        or cache.get((name, dns.rdatatype.ANY, dns.rdataclass.IN)) is not None
    )


def _query(qname: str, rdtype: str) -> list[str] | None:
    """Answer strings for qname/rdtype; [] when the name exists without that type; None for NXDOMAIN."""
    config = ResolverConfig.from_settings()
    resolver = get_resolver(config)
    down_until = _down_until.get(config)
    if down_until is not None and down_until > time.monotonic() and not _cached(resolver, qname, rdtype):
        # What the cache still holds is answered (from the cache, inside resolve); the rest fails fast.
        raise DnsTimeout(f"resolver {','.join(config.nameservers) or 'system'} timed out a moment ago")
    try:
        answer = resolver.resolve(qname, rdtype, raise_on_no_answer=False, search=False)
    except dns.resolver.NXDOMAIN:
        return None
    except dns.exception.Timeout as exc:
        with _lock:
            _down_until[config] = time.monotonic() + DOWN_SECONDS
        raise DnsTimeout(f"{rdtype} {qname}: no answer within {config.timeout:g} s") from exc
    except dns.resolver.NoNameservers as exc:
        raise DnsFailure(f"{rdtype} {qname}: the resolver failed (SERVFAIL/REFUSED)") from exc
    except (dns.exception.DNSException, OSError) as exc:
        raise DnsFailure(f"{rdtype} {qname}: {exc.__class__.__name__}") from exc
    values: list[str] = []
    if answer.rrset is not None:
        for rdata in answer.rrset:
            if _rdatatype_is(rdata, "TXT"):
                values.append(b"".join(rdata.strings).decode("utf-8", "replace"))
            elif _rdatatype_is(rdata, "PTR"):
                values.append(rdata.target.to_text(omit_final_dot=True))
            else:
                values.append(rdata.to_text())
    return values


def _rdatatype_is(rdata, name: str) -> bool:
    return rdata.rdtype == dns.rdatatype.from_text(name)


def _parse_ip(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    address = ipaddress.ip_address(str(ip).strip())
    # An IPv4-mapped IPv6 address is listed (and named) as the IPv4 address it carries.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def reversed_labels(ip: str) -> str:
    """The DNSBL form of an address: IPv4 octets reversed, IPv6 as 32 reversed nibbles.

    Raises ValueError for something that is not an IP address.
    """
    address = _parse_ip(ip)
    if isinstance(address, ipaddress.IPv4Address):
        return ".".join(reversed(str(address).split(".")))
    return ".".join(reversed(address.exploded.replace(":", "")))


def reverse_name(ip: str) -> str | None:
    """The PTR name of ip (without the final dot), or None when it has none.

    Raises ValueError for a bad address, DnsError when DNS does not answer.
    """
    address = _parse_ip(ip)
    qname = dns.reversename.from_address(str(address)).to_text()
    names = _query(qname, "PTR")
    if not names:
        return None
    return sorted(names)[0]


def _is_refusal(code: str) -> bool:
    # Spamhaus answers 127.255.255.x ("query refused", e.g. through a public resolver) and a
    # list may answer outside 127/8 when misconfigured: neither means the IP is listed.
    try:
        address = ipaddress.ip_address(code)
    except ValueError:
        return True
    return address not in ipaddress.ip_network("127.0.0.0/8") or address in ipaddress.ip_network("127.255.255.0/24")


class DnsblRefused(DnsFailure):
    """The list answered with a code that means it refused the query, not a listing."""


def dnsbl_listings(ip: str, zones: list[str] | tuple[str, ...]) -> dict[str, list[str]]:
    """For each zone: [] when ip is not listed, else its return codes followed by the TXT reasons.

    Raises ValueError for a bad address, DnsError when a zone cannot be asked or refuses.
    """
    labels = reversed_labels(ip)
    result: dict[str, list[str]] = {}
    for zone in zones:
        zone = zone.strip().strip(".")
        if not zone:
            continue
        qname = f"{labels}.{zone}."
        codes = _query(qname, "A")
        if not codes:
            result[zone] = []
            continue
        refused = [code for code in codes if _is_refusal(code)]
        if refused:
            raise DnsblRefused(f"{zone} refused the query ({', '.join(sorted(refused))})")
        try:
            reasons = _query(qname, "TXT") or []
        except DnsError:
            reasons = []  # the codes alone say it is listed; the reason text is a nicety
        result[zone] = sorted(codes) + [reason for reason in reasons if reason]
    return result


def host_addresses(name: str) -> list[str] | None:
    """The IPv4 and IPv6 addresses a host name resolves to now (A then AAAA, CNAMEs followed), or
    None when the name does not exist (NXDOMAIN). [] when it exists without addresses.

    Raises DnsError when DNS does not answer.
    """
    qname = name.strip().rstrip(".").lower() + "."
    found: list[str] = []
    exists = False
    for rdtype in ("A", "AAAA"):
        values = _query(qname, rdtype)
        if values is None:
            continue
        exists = True
        for value in values:
            try:
                found.append(str(_parse_ip(value)))
            except ValueError:
                continue
    return found if exists else None
