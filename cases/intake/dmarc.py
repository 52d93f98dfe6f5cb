"""DMARC aggregate reports (RFC 7489 appendix C): XML, usually zipped or gzipped, sent daily by
mailbox providers to a domain's rua= address.

They are not complaints: they count the mail a provider saw that claimed somebody's domain, by
source address. The rows whose mail failed DMARC (neither DKIM nor SPF aligned and passing) are
kept as low-confidence spam events, one per source address, marked ``needs_confirmation`` so
that they never start a notice alone. A report whose every row passed gives no events and the
error says so (the message is classified, not lost).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage
from xml.etree import ElementTree

from . import mime, tabular
from .base import ParsedEvent, ParseError
from .safexml import _DECLARATION

FORMAT = "dmarc"
# A DMARC aggregate is classified even when it has nothing to file: no free-text guess after it.
CLASSIFIES = True
CONFIDENCE = 0.3
MAX_RECORDS = 100_000
# A big provider's daily report for a busy domain runs to megabytes; the archive limits bound it.
MAX_XML_BYTES = 64 * 1024 * 1024

_SNIFF = re.compile(rb"<feedback[\s>]", re.I)
_XML_NAMES = (".xml", ".xml.gz", ".xml.zip", ".zip", ".gz")


def _xml_documents(msg: EmailMessage, *, head_only: bool = False) -> list[tuple[str, bytes]]:
    """(name, bytes) of every XML part or archive member that looks like a DMARC <feedback>."""
    found: list[tuple[str, bytes]] = []
    for filename, ctype, data, _part in tabular.iter_leaf_parts(msg):
        name = filename.lower()
        if not (
            name.endswith(_XML_NAMES)
            or ctype in ("application/zip", "application/gzip", "application/x-gzip", "text/xml", "application/xml")
            or ctype.endswith("+xml")
        ):
            continue
        if tabular.is_archive(filename, data):
            try:
                # A detector looks at each member's head only (a big feed's 190 MB CSV is not DMARC).
                members = tabular.extract(filename, data, head=65536 if head_only else None)
            except ParseError:
                if head_only:
                    continue
                raise
        else:
            members = [(filename, data)]
        for member, content in members:
            if _SNIFF.search(content[:4096]) and b"policy_published" in content[:65536]:
                found.append((member, content))
    return found


def detect(msg: EmailMessage, raw: bytes) -> bool:
    if mime.is_bare(msg):
        return bool(_SNIFF.search(raw[:4096])) and b"policy_published" in raw[:65536]
    return bool(_xml_documents(msg, head_only=True))


def _text(node: ElementTree.Element | None, path: str) -> str:
    if node is None:
        return ""
    found = node.find(path)
    return (found.text or "").strip() if found is not None and found.text else ""


def _epoch(text: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(text), UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _root(name: str, content: bytes) -> ElementTree.Element:
    if len(content) > MAX_XML_BYTES:
        raise ParseError(f"{name}: DMARC report over {MAX_XML_BYTES // (1024 * 1024)} MB refused")
    head = content[:4096].decode("utf-8", "replace")
    if _DECLARATION.search(head) or b"<!ENTITY" in content or b"<!DOCTYPE" in content:
        raise ParseError(f"{name}: XML with a DOCTYPE or ENTITY declaration refused (entity expansion guard)")
    try:
        root = ElementTree.fromstring(content)
    except (ElementTree.ParseError, ValueError) as exc:
        raise ParseError(f"{name}: unreadable DMARC XML: {exc}") from None
    if root.tag.rsplit("}", 1)[-1] != "feedback":
        raise ParseError(f"{name}: not a DMARC aggregate report (root <{root.tag}>)")
    return root


def parse(msg: EmailMessage, raw: bytes, *, received_at: datetime | None = None) -> list[ParsedEvent]:
    docs = [("body", raw)] if mime.is_bare(msg) else _xml_documents(msg)
    if not docs:
        raise ParseError("no DMARC aggregate XML (<feedback> with <policy_published>) in the mail")
    events: list[ParsedEvent] = []
    passed = 0
    for name, content in docs:
        root = _root(name, content)
        # Namespaced (DMARCbis) documents: strip the namespace so one set of paths reads both.
        for el in root.iter():
            el.tag = el.tag.rsplit("}", 1)[-1]
        org = _text(root, "report_metadata/org_name")
        contact = _text(root, "report_metadata/email").lower()
        report_id = _text(root, "report_metadata/report_id")
        begin = _epoch(_text(root, "report_metadata/date_range/begin"))
        end = _epoch(_text(root, "report_metadata/date_range/end"))
        domain = _text(root, "policy_published/domain")
        when = begin or end or received_at or datetime.now(UTC)
        if tabular.check_when(when, received_at):
            when = received_at or datetime.now(UTC)
        failing: dict[str, list[str]] = {}
        for record in root.findall("record")[:MAX_RECORDS]:
            ip = tabular.valid_ip(_text(record, "row/source_ip"))
            if ip is None:
                continue
            dkim = _text(record, "row/policy_evaluated/dkim").lower()
            spf = _text(record, "row/policy_evaluated/spf").lower()
            if dkim == "pass" or spf == "pass":
                passed += 1
                continue
            disposition = _text(record, "row/policy_evaluated/disposition")
            failing.setdefault(ip, []).append(
                f"count={_text(record, 'row/count') or '?'} disposition={disposition}"
                f" dkim={dkim or '?'} spf={spf or '?'} header_from={_text(record, 'identifiers/header_from')}"
            )
        for ip, rows in failing.items():
            events.append(
                ParsedEvent(
                    ip=ip,
                    occurred_at=when,
                    category="spam",
                    format=FORMAT,
                    reporter=contact or mime.address(msg, "From"),
                    reporter_org=org[:200],
                    external_id=f"{report_id}:{ip}"[:200],
                    evidence=mime.cap(
                        f"DMARC aggregate report {report_id} from {org} for {domain}, "
                        f"{begin.isoformat() if begin else '?'} to {end.isoformat() if end else '?'}:\n"
                        f"mail from {ip} failed DMARC (neither DKIM nor SPF passed)\n" + "\n".join(rows[:50])
                    ),
                    confidence=CONFIDENCE,
                    needs_confirmation=True,
                )
            )
    if not events:
        raise ParseError(f"DMARC aggregate report: every source passed authentication ({passed} rows); nothing to file")
    return events
