"""ACNS copyright notices (Automated Copyright Notice System XML): IP-Echelon, Irdeto/Copyright
Compliance and most anti-piracy agents.

The notice is an <Infringement> document, pasted into the mail body (often inside a PGP clear
signature) and/or attached as .xml. The infringer is <Source>: <IP_Address>, <Port> and <TimeStamp>;
<Case><ID> is the agent's notice id. Body and attachment carry the same document: one event.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage

from cases.intake import mime, safexml, tabular
from cases.intake.base import ParsedEvent, ParseError

FORMAT = "acns"
CONFIDENCE = 0.95
_ROOT = "Infringement"


def detect(msg: EmailMessage, raw: bytes) -> bool:
    if b"<Infringement" in raw:
        return True
    # Base64 or quoted-printable bodies hide the tag from the raw bytes; the text parts do not.
    return any(f"<{_ROOT}" in text or f":{_ROOT}" in text for _name, text in safexml.part_texts(msg))


def parse(msg: EmailMessage, raw: bytes, *, received_at: datetime | None = None) -> list[ParsedEvent]:
    reporter, org = tabular.sender_of(msg)
    events: list[ParsedEvent] = []
    seen: set[tuple[str, int | None, datetime, str]] = set()
    problems: list[str] = []
    for name, text in safexml.part_texts(msg):
        for document in safexml.documents(text, _ROOT):
            try:
                event = _event(safexml.parse(document), document, received_at, reporter, org)
            except ParseError as exc:
                problems.append(f"{name or 'body'}: {exc}")
                continue
            key = (event.ip, event.port, event.occurred_at, event.external_id)
            if key not in seen:
                seen.add(key)
                events.append(event)
    if not events:
        raise ParseError("no usable ACNS notice: " + ("; ".join(problems[:3]) or "no <Infringement> document"))
    return events


def _event(root, document: str, received_at: datetime | None, reporter: str, org: str) -> ParsedEvent:
    if safexml.local(root.tag) != _ROOT:
        raise ParseError("not an ACNS <Infringement> document")
    source = safexml.child(root, "Source")
    ip = tabular.valid_ip(safexml.text_of(source, "IP_Address"))
    if ip is None:
        raise ParseError("no valid <Source><IP_Address>")
    stamp = safexml.text_of(source, "TimeStamp") or safexml.text_of(root, "Content", "Item", "TimeStamp")
    when = tabular.parse_when(stamp) if stamp else None
    if when is None:
        raise ParseError(f"unreadable <TimeStamp> {stamp[:40]!r}")
    problem = tabular.check_when(when, received_at)
    if problem:
        raise ParseError(f"<TimeStamp> {stamp[:40]!r}: {problem}")
    complainant = safexml.text_of(root, "Complainant", "Entity")
    details = [
        f"{label} {value}"
        for label, value in (
            ("port", safexml.text_of(source, "Port")),
            ("at", stamp),
            ("via", safexml.text_of(source, "Type")),
            ("work", safexml.text_of(root, "Content", "Item", "Title")),
            ("file", safexml.text_of(root, "Content", "Item", "FileName")),
        )
        if value
    ]
    summary = f"ACNS notice {safexml.text_of(root, 'Case', 'ID') or '(no id)'}: {ip}, " + ", ".join(details)
    return ParsedEvent(
        ip=ip,
        occurred_at=when,
        category="copyright",
        format=FORMAT,
        port=tabular.valid_port(safexml.text_of(source, "Port")),
        reporter=safexml.text_of(root, "Complainant", "Email")[:200] or reporter,
        reporter_org=(complainant or org)[:200],
        external_id=safexml.text_of(root, "Case", "ID")[:200],
        evidence=mime.cap(summary + "\n\n" + document, 6000),
        confidence=CONFIDENCE,
    )
