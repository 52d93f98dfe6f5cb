"""URL-only reports (phishing pages, malware downloads, copyright infringement): the report names a
URL and no address. The host name is resolved at intake, through the configured resolver
(abusedesk.lib.dns), to the addresses that served it then; each becomes an event that keeps the URL.

This is the last resort of the dispatcher: it runs only when no other rule found an address.
Which URLs count: those on a labelled line ("URL:", "Phishing URL:", "Location:", X-ARF's
"Source:"), else every URL in the text; never one on the reporter's or the recipient's own domain
(their ticket links, logos and unsubscribe pages). Defanged forms ("hxxp://", "evil[.]example")
are read too.

When no host name gives an address (NXDOMAIN, no A/AAAA record, or a resolver that does not
answer), the report is still an event: one per host, with ip "" and the reason in `unresolved`.
Filing keeps it, with its URL, in the unassigned queue, where re-resolve asks DNS again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from urllib.parse import urlsplit

from . import freetext, mime
from .base import ParsedEvent, ParseError

FORMAT = "url"
MAX_HOSTS = 5
CONFIDENCE = 0.7

_URL = re.compile(r"\b(?:https?|hxxps?|ftp|fxp)://[^\s<>\"'\])]+", re.I)
_LABELLED = re.compile(
    r"^[\s>*\-•]*(?:(?:phishing|malicious|malware|infringing|reported|offending|fraudulent|source)[ _-]?)?"
    r"(?:url|uri|link|location|source)\s*[:=]",
    re.I,
)
_URL_CATEGORIES = ("phishing", "malware", "copyright")

Resolver = Callable[[str], "list[str] | None"]


def _refang(url: str) -> str:
    url = re.sub(r"^hxxp", "http", url, flags=re.I)
    url = re.sub(r"^fxp", "ftp", url, flags=re.I)
    return url.replace("[.]", ".").replace("(.)", ".").replace("[:]", ":").rstrip(".,;")


def find_urls(text: str, *, exclude_orgs: set[str]) -> list[tuple[str, str]]:
    """(url, host) pairs, labelled lines first (and only, when there are any)."""
    labelled: list[str] = []
    anywhere: list[str] = []
    for line in text[: 2 * 1024 * 1024].splitlines():
        found = [_refang(m.group(0)) for m in _URL.finditer(line.replace("[.]", "."))]
        (labelled if _LABELLED.match(line) else anywhere).extend(found)
    out: list[tuple[str, str]] = []
    for url in labelled or anywhere:
        try:
            host = (urlsplit(url).hostname or "").lower().rstrip(".")
        except ValueError:
            continue
        if not host or mime.org_domain(host) in exclude_orgs:
            continue
        if all(url != u for u, _ in out):
            out.append((url, host))
    return out


def _default_resolver(host: str) -> list[str] | None:
    from abusedesk.lib import dns as adns

    return adns.host_addresses(host)


def parse(
    msg: EmailMessage, raw: bytes, *, received_at: datetime | None = None, resolve_host: Resolver | None = None
) -> list[ParsedEvent]:
    from abusedesk.lib.dns import DnsError

    now = received_at or datetime.now(UTC)
    subject = mime.header(msg, "Subject")
    text = mime.body_text(msg)
    reporter = mime.address(msg, "From")
    exclude = {mime.org_domain(a) for a in (reporter, mime.address(msg, "To")) if a}
    urls = find_urls(f"{subject}\n{text}", exclude_orgs=exclude)
    if not urls:
        raise ParseError("no IP address and no URL in the report")
    resolve = resolve_host or _default_resolver
    words = freetext.text_category(subject, text)
    category = words if words in _URL_CATEGORIES else "phishing" if words is None else words
    occurred_at = freetext._fallback_time(msg, [], text, now)[0]
    events: list[ParsedEvent] = []
    hosts_done: dict[str, list[str] | None] = {}
    why_not: dict[str, str] = {}  # host -> why it gave no address
    unresolved: dict[str, str] = {}  # host -> the first URL naming it

    def event(url: str, ip: str, note: str, why: str = "") -> ParsedEvent:
        return ParsedEvent(
            ip=ip,
            occurred_at=occurred_at,
            category=category,
            format=FORMAT,
            reporter=reporter,
            reporter_org=mime.display_name(msg) or (mime.org_domain(reporter) if reporter else ""),
            external_id=mime.message_id(msg),
            evidence=mime.cap(f"[URL-only report: {url}; {note}]\n\nSubject: {subject}\n\n{text}"),
            confidence=CONFIDENCE,
            url=url[:2048],
            unresolved=why,
        )

    for url, host in urls:
        if host not in hosts_done:
            if len(hosts_done) >= MAX_HOSTS:
                break
            literal = mime.canonical_ip(host)
            try:
                hosts_done[host] = [literal] if literal else resolve(host)
            except DnsError as exc:
                hosts_done[host] = None
                why_not[host] = f"{host} could not be resolved ({exc})"
            else:
                if hosts_done[host] is None:
                    why_not[host] = f"the host name {host} does not exist (NXDOMAIN)"
                elif not hosts_done[host]:
                    why_not[host] = f"the host name {host} has no A or AAAA record"
        if not hosts_done.get(host):
            unresolved.setdefault(host, url)
            continue
        note = f"{host} resolved at intake ({now.isoformat()}) to {', '.join(hosts_done[host] or [])}"
        for ip in hosts_done[host] or []:
            if not any(e.ip == ip and e.url == url for e in events):
                events.append(event(url, ip, note))
    if not events:
        # A name that gives no address is still a report about that URL: it is kept without an
        # address, with the reason, for a person to see and re-resolve (one per host).
        for host, url in unresolved.items():
            events.append(event(url, "", f"{why_not[host]} at intake ({now.isoformat()})", why=why_not[host][:200]))
    if not events:
        raise ParseError("URL-only report: no usable URL")
    return events
