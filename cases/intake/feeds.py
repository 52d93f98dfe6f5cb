"""Generic feeds: CSV files or bodies, and "key: value" records, where one field is plainly the IP and
one the time ("ip"/"src_ip"/"source", "timestamp"/"first_seen"/...).

This runs after the named formats (ARF, X-ARF, SpamCop, Shadowserver), so it only has to be sure
about the IP and time; the category comes from a category/type column when there is one, else
from the file name or subject, else "other" with low confidence.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage

from cases.intake import freetext, mime, tabular
from cases.intake.base import ParsedEvent, ParseError

FORMAT_CSV = "csv"
FORMAT_KV = "keyvalue"

MAX_TEXT_CHARS = 50 * 1024 * 1024
_CSV_SUFFIXES = (".csv", ".txt", ".tsv", ".csv.zip", ".zip", ".csv.gz", ".gz")
_MAX_HEADER_SEARCH_LINES = 200
_ARCHIVE_TYPES = ("application/zip", "application/x-zip-compressed", "application/gzip", "application/csv")
_HEAD_BYTES = 64 * 1024
# What csv_start looks at: its 256 KiB of lines, and a header's 8 KiB past them.
_CSV_HEAD_BYTES = 264 * 1024


def _candidate_parts(msg: EmailMessage) -> list[tuple[str, str, bytes, object]]:
    """Text bodies and CSV-ish or archive attachments; never embedded messages' binary parts."""
    found = []
    for filename, ctype, data, part in tabular.iter_leaf_parts(msg):
        name = filename.lower()
        if (
            ctype.startswith("text/")
            and ctype != "text/html"
            or name.endswith(_CSV_SUFFIXES)
            or ctype in ("application/zip", "application/x-zip-compressed", "application/gzip", "application/csv")
        ):
            found.append((filename, ctype, data, part))
    return found


def csv_start(text: str) -> int | None:
    """Offset of the first line that is a CSV header naming an IP and a time column, if any.

    A feed may paste its CSV below a sentence or two of prose, so the first lines are searched.
    """
    offset = 0
    for count, line in enumerate(text[: 256 * 1024].split("\n")):
        if count >= _MAX_HEADER_SEARCH_LINES:
            break
        if tabular.looks_like_csv(text[offset : offset + 8192]):
            return offset
        offset += len(line) + 1
    return None


def _kv_records(text: str) -> list[list[tuple[str, str]]]:
    """Records of "Name: value" lines; a name seen again starts the next record."""
    records: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in mime.parse_fields(text[: 4 * 1024 * 1024]):
        key = tabular.normalize_key(name)
        if key in seen:
            records.append(current)
            current, seen = [], set()
        current.append((key, value))
        seen.add(key)
    if current:
        records.append(current)
    return records


# A person's complaint with "Source: ..." and "Time: ..." lines is read as key:value fields; the
# evidence keeps the rest of what they wrote (bounded: a feed's boilerplate repeats on every event).
REPORTER_WORDS_HEADING = "The reporter wrote:"
REPORTER_WORDS_MAX = 1500


def reporter_words(prose: str) -> str:
    """The lines of the mail's text that are not "Name: value" fields, blank runs folded, capped."""
    kept: list[str] = []
    in_field = False
    for line in prose[: REPORTER_WORDS_MAX * 8].splitlines():
        line = line.rstrip()
        if in_field and line[:1] in (" ", "\t"):
            continue  # a folded field value
        in_field = bool(mime.parse_fields(line))
        if not in_field and (line or (kept and kept[-1])):
            kept.append(line)
    return mime.cap("\n".join(kept).strip(), REPORTER_WORDS_MAX)


def _kv_event(
    record: list[tuple[str, str]], *, received_at: datetime | None, reporter: str, org: str, hint: str | None
) -> ParsedEvent | str | None:
    """An event from one key:value record; a skip reason when it names an IP but is unusable;
    None when it is not a feed record at all."""
    fields = dict(record)
    keys = list(fields)
    ip_col = tabular.find_column(keys, tabular.IP_COLUMNS)
    time_col, date_col, clock_col = tabular.time_columns(keys)
    if ip_col is None or (time_col is None and date_col is None):
        return None
    ip = tabular.valid_ip(fields[keys[ip_col]])
    if ip is None:
        return tabular.ip_refusal(fields[keys[ip_col]])
    when_text = (
        fields[keys[time_col]] if time_col is not None else f"{fields[keys[date_col]]} {fields[keys[clock_col]]}"
    )  # type: ignore[index]
    when = tabular.parse_when(when_text)
    if when is None:
        return "unreadable time"
    problem = tabular.check_when(when, received_at)
    if problem:
        return problem
    category, confidence = _category(fields, hint)
    port_col = tabular.find_column(keys, tabular.PORT_COLUMNS)
    id_col = tabular.find_column(keys, tabular.ID_COLUMNS)
    return ParsedEvent(
        ip=ip,
        occurred_at=when,
        category=category,
        format=FORMAT_KV,
        port=tabular.valid_port(fields[keys[port_col]]) if port_col is not None else None,
        reporter=reporter,
        reporter_org=org,
        external_id=fields[keys[id_col]][:200] if id_col is not None else "",
        evidence="\n".join(f"{k}: {v}" for k, v in record),
        confidence=confidence,
    )


def _category(record: dict[str, str], hint: str | None) -> tuple[str, float]:
    category = _column_category(record)
    if category:
        return category, 0.8
    if hint:
        return hint, 0.6
    return "other", 0.5


def _column_category(record: dict[str, str]) -> str | None:
    for column in tabular.CATEGORY_COLUMNS:
        category = tabular.classify(record.get(column, ""))
        if category:
            return category
    return None


def _hint(msg: EmailMessage, filename: str = "", prose: str | None = None) -> str | None:
    """A category suggested by the file name, the subject ("SSH brute force report"), or else the
    words of the mail's own text (Webiron: "Client software detected as known botware ... botnets")."""
    return (
        tabular.classify(re.sub(r"\.(csv|zip|gz|txt)$", "", filename, flags=re.I))
        or tabular.classify(mime.header(msg, "Subject"))
        or (prose and freetext.text_category(mime.header(msg, "Subject"), prose))
        or None
    )


# AbuseHub's mail says what zone its CSV's event_date/event_time are in: "(event time 2015-03-02
# 01:45:59 +01:00)", while the same event's Shadowserver row says 00:45:59 (UTC).
_STATED_EVENT_TIME = re.compile(
    r"event[ _-]?time\W{0,3}\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}(?::\d{2})?\s*([+-]\d{2}:?\d{2})\b", re.I
)


def _stated_offset(prose: str) -> str:
    """The UTC offset the mail's text gives for its event times ("+01:00"), or ""."""
    match = _STATED_EVENT_TIME.search(prose[: 64 * 1024])
    if not match:
        return ""
    offset = match.group(1).replace(":", "")
    return f"{offset[:3]}:{offset[3:]}"


def _same_event(a: ParsedEvent, b: ParsedEvent) -> bool:
    return (
        a.ip == b.ip
        and a.occurred_at == b.occurred_at
        and a.category == b.category
        and (a.port is None or b.port is None or a.port == b.port)
    )


def _drop_repeats(events: tabular.EventList, start: int) -> None:
    """Drop events from events[start:] (one part) that an earlier part of the mail already gave.

    AbuseHub sends one incident twice, as its own CSV and as the Shadowserver row; within one file
    identical rows are kept, since a feed may count repeats.
    """
    earlier = events[:start]
    if not earlier:
        return
    index: dict[tuple[str, datetime, str], list[ParsedEvent]] = {}
    for event in earlier:
        index.setdefault((event.ip, event.occurred_at, event.category), []).append(event)
    kept = []
    for event in events[start:]:
        twin = next(
            (e for e in index.get((event.ip, event.occurred_at, event.category), ()) if _same_event(e, event)), None
        )
        if twin is None:
            kept.append(event)
            continue
        twin.confidence = max(twin.confidence, event.confidence)
        if twin.port is None:
            twin.port = event.port
    del events[start:]
    events.extend(kept)


def _texts(msg: EmailMessage, events: tabular.EventList, *, head_only: bool) -> list[tuple[str, str]]:
    """(name, text) of each candidate part, archives opened one level. With head_only, only the
    first bytes of each (enough for a header line or a few records) so detect stays cheap."""
    out = []
    for filename, _ctype, data, part in _candidate_parts(msg):
        if tabular.is_archive(filename, data):
            try:
                members = tabular.extract(filename, data, events, head=_HEAD_BYTES if head_only else None)
            except ParseError:
                if head_only:
                    continue
                raise
        else:
            members = [(filename, data)]
        for name, content in members:
            if head_only:
                content = content[:_HEAD_BYTES]
            out.append((name, tabular.bytes_text(part, content)[:MAX_TEXT_CHARS]))  # type: ignore[arg-type]
    return out


def detect(msg: EmailMessage, raw: bytes) -> bool:
    texts = _texts(msg, tabular.EventList(), head_only=True)
    for _name, text in texts:
        if csv_start(text) is not None:
            return True
    for _name, text in texts:
        for record in _kv_records(text):
            if isinstance(_kv_event(record, received_at=None, reporter="", org="", hint=None), ParsedEvent):
                return True
    return False


def _tables(msg: EmailMessage, skipped: tabular.EventList) -> list[tuple[str, object, tabular.Opener, str, int]]:
    """(name, part, opener, head text, offset of the CSV header in it) of each candidate part (archives
    opened one level) that holds a CSV table; only each file's first bytes are read."""
    found = []
    for filename, _ctype, data, part in _candidate_parts(msg):
        for name, opener in tabular.open_members(filename, data, skipped):
            head = tabular.text_head(part, opener, _CSV_HEAD_BYTES)  # type: ignore[arg-type]
            start = csv_start(head)
            if start is not None:
                found.append((name, part, opener, head, start))
    return found


def parse_stream(msg: EmailMessage, raw: bytes, *, received_at: datetime | None = None) -> Iterator[ParsedEvent]:
    """parse, one event at a time, for the big case: a mail with one CSV table (a feed's file,
    zipped or not) has its rows read line by line as the events are taken, never held whole.
    Anything else (several tables, whose repeats are dropped across them; key:value records; no
    events at all, with its reasons) is parse's, whose list is small."""
    skipped = tabular.EventList()
    try:
        tables = _tables(msg, skipped)
    except ParseError:
        tables = []
    if len(tables) != 1:
        yield from parse(msg, raw, received_at=received_at)
        return
    name, part, opener, head, start = tables[0]
    reporter, org = tabular.sender_of(msg)
    prose = "" if mime.is_bare(msg) else mime.body_text(msg, max_chars=256 * 1024)
    lines: Iterator[str] = itertools.islice(tabular.read_lines(part, opener, skipped), head.count("\n", 0, start), None)  # type: ignore[arg-type]
    if start > 0:
        # A table pasted into prose ends at the first blank line; the prose after it is not rows.
        lines = itertools.takewhile(lambda line: line.strip(" \t\r") != "", lines)
    hint = _hint(msg, name, prose)
    found = 0
    try:
        rows = tabular.iter_table_events(
            tabular.Table(lines, skipped),
            skipped,
            **_table_options(name, hint, received_at, reporter, org, _stated_offset(prose)),
        )
    except ParseError:
        rows = iter(())
    for event in rows:
        found += 1
        yield event
    if not found:
        # parse gives the key:value records, or the reasons there are no events.
        yield from parse(msg, raw, received_at=received_at)


def _table_options(name: str, hint: str | None, received_at, reporter: str, org: str, clock_offset) -> dict:
    """How a CSV feed's table is read, the same whether its rows are streamed or listed."""
    return {
        "fmt": FORMAT_CSV,
        "received_at": received_at,
        "reporter": reporter,
        "reporter_org": org,
        "category_for": _column_category,
        "confidence": 0.8,
        "default_category": hint or "other",
        "default_confidence": 0.6 if hint else 0.5,
        "id_prefix": name,
        "clock_offset": clock_offset,
    }


def parse(msg: EmailMessage, raw: bytes, *, received_at: datetime | None = None) -> list[ParsedEvent]:
    events = tabular.EventList()
    reporter, org = tabular.sender_of(msg)
    problems: list[str] = []
    texts = _texts(msg, events, head_only=False)
    prose = "" if mime.is_bare(msg) else mime.body_text(msg, max_chars=256 * 1024)
    clock_offset = _stated_offset(prose)
    for name, text in texts:
        start = csv_start(text)
        if start is None:
            continue
        hint = _hint(msg, name, prose)
        before = len(events)
        if start > 0:
            # A table pasted into prose ends at the first blank line; the prose after it is not rows.
            end = re.search(r"\n[ \t\r]*\n", text[start:])
            text = text[start : start + end.start()] if end else text[start:]
            start = 0
        try:
            tabular.table_events(
                tabular.Table(text[start:], events),
                events,
                **_table_options(name, hint, received_at, reporter, org, clock_offset),
            )
        except ParseError as exc:
            problems.append(f"{name or 'body'}: {exc}")
        _drop_repeats(events, before)
    if not events and not events.skipped:
        # No CSV: key:value records, in the body or in text attachments (Cyscon's YAML-ish report).
        seen: set[tuple[str, datetime]] = set()
        words = reporter_words(prose)
        for name, text in texts:
            hint = _hint(msg, name, prose)
            for record in _kv_records(text):
                result = _kv_event(record, received_at=received_at, reporter=reporter, org=org, hint=hint)
                if isinstance(result, ParsedEvent):
                    if words:  # "Source:"/"Time:" lines alone drop "About 3,000 failed logins in an hour."
                        result.evidence = mime.cap(f"{result.evidence}\n\n{REPORTER_WORDS_HEADING}\n{words}")
                    if (result.ip, result.occurred_at) not in seen:  # the body often repeats the attachment
                        seen.add((result.ip, result.occurred_at))
                        events.append(result)
                elif result is not None:
                    events.skip(result)
    if not events:
        reasons = problems + ([f"all records skipped ({events.skip_summary()})"] if events.skipped else [])
        raise ParseError(
            "no feed events: " + ("; ".join(reasons) or "no CSV with IP and time columns, no ip/time fields")
        )
    return events
