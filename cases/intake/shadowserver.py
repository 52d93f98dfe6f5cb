"""Shadowserver reports: CSV files (zipped or not) attached to a mail, one event per row.

The category comes from the report name, which Shadowserver puts in the file name
("2019-10-15-scan_rsync-sample-asn.csv.zip") and in the subject ("Shadowserver scan_ntp Report").
Shadowserver documents its timestamps as UTC, which is how tabular.parse_when reads naive times.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage

from cases.intake import mime, tabular
from cases.intake.base import ParsedEvent, ParseError

FORMAT = "shadowserver"
ORG = "The Shadowserver Foundation"

# Report names use underscores; hyphens separate the name from "-sample", "-asn", the recipient, ...
_FILE_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}-([a-z0-9_]+)(?:[-.]|$)", re.I)
_SUBJECT_NAME = re.compile(r"shadowserver\s+(.+?)\s+report\b", re.I)
_TABULAR_SUFFIXES = (".csv", ".csv.zip", ".zip", ".csv.gz", ".gz")
# Per-row columns that name what was seen when the report name alone says nothing ("blocklist").
_ROW_CATEGORY_COLUMNS = ("type", "infection", "tag", "category")


def _is_shadowserver_sender(msg: EmailMessage) -> bool:
    sender = mime.address(msg, "From")
    return sender.endswith("@shadowserver.org") or sender.endswith(".shadowserver.org")


def _tabular_attachments(msg: EmailMessage) -> list[tuple[str, bytes]]:
    found = []
    for filename, ctype, data, _part in tabular.iter_leaf_parts(msg):
        name = filename.lower()
        if name.endswith(_TABULAR_SUFFIXES) or ctype in ("text/csv", "application/zip", "application/x-zip-compressed"):
            found.append((filename, data))
    return found


def report_name(filename: str, subject: str = "") -> str:
    """'scan_ntp' from '2015-01-01-scan_ntp-sample-asn.csv.zip'; else the name in the subject."""
    match = _FILE_NAME.match(filename.rsplit("/", 1)[-1])
    if match:
        return match.group(1).lower()
    match = _SUBJECT_NAME.search(subject)
    if match:
        return re.sub(r"^\[[^]]*\]\s*", "", match.group(1)).lower().removesuffix("-sample")
    return ""


def detect(msg: EmailMessage, raw: bytes) -> bool:
    attachments = _tabular_attachments(msg)
    if not attachments:
        return False
    if _is_shadowserver_sender(msg):
        return True
    # Forwarded or relayed reports lose the sender but keep Shadowserver's file naming. The subject
    # alone is not enough: AbuseHub relays Shadowserver data as its own CSV ("[Shadowserver Botnet Drone]").
    return any(_FILE_NAME.match(name.rsplit("/", 1)[-1]) for name, _ in attachments)


def parse(msg: EmailMessage, raw: bytes, *, received_at: datetime | None = None) -> tabular.EventList:
    events = tabular.EventList()
    events.extend(_events(msg, received_at, events))
    return events


def parse_stream(msg: EmailMessage, raw: bytes, *, received_at: datetime | None = None) -> Iterator[ParsedEvent]:
    """parse, one event at a time: the CSV files are inflated and read line by line as the events
    are taken, so a feed of millions of rows is never held whole (see cases.intake.parse_stream)."""
    return _events(msg, received_at, tabular.EventList())


def _events(msg: EmailMessage, received_at: datetime | None, skipped: tabular.EventList) -> Iterator[ParsedEvent]:
    attachments = _tabular_attachments(msg)
    if not attachments:
        raise ParseError("Shadowserver mail without a CSV attachment (the report may only be behind its download link)")
    reporter, org = tabular.sender_of(msg)
    if _is_shadowserver_sender(msg) or not org:
        org = ORG
    subject = mime.header(msg, "Subject")
    found = tables = 0
    problems: list[str] = []
    for filename, data in attachments:
        try:
            members = tabular.open_members(filename, data, skipped)
        except ParseError as exc:
            problems.append(str(exc))
            continue
        for member_name, opener in members:
            name = report_name(member_name, "") or report_name(filename, subject)
            named_category = tabular.classify(name) if name else None
            try:
                table = tabular.Table(tabular.read_lines(msg, opener, skipped), skipped)
                rows = tabular.iter_table_events(
                    table,
                    skipped,
                    fmt=FORMAT,
                    received_at=received_at,
                    reporter=reporter,
                    reporter_org=org,
                    category_for=_row_category(named_category),
                    default_category="other",
                    # The report name is Shadowserver's own classification; a per-row guess is weaker.
                    confidence=0.95 if named_category else 0.7,
                    id_prefix=member_name.rsplit("/", 1)[-1],
                )
            except ParseError as exc:
                problems.append(f"{member_name}: {exc}")
                continue
            tables += 1
            for event in rows:
                found += 1
                yield event
    if not found:
        reasons = problems + ([f"all rows skipped ({skipped.skip_summary()})"] if skipped.skipped else [])
        if not reasons and tables:
            reasons = ["the CSV files have no data rows"]
        raise ParseError("no Shadowserver events: " + ("; ".join(reasons) or "no CSV file found in the attachments"))


def _row_category(named: str | None):
    if named:
        return lambda record: named

    def from_row(record: dict[str, str]) -> str | None:
        for column in _ROW_CATEGORY_COLUMNS:
            category = tabular.classify(record.get(column, ""))
            if category:
                return category
        return None

    return from_row
