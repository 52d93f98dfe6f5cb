"""What every parser returns. Parsers are pure: raw bytes in, ParsedEvent list out, no database."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

CATEGORIES = (
    "spam",
    "phishing",
    "malware",
    "botnet",
    "scanning",
    "ddos",
    "login_attack",
    "vulnerable_service",
    "copyright",
    "other",
)

EVIDENCE_MAX_CHARS = 8000


class ParseError(Exception):
    """The input could not be read as the format claimed; the message says why, for a person."""


@dataclasses.dataclass(slots=True)
class ParsedEvent:
    ip: str  # validated, canonical text (ipaddress); IPv4-mapped IPv6 unwrapped to IPv4; "" only with `unresolved`
    occurred_at: datetime  # aware, UTC
    category: str  # one of CATEGORIES
    format: str  # "arf", "xarf", "xarf4", "spamcop", "shadowserver", "csv", "freetext", ...
    port: int | None = None
    reporter: str = ""  # the reporter's e-mail address
    reporter_org: str = ""
    external_id: str = ""
    evidence: str = ""  # capped at EVIDENCE_MAX_CHARS
    confidence: float = 1.0  # 0..1: how sure the parser is that ip/time/category are right
    # The URL a URL-only report names (phishing, malware, copyright); ip is what its host resolved
    # to at intake.
    url: str = ""
    # Why a URL-only report's host gave no address (NXDOMAIN, no A/AAAA, DNS not answering): ip is
    # then "" and filing keeps the report, with its URL, in the unassigned queue until re-resolved.
    unresolved: str = ""
    # Never starts a notice alone (DMARC aggregate rows): filed as needing confirmation whatever the
    # reporter's trust, so the ladder counts it only once a person or another report says the same.
    needs_confirmation: bool = False

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}")
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must be aware")
        self.occurred_at = self.occurred_at.astimezone(UTC)
        if len(self.evidence) > EVIDENCE_MAX_CHARS:
            self.evidence = self.evidence[: EVIDENCE_MAX_CHARS - 20] + "\n[… evidence cut …]"

    def as_dict(self) -> dict:
        return {
            "ip": self.ip,
            "port": self.port,
            "occurred_at": self.occurred_at.isoformat().replace("+00:00", "Z"),
            "category": self.category,
            "reporter": self.reporter,
            "reporter_org": self.reporter_org,
            "external_id": self.external_id,
            "format": self.format,
            "confidence": self.confidence,
            **({"url": self.url} if self.url else {}),
            **({"unresolved": self.unresolved} if self.unresolved else {}),
            **({"needs_confirmation": True} if self.needs_confirmation else {}),
        }


@dataclasses.dataclass(slots=True)
class ParseResult:
    format: str  # the detected format, "" when none fits
    events: list[ParsedEvent]
    error: str | None = None  # why nothing could be read, for a person; None when events were found
