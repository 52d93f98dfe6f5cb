"""Evidence fit to show a customer: third parties' addresses redacted.

One implementation for every place evidence leaves the desk: the customer's page
(cases.views_customer) and the notices' evidence excerpt. Pure text in, text out.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

REDACTED = "[redacted]"

# Candidates only: a time (14:02:33), a MAC address or a version number also matches; _normal_ip
# decides. Repeats are bounded: evidence is untrusted and may be one long run of letters (a base64
# blob), where an unbounded local part would rescan the rest of the text from every position.
_EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,10}")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9a-f]{0,4}:){2,7}(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-f]{1,4})?(?![\w:]|\.\d)", re.I)
_IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?!\.?\d)")


def _normal_ip(text: str) -> str | None:
    """An address as ipaddress writes it (IPv4-mapped IPv6 as IPv4), or None if it is not one."""
    parts = text.split(".")
    if len(parts) == 4 and all(p.isdigit() for p in parts):
        # Octets read as numbers: 198.051.100.007, which ipaddress refuses, is still an address
        # a mail header or a log may show, and still redacted.
        octets = [int(p) for p in parts]
        return ".".join(map(str, octets)) if all(o <= 255 for o in octets) else None
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


def redact(text: str, keep: Iterable[str] = (), *, limit: int | None = None) -> str:
    """Every e-mail address, and every IP address that is not one of `keep` (the case's reported
    addresses), becomes [redacted]; then the text is cut to `limit` characters (at a line end
    when one is near).

    The customer's own reported addresses stay, so they can find the machine; the reporter,
    the victims and the other hosts in the headers are not their business. Redaction runs
    before the cut, so a cut can never leave half an address readable.
    """
    if not text:
        return text or ""
    kept = {n for n in (_normal_ip(str(ip)) for ip in keep) if n}

    def ip(match: re.Match) -> str:
        normal = _normal_ip(match.group(0))
        return match.group(0) if normal is None or normal in kept else REDACTED

    text = _EMAIL.sub(REDACTED, text)
    text = _IPV6.sub(ip, text)  # before IPv4, so ::ffff:192.0.2.1 is read whole
    text = _IPV4.sub(ip, text)
    if limit is not None and len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        text = text[: cut if cut > limit // 2 else limit].rstrip() + "\n[… cut …]"
    return text
