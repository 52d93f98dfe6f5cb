"""Whois and RDAP text pasted into a report: it describes who holds a network, never who abused it.

Reporters paste the look-up they did ("inetnum: 198.51.100.0 - 198.51.100.255", ARIN's "NetRange:"
and "CIDR:", RADb's "route:", RDAP's JSON "startAddress"/"endAddress") to show whom they wrote to.
Every address on such a line, and both ends of an address range anywhere ("192.0.2.0 - 192.0.2.255"),
is left out of the offender candidates.
"""

from __future__ import annotations

import re

from . import mime

# RIPE/APNIC/AFRINIC/LACNIC object keys, ARIN's, and RDAP's JSON members that carry addresses.
_WHOIS_KEYS = (
    r"inet6?num|netrange|net-range|cidr|route6?|nethandle|netname|parent|originas|origin|descr|"
    r"mnt-[a-z-]+|admin-c|tech-c|abuse-c|status|country|orgname|org-name|organisation|org|"
    r"startaddress|endaddress|start[ _-]?address|end[ _-]?address|ip[ _-]?range|handle|"
    r"netblock|net[ _-]?block|network|rdap|whois"
)
_WHOIS_LINE = re.compile(rf"""^[\s>*"'-]*(?:{_WHOIS_KEYS})["']?\s*[:=]""", re.I)
# "198.51.100.0 - 198.51.100.255", "2001:db8:: - 2001:db8::ffff", "from 192.0.2.0 to 192.0.2.255".
_RANGE = re.compile(
    r"(?P<a>[0-9A-Fa-f][0-9A-Fa-f:.]{2,44})\s*(?:-|–|—|\bto\b|\.\.)\s*(?P<b>[0-9A-Fa-f][0-9A-Fa-f:.]{2,44})"
)
_BLOCK_START = re.compile(r"^\s*(?:%|#)\s*(?:whois|rdap|information related|this is the ripe|arin whois)", re.I)


def is_whois_line(line: str) -> bool:
    """True for a line of a pasted whois or RDAP record (a key that describes a network)."""
    return bool(_WHOIS_LINE.match(line)) or bool(_BLOCK_START.match(line))


def range_ends(text: str) -> set[str]:
    """Both ends of every address range written in text."""
    out: set[str] = set()
    for m in _RANGE.finditer(text):
        a, b = mime.canonical_ip(m.group("a").rstrip(".:")), mime.canonical_ip(m.group("b").rstrip(".:"))
        if a and b and (":" in a) == (":" in b):
            out.update((a, b))
    return out


def network_ips(text: str) -> set[str]:
    """Every address that pasted whois/RDAP text names: on its key lines, and range ends anywhere."""
    out = range_ends(text)
    for line in text.splitlines():
        if is_whois_line(line):
            out.update(mime.find_ips(line))
            out.update(ip.split("/")[0] for ip, _ in mime.refused_ips(line))
    return out
