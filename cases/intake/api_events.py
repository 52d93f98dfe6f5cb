"""Events posted to the HTTP API as JSON: one object or a list of them.

    {"ip": "198.51.100.7", "port": 25, "time": "2025-03-01T14:02:00Z", "category": "spam",
     "evidence": "...", "reporter": "abuse@example.org", "url": "http://..."}

The API validates the body (api.serializers) and stores it, byte for byte, behind a small header
block (``wrap``) whose content type names this format; so the parse runs later on a worker, like
mail's, and a message is never mistaken for another format, nor another format for this one.
"""

from __future__ import annotations

import json
from datetime import datetime
from email.message import EmailMessage

from . import mime, tabular
from .base import CATEGORIES, ParsedEvent, ParseError

FORMAT = "api"
CONTENT_TYPE = "application/vnd.abusedesk.events+json"
FIELDS = ("ip", "port", "time", "category", "evidence", "reporter", "url")
MAX_EVENTS = 1000


def wrap(body: bytes) -> bytes:
    """The stored form of a posted event list: the body unchanged, behind a fixed header block
    (so the same body posted twice is the same message, and is received once)."""
    return b"MIME-Version: 1.0\r\nContent-Type: " + CONTENT_TYPE.encode() + b"; charset=utf-8\r\n\r\n" + body


def detect(msg: EmailMessage, raw: bytes) -> bool:
    return msg.get_content_type() == CONTENT_TYPE


def parse(msg: EmailMessage, raw: bytes, *, received_at: datetime | None = None) -> list[ParsedEvent]:
    payload = msg.get_payload(decode=True) or b""
    try:
        doc = json.loads(mime.decode_bytes(payload))
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"the event list is not JSON: {exc}") from None
    items = doc if isinstance(doc, list) else [doc]
    events = []
    for index, item in enumerate(items[:MAX_EVENTS]):
        try:
            events.append(_event(item, received_at))
        except (ValueError, TypeError) as exc:
            raise ParseError(f"event {index}: {exc}") from None
    return events


def _event(item: object, received_at: datetime | None) -> ParsedEvent:
    if not isinstance(item, dict):
        raise ValueError("not an object")
    ip = tabular.valid_ip(str(item.get("ip", "")))
    if ip is None:
        raise ValueError(f"{item.get('ip')!r} is not a usable IP address")
    when = tabular.parse_when(str(item.get("time", "")))
    if when is None:
        raise ValueError(f"{item.get('time')!r} is not a time")
    why = tabular.check_when(when, received_at)
    if why:
        raise ValueError(why)
    category = str(item.get("category", ""))
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}")
    port = item.get("port")
    if port is not None and tabular.valid_port(port) is None:
        raise ValueError(f"{port!r} is not a port")
    evidence = str(item.get("evidence") or "")
    if item.get("url"):
        evidence = f"URL: {item['url']}\n{evidence}".strip()
    return ParsedEvent(
        ip=ip,
        occurred_at=when,
        category=category,
        format=FORMAT,
        port=int(port) if port is not None else None,
        reporter=str(item.get("reporter") or "")[:254],
        evidence=evidence,
        confidence=1.0,
    )
