"""DNS look-ups for enrichment: PTR names and DNSBL listings.

The only module that imports dnspython. The resolver (nameservers, port, timeout) comes
from settings, so tests point it at a server on 127.0.0.1. Answers are kept in a small
in-process cache for as long as their TTL says, so a burst of reports about one IP asks
DNS once.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
import dns.reversename
from django.conf import settings

# Bounds on the cache: no answer is kept longer than a day, nor more than this many answers.
MAX_CACHE_ENTRIES = 10_000
MAX_TTL = 86_400
# A negative answer without an SOA to say how long it holds is kept this long.
DEFAULT_NEGATIVE_TTL = 300
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


_lock = threading.Lock()
_resolvers: dict[ResolverConfig, dns.resolver.Resolver] = {}
# (config, qname, rdtype) -> (expires at, monotonic clock; answer strings, or None for "no such name")
_cache: dict[tuple[ResolverConfig, str, str], tuple[float, list[str] | None]] = {}
_down_until: dict[ResolverConfig, float] = {}


def get_resolver(config: ResolverConfig | None = None) -> dns.resolver.Resolver:
    """A resolver for the current settings (built once per distinct configuration)."""
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
            _resolvers[config] = resolver
    return resolver


def clear_cache() -> None:
    """Forget every cached answer and every "resolver is down" mark (tests, settings changes)."""
    with _lock:
        _cache.clear()
        _down_until.clear()


def cache_size() -> int:
    return len(_cache)


def _cache_get(key: tuple[ResolverConfig, str, str]) -> tuple[bool, list[str] | None]:
    with _lock:
        entry = _cache.get(key)
        if entry is None:
            return False, None
        if entry[0] <= time.monotonic():
            del _cache[key]
            return False, None
        return True, entry[1]


def _cache_put(key: tuple[ResolverConfig, str, str], ttl: float, value: list[str] | None) -> None:
    ttl = min(float(ttl), MAX_TTL)
    if ttl <= 0:  # TTL 0 means "do not keep this"
        return
    now = time.monotonic()
    with _lock:
        if key not in _cache and len(_cache) >= MAX_CACHE_ENTRIES:
            for stale in [k for k, (expires, _) in _cache.items() if expires <= now]:
                del _cache[stale]
            # Still full: drop the oldest tenth (dicts keep insertion order) rather than one
            # at a time, so a flood of distinct IPs does not rescan the cache on every insert.
            if len(_cache) >= MAX_CACHE_ENTRIES:
                for old in list(_cache)[: max(1, MAX_CACHE_ENTRIES // 10)]:
                    del _cache[old]
        _cache[key] = (now + ttl, value)


def _negative_ttl(exc: dns.resolver.NXDOMAIN) -> float:
    # RFC 2308: a negative answer holds for the SOA's minimum (bounded by the SOA's own TTL).
    try:
        for qname in exc.qnames():
            response = exc.response(qname)
            if response is not None:
                return float(response.resolve_chaining().minimum_ttl)
    except Exception:  # a response without a usable SOA: use the default
        pass
    return DEFAULT_NEGATIVE_TTL


def _query(qname: str, rdtype: str) -> list[str] | None:
    """Answer strings for qname/rdtype; [] when the name exists without that type; None for NXDOMAIN."""
    config = ResolverConfig.from_settings()
    key = (config, qname.lower(), rdtype)
    hit, value = _cache_get(key)
    if hit:
        return value
    down_until = _down_until.get(config)
    if down_until is not None and down_until > time.monotonic():
        raise DnsTimeout(f"resolver {','.join(config.nameservers) or 'system'} timed out a moment ago")
    resolver = get_resolver(config)
    try:
        answer = resolver.resolve(qname, rdtype, raise_on_no_answer=False, search=False)
    except dns.resolver.NXDOMAIN as exc:
        _cache_put(key, _negative_ttl(exc), None)
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
    _cache_put(key, answer.expiration - time.time(), values)
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
