"""Google Safe Browsing notifications to network owners: an XML list in the mail body.

    <notification_message asn="64512" date="2015-01-01">
     <list type="0"> <url_info url="http://example.com/" ip="10.0.2.23" /> </list>
     <list type="1"> <url_info url="http://10.0.2.26:2222/path" /> </list>
    </notification_message>

List type 0 is malware, 1 phishing. The address is the url_info's ip attribute, or the URL's host
when that is an address. The incident time is the notification's date (a day, read as its start in
UTC), not the mail's Date, which comes weeks later. One event per address and list.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

from cases.intake import mime, safexml, tabular
from cases.intake.base import ParsedEvent, ParseError

FORMAT = "safebrowsing"
_ROOT = "notification_message"
LIST_CATEGORIES = {"0": "malware", "1": "phishing"}
# The date names only the day, so the time of day is a guess.
CONFIDENCE = 0.85
MAX_EVENTS = 5000


def detect(msg: EmailMessage, raw: bytes) -> bool:
    if b"<notification_message" in raw:
        return True
    return any(f"<{_ROOT}" in text for _name, text in safexml.part_texts(msg))


def parse(msg: EmailMessage, raw: bytes, *, received_at: datetime | None = None) -> list[ParsedEvent]:
    reporter, org = tabular.sender_of(msg)
    problems: list[str] = []
    found: dict[tuple[str, str], list] = {}  # (ip, category) -> [port, when, urls]
    for name, text in safexml.part_texts(msg):
        for document in safexml.documents(text, _ROOT):
            try:
                root = safexml.parse(document)
                when = _day(root.get("date", ""), msg, received_at)
            except ParseError as exc:
                problems.append(f"{name or 'body'}: {exc}")
                continue
            for listing in root:
                if safexml.local(listing.tag) != "list":
                    continue
                category = LIST_CATEGORIES.get((listing.get("type") or "").strip(), "other")
                for info in listing:
                    if safexml.local(info.tag) != "url_info" or len(found) >= MAX_EVENTS:
                        continue
                    url = (info.get("url") or "").strip()
                    url_ip, port = _url_host(url)
                    ip = tabular.valid_ip(info.get("ip") or "") or url_ip
                    if ip is None:
                        continue
                    entry = found.setdefault((ip, category), [None, when, []])
                    if port is not None and (ip == url_ip or not url_ip):
                        entry[0] = entry[0] or port
                    if len(entry[2]) < 50:
                        entry[2].append(url[:500])
    if not found:
        raise ParseError(
            "no usable Safe Browsing notification: " + ("; ".join(problems[:3]) or "no url_info names an IP address")
        )
    events = []
    for (ip, category), (port, when, urls) in found.items():
        events.append(
            ParsedEvent(
                ip=ip,
                occurred_at=when,
                category=category,
                format=FORMAT,
                port=port,
                reporter=reporter,
                reporter_org=org,
                external_id=mime.message_id(msg),
                evidence=mime.cap(f"Safe Browsing list {category} for {ip}:\n" + "\n".join(urls), 6000),
                confidence=CONFIDENCE if category != "other" else 0.6,
            )
        )
    return events


def _day(text: str, msg: EmailMessage, received_at: datetime | None) -> datetime:
    try:
        when = datetime.strptime(text.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        when = mime.parse_date(mime.header(msg, "Date"), now=received_at)
        if when is None:
            raise ParseError(f"unreadable notification date {text[:40]!r} and no mail Date") from None
    problem = tabular.check_when(when, received_at)
    if problem:
        raise ParseError(f"notification date {text[:40]!r}: {problem}")
    return when


def _url_host(url: str) -> tuple[str | None, int | None]:
    """(address, port) when the URL's host is an IP address; (None, None) for a name.

    Google writes IPv6 hosts without brackets ("http://fdf1:...:0:2:2222/"), so a ninth group is the port.
    """
    _scheme, sep, rest = url.partition("://")
    if not sep:
        return None, None
    host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rpartition("@")[2]
    if host.startswith("["):
        inside, _, after = host[1:].partition("]")
        return tabular.valid_ip(inside), tabular.valid_port(after[1:]) if after.startswith(":") else None
    if host.count(":") <= 1:
        name, _, port = host.partition(":")
        ip = tabular.valid_ip(name)
        return ip, (tabular.valid_port(port) if ip and port else None)
    ip = tabular.valid_ip(host)
    if ip:
        return ip, None
    name, _, port = host.rpartition(":")
    ip = tabular.valid_ip(name)
    return ip, (tabular.valid_port(port) if ip else None)
