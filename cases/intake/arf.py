"""ARF feedback reports (RFC 5965: multipart/report; report-type=feedback-report).

Besides the RFC, this reads what real feedback loops send (see the AOL, Yahoo and Zoho samples):
``Received-Date`` instead of ``Arrival-Date``, ``Version: 0.1``, the original as text/rfc822-headers
instead of message/rfc822, and reports without ``Source-IP`` — then the source is the hop where the
attached original entered the reporter's network.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage, Message
from functools import cache

from . import mime
from .base import ParsedEvent, ParseError
from .tabular import valid_port

FORMAT = "arf"

# RFC 5965 section 7.3 feedback types, plus RFC 6591 auth-failure and what FBLs send in practice.
FEEDBACK_CATEGORY = {
    "abuse": "spam",
    "opt-out": "spam",
    "optout": "spam",
    "unsubscribe": "spam",
    "complaint": "spam",
    "fraud": "phishing",
    "phishing": "phishing",
    "virus": "malware",
    "malware": "malware",
    "auth-failure": "other",
    "dmarc": "other",
    "not-spam": "other",
    "other": "other",
}

_FEEDBACK_TYPES = ("message/feedback-report",)
_ORIGINAL_TYPES = ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers", "text/rfc822")


def _report_type(msg: Message) -> str:
    try:
        return str(msg.get_param("report-type", "", header="content-type") or "").strip().lower()
    except Exception:  # noqa: BLE001
        return ""


def _parts(msg: Message) -> list[Message]:
    return list(mime.walk(msg))


def _find_feedback_part(msg: Message) -> Message | None:
    for part in _parts(msg):
        if mime.content_type(part) in _FEEDBACK_TYPES:
            return part
    return None


def detect(msg: EmailMessage, raw: bytes) -> bool:
    """A multipart/report of type feedback-report, or any mail carrying a message/feedback-report part."""
    if mime.is_bare(msg):
        return False
    if mime.content_type(msg) == "multipart/report" and _report_type(msg) == "feedback-report":
        return True
    return _find_feedback_part(msg) is not None


def _field(fields: list[tuple[str, str]], *names: str) -> str:
    wanted = {n.lower() for n in names}
    for name, value in fields:
        if name.lower() in wanted and value.strip():
            return value.strip()
    return ""


def _fields_all(fields: list[tuple[str, str]], name: str) -> list[str]:
    return [v.strip() for k, v in fields if k.lower() == name.lower() and v.strip()]


def _original(msg: Message) -> Message | None:
    for part in _parts(msg):
        if part is not msg and mime.content_type(part) in _ORIGINAL_TYPES:
            inner = mime.as_message(part)
            if inner is not None:
                return inner
    return None


def _human_text(msg: Message) -> str:
    for part in _parts(msg):
        if mime.content_type(part) == "text/plain" and not mime.is_attachment(part):
            return mime.part_text(part)[:20000]
    return ""


def parse(msg: EmailMessage, raw: bytes, *, received_at: datetime) -> list[ParsedEvent]:
    """One event per report: the source IP, arrival time and feedback type of the reported message."""
    now = received_at or datetime.now(UTC)
    part = _find_feedback_part(msg)
    if part is None:
        raise ParseError("multipart/report without a message/feedback-report part")
    fields = mime.fields(part)
    if not fields:
        raise ParseError("the feedback-report part has no fields (truncated or empty)")
    original = _original(msg)
    reporter = mime.address(msg, "From")

    @cache
    def entry() -> mime.Hop | None:
        # Where the original entered the reporter's network: read only when Source-IP or
        # Arrival-Date is missing (the chain takes longer to read than the rest of the report).
        hops = mime.received_hops(original, now=now) if original is not None else []
        return mime.entry_hop(hops, trusted=[reporter] if reporter else [])

    confidence = 1.0
    notes: list[str] = []

    # Source-IP is sometimes "[1.2.3.4]" or carries a comment; take the first valid address in it.
    # A network ("192.0.2.0/24") or a zone-id address is refused with its reason, never read as
    # its first address; the original's Received chain may still name the source.
    source_field = _field(fields, "Source-IP")
    refused = mime.refused_ips(source_field.split()[0]) if source_field.strip() else []
    ips = mime.find_ips(source_field) if source_field and not refused else []
    ip = ips[0] if ips else None
    if refused:
        notes.append(f"Source-IP {refused[0][0][:60]} refused: {refused[0][1]}")
    if ip is None and entry() is not None and entry().from_ip:
        ip = entry().from_ip
        confidence = 0.8
        notes.append("no Source-IP: taken from the original's Received chain")
    if ip is None:
        # The human-readable part often says "received from IP address X"; last resort.
        text_ips = mime.find_ips(_human_text(msg))
        if text_ips:
            ip = text_ips[0]
            confidence = 0.5
            notes.append("no Source-IP or Received chain: taken from the report's text")
    if ip is None:
        reason = "invalid Source-IP " + repr(source_field[:60]) if source_field else "no Source-IP"
        if refused:
            reason = f"Source-IP refused ({refused[0][1]})"
        raise ParseError(f"ARF report with {reason} and no usable Received header in the original")

    occurred_at = mime.parse_date(_field(fields, "Arrival-Date", "Received-Date"), now=now)
    if occurred_at is None:
        confidence = min(confidence, 0.8)
        candidates = [entry().at if entry() else None]
        if original is not None:
            candidates.append(mime.parse_date(mime.header(original, "Date"), now=now))
        candidates += [mime.parse_date(mime.header(msg, "Date"), now=now), now]
        occurred_at = next(c for c in candidates if c is not None)
        notes.append("no usable Arrival-Date: time taken from the original or the report")

    feedback_type = _field(fields, "Feedback-Type").lower().split(";")[0].strip()
    category = FEEDBACK_CATEGORY.get(feedback_type)
    if category is None:
        category = "spam"  # a feedback loop reports mail its users did not want
        confidence = min(confidence, 0.7)
        notes.append(f"unknown Feedback-Type {feedback_type[:40]!r}, read as spam")

    external_id = mime.message_id(msg) or _field(fields, "Original-Envelope-Id").strip("<>")
    if not external_id and original is not None:
        external_id = mime.message_id(original)

    evidence = _evidence(msg, fields, original, notes)
    # RFC 6692: the source port, which names the subscriber behind a CGNAT address.
    port = valid_port(_field(fields, "Source-Port"))
    return [
        ParsedEvent(
            ip=ip,
            port=port,
            occurred_at=occurred_at,
            category=category,
            format=FORMAT,
            reporter=reporter,
            reporter_org=_reporter_org(msg, fields, reporter),
            external_id=external_id[:255],
            evidence=evidence,
            confidence=confidence,
        )
    ]


def _reporter_org(msg: Message, fields: list[tuple[str, str]], reporter: str) -> str:
    # Reported-Domain names the reporter itself at ReturnPath-run loops (Cox, Comcast) but the
    # offending domain at others (AOL); it is only trusted when it matches the report's sender.
    sender_org = mime.org_domain(reporter) if reporter else ""
    for domain in _fields_all(fields, "Reported-Domain"):
        if sender_org and mime.org_domain(domain) == sender_org:
            return domain.lower()[:200]
    return mime.display_name(msg) or sender_org


def _evidence(msg: Message, fields: list[tuple[str, str]], original: Message | None, notes: list[str]) -> str:
    lines = [f"Subject: {mime.header(msg, 'Subject')}", ""]
    lines += [f"{k}: {v}" for k, v in fields[:60]]
    if notes:
        lines += ["", *[f"[{n}]" for n in notes]]
    if original is not None:
        lines += ["", "--- original message headers ---"]
        lines += [f"{k}: {v}" for k, v in mime.raw_items(original)[:80]]
    return mime.cap("\n".join(lines))
