"""SpamCop reports.

What SpamCop sends to an abuse desk:

    Subject: [SpamCop (198.51.100.7) id:7123456789]original subject
    X-SpamCop-sourceip: 198.51.100.7

    - SpamCop V5.3.0 -
    Email from 198.51.100.7 / Mon, 15 Jan 2024 14:02:03 -0000
    https://www.spamcop.net/w3m?i=z7123456789z...

    [ Offending message ]
    Return-Path: ...
    Received: ...

and, for a web site advertised in spam, "[SpamCop (http://site.example/) id:...]" with a line
"http://site.example/ is 192.0.2.5; Mon, 15 Jan 2024 14:02:03 GMT".
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage

from . import mime
from .base import ParsedEvent, ParseError

FORMAT = "spamcop"

_SUBJECT = re.compile(r"\[SpamCop \((?P<what>[^)\s]{1,300})\)\s*id:\s*(?P<id>\d{1,20})\s*\]", re.I)
_EMAIL_FROM = re.compile(r"^\s*(?:Email|Spam)\s+from\s+(?P<ip>\S+)\s*/\s*(?P<date>.+?)\s*$", re.I | re.M)
_SITE_IS = re.compile(r"^\s*(?P<url>\S+)\s+is\s+(?P<ip>[0-9A-Fa-f.:]+)\s*;\s*(?P<date>.+?)\s*$", re.I | re.M)
_OFFENDING = re.compile(r"^\s*\[\s*Offending message\s*\]\s*$", re.I | re.M)


def detect(msg: EmailMessage, raw: bytes) -> bool:
    """The "[SpamCop (...) id:n]" subject, or a SpamCop sender with a SpamCop source-ip header."""
    if mime.is_bare(msg):
        return False
    if _SUBJECT.search(mime.header(msg, "Subject")):
        return True
    sender = mime.address(msg, "From")
    return sender.endswith("spamcop.net") and bool(
        mime.header(msg, "X-SpamCop-sourceip") or _EMAIL_FROM.search(mime.body_text(msg, max_chars=20000))
    )


def parse(msg: EmailMessage, raw: bytes, *, received_at: datetime) -> list[ParsedEvent]:
    now = received_at or datetime.now(UTC)
    subject = mime.header(msg, "Subject")
    body = mime.body_text(msg)
    subject_match = _SUBJECT.search(subject)
    report_id = subject_match.group("id") if subject_match else ""
    subject_ip = mime.canonical_ip(subject_match.group("what")) if subject_match else None
    header_ip = mime.canonical_ip(mime.header(msg, "X-SpamCop-sourceip"))
    line = _EMAIL_FROM.search(body)
    line_ip = mime.canonical_ip(line.group("ip")) if line else None
    line_date = mime.parse_date(line.group("date"), now=now) if line else None

    offending = _offending_message(msg, body)
    hops = mime.received_hops(offending, now=now) if offending is not None else []
    # SpamCop's own relays never are the source; neither are the reporting user's.
    entry = mime.entry_hop(hops, trusted=["spamcop.net"])

    category = "spam"
    confidence = 1.0
    notes: list[str] = []
    ip = line_ip or subject_ip or header_ip
    if ip and len({x for x in (line_ip, subject_ip, header_ip) if x}) > 1:
        confidence = 0.7
        notes.append("the subject, header and body name different source addresses")
    site = None
    if ip is None and subject_match and not subject_ip:
        site = _SITE_IS.search(body)
        if site and mime.canonical_ip(site.group("ip")):
            ip = mime.canonical_ip(site.group("ip"))
            line_date = mime.parse_date(site.group("date"), now=now)
            confidence = 0.7  # the site is hosted here; the spam itself came from elsewhere
            notes.append(f"spamvertised web site {site.group('url')[:200]}")
    if ip is None and entry is not None and entry.from_ip:
        ip = entry.from_ip
        confidence = 0.6
        notes.append("source taken from the offending message's Received chain")
    if ip is None:
        bad = subject_match.group("what") if subject_match else (line.group("ip") if line else "")
        detail = f" ({bad[:60]!r} is not an IP address)" if bad else ""
        raise ParseError(f"SpamCop report without a valid source address{detail}")

    occurred_at = line_date
    if occurred_at is None:
        confidence = min(confidence, 0.8)
        notes.append("no usable date on the 'Email from' line")
        candidates = [entry.at if entry else None]
        if offending is not None:
            candidates.append(mime.parse_date(mime.header(offending, "Date"), now=now))
        candidates += [mime.parse_date(mime.header(msg, "Date"), now=now), now]
        occurred_at = next(c for c in candidates if c is not None)

    evidence_lines = [f"Subject: {subject}", *[f"[{n}]" for n in notes], "", body]
    return [
        ParsedEvent(
            ip=ip,
            occurred_at=occurred_at,
            category=category,
            format=FORMAT,
            reporter=mime.address(msg, "From"),
            reporter_org="SpamCop",
            external_id=report_id or mime.message_id(msg),
            evidence=mime.cap("\n".join(evidence_lines)),
            confidence=confidence,
        )
    ]


def _offending_message(msg: EmailMessage, body: str):
    """The spam SpamCop quotes: an attached message, else the text after "[ Offending message ]"."""
    attached = mime.attached_messages(msg)
    if attached:
        return attached[0]
    m = _OFFENDING.search(body)
    if not m:
        return None
    quoted = body[m.end() :].lstrip("\r\n")
    if not quoted.strip():
        return None
    return mime.as_message_text(quoted)
