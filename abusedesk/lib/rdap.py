"""RDAP client: who handles abuse for an address that is not ours (RFC 9082/9083).

`lookup_ip(ip)` asks `<RDAP_BASE_URL>ip/<addr>` (rdap.org in production redirects to the
registry that holds the address; tests point the setting at a server on 127.0.0.1) and returns
the network range the answer covers and the abuse contact's e-mail addresses. No database
here: the range cache lives with its reader (cases.services.triage.find_abuse_contact).

Every failure is an RdapError with a message fit to show a person: a timeout, a refused
connection, an HTTP error, an answer that is not RDAP JSON.
"""

from __future__ import annotations

import ipaddress
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

# An RDAP answer for one network is a few kilobytes; a megabyte is a server gone wrong.
MAX_BYTES = 1024 * 1024
# Entities nest (network -> registrant -> abuse role); real answers go two or three deep.
MAX_DEPTH = 6


class RdapError(Exception):
    """The look-up failed; str() says why, for the person who asked."""


class RdapNotFound(RdapError):
    """The server has no network for that address (404)."""


class RdapUnavailable(RdapError):
    """The server did not answer in time, could not be reached, or failed (5xx): asking about
    another address now would most likely fail the same way."""


@dataclass
class RdapAnswer:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None  # for display: the first CIDR, when one fits
    first: ipaddress.IPv4Address | ipaddress.IPv6Address
    last: ipaddress.IPv4Address | ipaddress.IPv6Address
    cidr: str = ""
    handle: str = ""
    name: str = ""
    abuse_emails: list[str] = field(default_factory=list)

    @property
    def abuse_email(self) -> str:
        return self.abuse_emails[0] if self.abuse_emails else ""


def _vcard_emails(vcard: Any) -> list[str]:
    """E-mail addresses in a jCard: ["vcard", [["email", {}, "text", "abuse@example.net"], ...]]."""
    if not (isinstance(vcard, list) and len(vcard) == 2 and isinstance(vcard[1], list)):
        return []
    out = []
    for prop in vcard[1]:
        if isinstance(prop, list) and len(prop) >= 4 and str(prop[0]).lower() == "email":
            value = prop[3]
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, str) and "@" in v:
                    out.append(v.strip())
    return out


def abuse_emails(data: dict, depth: int = 0) -> list[str]:
    """The e-mail addresses of entities with the role "abuse", at any depth, nearest first."""
    found: list[str] = []
    nested: list[dict] = []
    for entity in data.get("entities") or []:
        if not isinstance(entity, dict):
            continue
        roles = {str(r).lower() for r in entity.get("roles") or []}
        if "abuse" in roles:
            found.extend(_vcard_emails(entity.get("vcardArray")))
        nested.append(entity)
    if depth < MAX_DEPTH:
        for entity in nested:
            found.extend(abuse_emails(entity, depth + 1))
    seen: set[str] = set()
    return [e for e in found if not (e.lower() in seen or seen.add(e.lower()))]


def network_range(data: dict, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> RdapAnswer:
    """The range an answer covers: startAddress/endAddress, else the cidr0_cidrs extension. An
    answer that does not hold the address asked about is refused (a cache must never learn it)."""
    first = last = None
    cidrs = []
    for c in data.get("cidr0_cidrs") or []:
        prefix = c.get("v4prefix") or c.get("v6prefix") if isinstance(c, dict) else None
        if prefix is not None and c.get("length") is not None:
            try:
                cidrs.append(ipaddress.ip_network(f"{prefix}/{int(c['length'])}", strict=False))
            except ValueError:
                continue
    try:
        if data.get("startAddress") and data.get("endAddress"):
            first = ipaddress.ip_address(str(data["startAddress"]).strip())
            last = ipaddress.ip_address(str(data["endAddress"]).strip())
    except ValueError:
        first = last = None
    holding = next((n for n in cidrs if ip in n), None)
    if first is None and holding is not None:
        first, last = holding.network_address, holding.broadcast_address
    if first is None or last is None or first.version != ip.version or not first <= ip <= last:
        raise RdapError(f"The RDAP answer does not describe a network holding {ip}.")
    return RdapAnswer(
        network=holding,
        first=first,
        last=last,
        cidr=", ".join(str(n) for n in cidrs)[:200] or f"{first} - {last}",
        handle=str(data.get("handle") or "")[:200],
        name=str(data.get("name") or "")[:200],
        abuse_emails=abuse_emails(data),
    )


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """rdap.org redirects to the registry's server; a redirect anywhere but http(s) is refused."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if not newurl.lower().startswith(("http://", "https://")):
            raise urllib.error.HTTPError(newurl, code, "redirect to a non-HTTP URL refused", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener = urllib.request.build_opener(_HttpOnlyRedirects)


def lookup_ip(ip: str, *, base_url: str | None = None, timeout: float | None = None) -> RdapAnswer:
    """Ask the RDAP server about one address. Raises RdapNotFound (404) or RdapError."""
    addr = ipaddress.ip_address(ip)
    base = base_url if base_url is not None else settings.RDAP_BASE_URL
    if not base.startswith(("http://", "https://")):
        raise RdapError("RDAP_BASE_URL must be an http(s) URL.")
    url = f"{base.rstrip('/')}/ip/{addr}"
    request = urllib.request.Request(url, headers={"Accept": "application/rdap+json, application/json"})
    try:
        # urllib follows the redirect rdap.org answers with (to the registry's own server).
        with _opener.open(request, timeout=timeout or settings.RDAP_TIMEOUT) as response:
            body = response.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise RdapNotFound(f"The RDAP server knows no network for {addr}.") from None
        error = RdapUnavailable if exc.code >= 500 or exc.code == 429 else RdapError
        raise error(f"The RDAP server answered HTTP {exc.code} for {addr}.") from None
    except (urllib.error.URLError, OSError) as exc:
        # A timeout comes bare (reading) or wrapped in URLError (connecting).
        reason = getattr(exc, "reason", exc)
        if isinstance(exc, TimeoutError) or isinstance(reason, TimeoutError):
            raise RdapUnavailable(
                f"The RDAP server did not answer within {timeout or settings.RDAP_TIMEOUT:g} s."
            ) from None
        raise RdapUnavailable(f"The RDAP server could not be reached: {reason}") from None
    if len(body) > MAX_BYTES:
        raise RdapError("The RDAP answer is too large.")
    try:
        data = json.loads(body)
    except ValueError:
        raise RdapError("The RDAP server's answer is not JSON.") from None
    if not isinstance(data, dict):
        raise RdapError("The RDAP server's answer is not an RDAP object.")
    return network_range(data, addr)
