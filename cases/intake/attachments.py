"""Reports that say "see the attached list": JSON, XML or plain-text attachments, often zipped or
gzipped (national CERTs, security vendors, brand-protection firms). CSV attachments are the
feeds parser's; this one runs after it and reads what it cannot.

Every address in them becomes an event with its own time, port and category where the record
gives them:
- JSON: an array of objects, an object holding such an array ({"events": [...]}), or JSON lines;
  nested objects are flattened ("source": {"ip": ...} reads as source_ip).
- XML: every element whose children (or attributes) name an IP and a time, whatever the tag names.
- plain text: one incident per line, each line with an address and a time.
Archives are opened with the shared limits (tabular.extract: at most 200 MB expanded, 64 members,
one level, nothing nested); a single attachment over MAX_MEMBER_BYTES is refused.
"""

from __future__ import annotations

import functools
import io
import json
import re
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage
from typing import Any
from xml.etree import ElementTree

from . import freetext, mime, tabular
from .base import ParsedEvent, ParseError
from .safexml import _DECLARATION

FORMAT = "attachment"
MAX_RECORDS = 1_000_000
MAX_MEMBER_BYTES = 200 * 1024 * 1024
_SUFFIXES = (".json", ".jsonl", ".ndjson", ".xml", ".txt", ".log", ".zip", ".gz")
_TYPES = ("application/json", "application/xml", "text/xml", "application/zip", "application/gzip", "text/plain")


def _attachments(msg: EmailMessage, skipped: tabular.EventList, *, head_only: bool) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of each attached file, archives opened one level. Inline body text is not an
    attachment: free text reads it."""
    if mime.is_bare(msg):
        return
    for filename, ctype, data, part in tabular.iter_leaf_parts(msg):
        if part is msg or not (mime.is_attachment(part) or filename):
            continue
        name = filename.lower()
        if not (name.endswith(_SUFFIXES) or ctype in _TYPES or ctype.endswith(("+json", "+xml"))):
            continue
        if tabular.is_archive(filename, data):
            try:
                members = tabular.open_members(filename, data, skipped)
            except ParseError:
                if head_only:
                    continue
                raise
        else:
            members = [(filename, functools.partial(io.BytesIO, data))]
        for member, opener in members:
            if member.lower().endswith(".csv"):
                continue  # the feeds parser's (and never inflated here)
            with opener() as stream:
                yield member, stream.read(64 * 1024 if head_only else MAX_MEMBER_BYTES)


def _flatten(record: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in record.items():
        name = tabular.normalize_key(f"{prefix}_{key}" if prefix else str(key))
        if isinstance(value, dict):
            out.update(_flatten(value, name))
            # {"source": {"ip": ...}}: the inner key alone is a fallback ("ip")
            for inner, inner_value in _flatten(value).items():
                out.setdefault(inner, inner_value)
        elif isinstance(value, list):
            scalars = [str(v) for v in value if isinstance(v, str | int | float)]
            if scalars:
                out.setdefault(name, scalars[0])
        elif value is not None:
            out[name] = str(value)
    return out


def _json_records(text: str) -> list[dict[str, str]] | None:
    stripped = text.strip()
    if not stripped.startswith(("{", "[")):
        return None
    try:
        doc: Any = json.loads(stripped)
    except (ValueError, RecursionError):
        doc = None
        lines = [line for line in stripped.splitlines() if line.strip()]
        try:
            docs = [json.loads(line) for line in lines[:MAX_RECORDS]]
        except (ValueError, RecursionError):
            return None
        return [_flatten(d) for d in docs if isinstance(d, dict)]
    if isinstance(doc, dict):
        lists = [v for v in doc.values() if isinstance(v, list) and v and all(isinstance(i, dict) for i in v[:10])]
        doc = lists[0] if lists else [doc]
    if not isinstance(doc, list):
        return None
    return [_flatten(item) for item in doc[:MAX_RECORDS] if isinstance(item, dict)]


def _xml_records(data: bytes) -> list[dict[str, str]] | None:
    head = data[:4096].decode("utf-8", "replace")
    if not head.lstrip("\ufeff \r\n\t").startswith("<"):
        return None
    if _DECLARATION.search(head) or b"<!ENTITY" in data:
        raise ParseError("XML with a DOCTYPE or ENTITY declaration refused (entity expansion guard)")
    try:
        root = ElementTree.fromstring(data)
    except (ElementTree.ParseError, ValueError):
        return None
    records = []
    for element in root.iter():
        fields = {tabular.normalize_key(k.rsplit("}", 1)[-1]): v for k, v in element.attrib.items()}
        for sub in element:
            if len(sub) == 0 and sub.text and sub.text.strip():
                fields.setdefault(tabular.normalize_key(sub.tag.rsplit("}", 1)[-1]), sub.text.strip())
        if tabular.find_column(list(fields), tabular.IP_COLUMNS) is not None:
            records.append(fields)
        if len(records) >= MAX_RECORDS:
            break
    return records


def _record_event(
    record: dict[str, str], *, received_at: datetime | None, hint: str | None, reporter: str, org: str, name: str
) -> ParsedEvent | str | None:
    keys = list(record)
    ip_col = tabular.find_column(keys, tabular.IP_COLUMNS)
    if ip_col is None:
        return None
    raw_ip = record[keys[ip_col]]
    ip = tabular.valid_ip(raw_ip)
    if ip is None:
        return tabular.ip_refusal(raw_ip)
    time_col, date_col, clock_col = tabular.time_columns(keys)
    if time_col is not None:
        when = tabular.parse_when(record[keys[time_col]])
    elif date_col is not None and clock_col is not None:
        when = tabular.parse_when(f"{record[keys[date_col]]} {record[keys[clock_col]]}")
    else:
        return "no time in the record"
    if when is None:
        return "unreadable time"
    problem = tabular.check_when(when, received_at)
    if problem:
        return problem
    category = next((c for c in (tabular.classify(record.get(k, "")) for k in tabular.CATEGORY_COLUMNS) if c), None)
    confidence = 0.8 if category else (0.6 if hint else 0.5)
    port_col = tabular.find_column(keys, tabular.PORT_COLUMNS)
    id_col = tabular.find_column(keys, tabular.ID_COLUMNS)
    return ParsedEvent(
        ip=ip,
        occurred_at=when,
        category=category or hint or "other",
        format=FORMAT,
        port=tabular.valid_port(record[keys[port_col]]) if port_col is not None else None,
        reporter=reporter,
        reporter_org=org,
        external_id=(record[keys[id_col]] if id_col is not None else "")[:200],
        evidence=f"{name}: " + ", ".join(f"{k}={v}" for k, v in list(record.items())[:30]),
        confidence=confidence,
    )


def _text_events(
    text: str, *, received_at: datetime | None, hint: str | None, reporter: str, org: str, name: str
) -> list[ParsedEvent]:
    """A plain-text list: one event per line that gives an address and a time."""
    now = received_at or datetime.now().astimezone()
    out = []
    for line in text.splitlines()[:MAX_RECORDS]:
        pairs = mime.find_ip_ports(line)
        if not pairs:
            continue
        dates = mime.find_dates(line, now=now, limit=1)
        if not dates:
            continue
        category = tabular.classify(line) if re.search(r"[A-Za-z]{4,}", line) else None
        for ip, port in pairs[:1]:
            out.append(
                ParsedEvent(
                    ip=ip,
                    occurred_at=dates[0],
                    category=category or hint or "other",
                    format=FORMAT,
                    port=port,
                    reporter=reporter,
                    reporter_org=org,
                    evidence=f"{name}: {line.strip()[:500]}",
                    confidence=0.6,
                )
            )
    return out


def detect(msg: EmailMessage, raw: bytes) -> bool:
    skipped = tabular.EventList()
    for _name, data in _attachments(msg, skipped, head_only=True):
        text = tabular.bytes_text(msg, data).lstrip("\ufeff \r\n\t")
        if text.startswith(("{", "[", "<")):
            return True
        if re.search(r"\d{1,3}(?:\.\d{1,3}){3}|[0-9a-f]{1,4}:[0-9a-f:]+:[0-9a-f]{1,4}", text[:8192], re.I):
            return True
    return False


def parse(msg: EmailMessage, raw: bytes, *, received_at: datetime | None = None) -> list[ParsedEvent]:
    events = tabular.EventList()
    reporter, org = tabular.sender_of(msg)
    prose = mime.body_text(msg, max_chars=64 * 1024)
    subject = mime.header(msg, "Subject")
    for name, data in _attachments(msg, events, head_only=False):
        hint = (
            tabular.classify(re.sub(r"\.(json|jsonl|ndjson|xml|txt|log|zip|gz)$", "", name, flags=re.I))
            or tabular.classify(subject)
            or freetext.text_category(subject, prose)
        )
        text = tabular.bytes_text(msg, data)
        records = _json_records(text)
        if records is None:
            records = _xml_records(data)
        if records is None:
            events.extend(_text_events(text, received_at=received_at, hint=hint, reporter=reporter, org=org, name=name))
            continue
        for record in records:
            result = _record_event(record, received_at=received_at, hint=hint, reporter=reporter, org=org, name=name)
            if isinstance(result, ParsedEvent):
                events.append(result)
            elif result is not None:
                events.skip(result)
        if len(events) >= MAX_RECORDS:
            break
    if not events:
        summary = events.skip_summary()
        raise ParseError("no incidents in the attachments" + (f" ({summary})" if summary else ""))
    return events
