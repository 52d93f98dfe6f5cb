"""Shared helpers for the structured-feed parsers (xarf, shadowserver, feeds).

CSV reading that survives broken quoting, column matching, archive extraction with hard limits,
lenient date and IP validation, and the row -> ParsedEvent loop. Pure functions, no database.
"""

from __future__ import annotations

import codecs
import collections
import csv
import functools
import gzip
import io
import ipaddress
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from email.message import Message
from typing import IO

from abusedesk.lib import addresses, dates
from cases.intake import mime
from cases.intake.base import ParsedEvent, ParseError

# Archive limits. A zip bomb claims small sizes in its headers, so the byte cap is enforced on what
# is actually read, chunk by chunk, not on ZipInfo.file_size.
MAX_ARCHIVE_TOTAL_BYTES = 200 * 1024 * 1024
MAX_ARCHIVE_MEMBERS = 64
_READ_CHUNK = 1024 * 1024
_ARCHIVE_SUFFIXES = (".zip", ".gz", ".tgz", ".tar", ".bz2", ".xz", ".7z", ".rar")

# A record with an unclosed quote may legitimately span lines (a banner with a newline), but not
# forever: past this many lines the opening quote is taken to be broken and that line is skipped.
_MAX_RECORD_LINES = 50
# A line longer than this is dropped (counted) when a file is read line by line: a member with no
# line ends at all must not become one 190 MB string.
MAX_LINE_BYTES = 1024 * 1024
# csv's own limit (128 KiB a field) made a row with a long field (a banner, a certificate) an
# unreadable row, and a big feed read as one text could fail on it whole. A field is now bounded
# by its record: at most _MAX_RECORD_LINES lines of at most MAX_LINE_BYTES. Set once, for the process.
csv.field_size_limit(max(csv.field_size_limit(), _MAX_RECORD_LINES * MAX_LINE_BYTES))

IP_COLUMNS = (
    "ip",
    "src_ip",
    "source_ip",
    "srcip",
    "ip_address",
    "ipaddress",
    "ipaddr",
    "ip_addr",
    "source",
    "src",
    "source_address",
    "src_addr",
    "attacker_ip",
    "offender_ip",
    "host_ip",
    "address",
    "addr",
)
TIME_COLUMNS = (
    "timestamp",
    "datetime",
    "date_time",
    "first_seen",
    "firstseen",
    "event_time",
    "event_timestamp",
    "occurred_at",
    "seen",
    "last_seen",
    "lastseen",
    "reported_at",
    "time",
    "date",
    "event_date",
)
# A date and a clock in separate columns (AbuseHub: event_date, event_time).
_DATE_COLUMNS = ("event_date", "date")
_CLOCK_COLUMNS = ("event_time", "time")
PORT_COLUMNS = ("src_port", "source_port", "srcport", "sport", "port")
CATEGORY_COLUMNS = (
    "category",
    "report_type",
    "type",
    "infection_type",
    "infection",
    "classification",
    "classification_type",
    "abuse_type",
    "threat",
)
ID_COLUMNS = ("report_id", "incident_id", "event_id", "id", "uuid")


class EventList(list):
    """A list of ParsedEvents that also says how many rows were skipped, and why.

    The parser interface returns a list; this subclass keeps that contract while letting the
    dispatcher show "12,000 events, 3 rows skipped (invalid IP: 2, bad time: 1)".
    """

    def __init__(self, events: Iterable[ParsedEvent] = ()) -> None:
        super().__init__(events)
        self.skipped = 0
        self.skip_reasons: collections.Counter[str] = collections.Counter()

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped += count
        self.skip_reasons[reason] += count

    def absorb(self, other: EventList) -> None:
        self.extend(other)
        self.skipped += other.skipped
        self.skip_reasons.update(other.skip_reasons)

    def skip_summary(self) -> str:
        return ", ".join(f"{reason}: {n}" for reason, n in self.skip_reasons.most_common())


# --- values -------------------------------------------------------------------------------------


def valid_ip(text: str) -> str | None:
    """Canonical text of an IP address, or None. '148.81.111.11.12' is None, not a truncation.

    0.0.0.0 and multicast are refused too: no customer holds them, they are placeholders in feeds.
    So are zone ids ("fe80::1%eth0") and networks ("192.0.2.0/24"): see ip_refusal for why.
    """
    ip = mime.canonical_ip(text)
    if ip is None:
        return None
    addr = ipaddress.ip_address(ip)
    return None if addr.is_unspecified or addr.is_multicast else ip


def ip_refusal(text: str) -> str:
    """The skip reason for a cell valid_ip refused, one word per kind, so a summary counts them."""
    ip, reason = addresses.parse_host(text)
    if ip is not None:
        return "unspecified or multicast address"
    if reason and "zone id" in reason:
        return "IPv6 zone id (an interface, not an address)"
    if reason and "network" in reason:
        return "a network where one address is expected"
    return "invalid IP address"


def valid_port(text: object) -> int | None:
    try:
        port = int(str(text).strip())
    except (TypeError, ValueError):
        return None
    return port if 0 < port < 65536 else None


# One date reader for the project (abusedesk.lib.dates): the ISO fast path, then the lenient forms.
parse_when = dates.parse_feed_time
check_when = dates.implausible


def normalize_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().strip('"').lower()).strip("_")


def find_column(headers: list[str], candidates: Iterable[str]) -> int | None:
    """Index of the first candidate name present in the (normalized) headers; candidate order wins."""
    positions = {name: i for i, name in reversed(list(enumerate(headers)))}
    for name in candidates:
        if name in positions:
            return positions[name]
    return None


# Ordered: the first matching rule wins, so "honeypot_brute_force" is a login attack and not a botnet.
_CATEGORY_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), category)
    for pattern, category in (
        # Shadowserver's scan_* / open_* / accessible-* reports list services we can reach, not attackers.
        (r"^scan6?_|^open_|_open_|^accessible|open_?resolver|vulnerab|exposed|misconfig", "vulnerable_service"),
        (r"brute.?force|login|ssh|rdp_?attack|credential|password|auth_?fail", "login_attack"),
        (r"phish", "phishing"),
        (r"spam|harvest|regbot", "spam"),
        (r"ddos|(^|_)dos(_|$)|flood", "ddos"),
        (r"copyright|dmca|p2p|piracy|infring", "copyright"),
        (r"(^|_)ssl_|^device_id|(^|_)cve|amplifier|ntp_?monitor", "vulnerable_service"),
        (r"botnet|drone|(^|_)bots?(_|$)|infect|sinkhole|(^|_)c2(_|$)|cnc|command_and_control|zombie", "botnet"),
        (r"malware|compromised|defac|webshell|trojan|virus|ransom", "malware"),
        (r"scan|darknet|probe|recon", "scanning"),
    )
)


def classify(name: str) -> str | None:
    """Category from a report or type name ("scan_ntp", "botnet_drone", "Login-Attack"), or None."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if not key:
        return None
    for pattern, category in _CATEGORY_RULES:
        if pattern.search(key):
            return category
    return None


# --- mail ---------------------------------------------------------------------------------------


def sender_of(msg: Message) -> tuple[str, str]:
    """(address, organisation) of whoever sent the mail; Organization header beats display name."""
    addr = mime.address(msg, "From")
    org = mime.header(msg, "Organization").strip() or mime.display_name(msg) or (mime.org_domain(addr) if addr else "")
    return addr, org[:200]


def iter_leaf_parts(msg: Message) -> Iterator[tuple[str, str, bytes, Message]]:
    """(filename, content type, decoded bytes, part) for every non-multipart part of the mail.

    A bare feed body (see mime.parse_message) comes back as one text part.
    """
    if mime.is_bare(msg):
        yield "", "text/plain", mime.bare_text(msg).encode("utf-8"), msg
        return
    for part in mime.walk(msg):
        try:
            if part.is_multipart():
                continue
            filename = part.get_filename() or ""
            payload = part.get_payload(decode=True)
        except Exception:  # noqa: BLE001 — a broken MIME header or encoding must not sink the whole mail
            continue
        if isinstance(payload, str):
            payload = payload.encode("utf-8", errors="replace")
        yield str(filename), mime.content_type(part), payload or b"", part


def bytes_text(part: Message, data: bytes) -> str:
    """Text of bytes read from a part (or an archive member): declared charset, UTF-8, then cp1252."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        charset = part.get_content_charset()
    except Exception:  # noqa: BLE001 — an unparseable charset parameter
        charset = None
    return mime.decode_bytes(data, charset)


# --- archives -----------------------------------------------------------------------------------


def is_archive(name: str, data: bytes) -> bool:
    return name.lower().endswith(_ARCHIVE_SUFFIXES) or data[:4] == b"PK\x03\x04" or data[:2] == b"\x1f\x8b"


def _zip_entry_count(data: bytes) -> int | None:
    """Entries the central directory claims, read before zipfile builds a ZipInfo for each one."""
    tail = data[-(65536 + 22) :]
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return None
    return struct.unpack("<H", tail[at + 10 : at + 12])[0]


def _over_budget() -> ParseError:
    return ParseError(
        f"archive expands to more than {MAX_ARCHIVE_TOTAL_BYTES // (1024 * 1024)} MB; refused as a possible zip bomb"
    )


def _read_capped(stream: IO[bytes], budget: list[int]) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = stream.read(_READ_CHUNK)
        if not chunk:
            return b"".join(chunks)
        budget[0] -= len(chunk)
        if budget[0] < 0:
            raise _over_budget()
        chunks.append(chunk)


def _count_capped(stream: IO[bytes], budget: list[int]) -> bytes:
    """Read a whole member against the budget without keeping it; returns its first bytes."""
    head = b""
    while True:
        chunk = stream.read(_READ_CHUNK)
        if not chunk:
            return head
        if not head:
            head = chunk[:8]
        budget[0] -= len(chunk)
        if budget[0] < 0:
            raise _over_budget()


# Opens one file of an attachment (an archive member, or the attachment itself) for reading.
Opener = Callable[[], IO[bytes]]


def open_members(name: str, data: bytes, skipped: EventList | None = None) -> list[tuple[str, Opener]]:
    """The files inside a zip or gzip attachment, one level deep, each as (name, opener); anything
    else is itself the one file. The limits are those of extract, checked here, before any member
    is handed out: each member is inflated once and counted, not kept, so a parser that streams
    its rows never finds a bomb half way and the memory is one read buffer, not the 190 MB a big
    feed's CSV expands to.

    Archives inside the archive are not opened (a nested bomb costs nothing); they are counted as
    skipped. Raises ParseError for a broken archive or one that breaks the limits.
    """
    budget = [MAX_ARCHIVE_TOTAL_BYTES]
    try:
        if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
            claimed = _zip_entry_count(data)
            if claimed is not None and claimed > MAX_ARCHIVE_MEMBERS:
                raise ParseError(f"archive {name!r} has {claimed} members; at most {MAX_ARCHIVE_MEMBERS} are read")
            archive = zipfile.ZipFile(io.BytesIO(data))
            members = [info for info in archive.infolist() if not info.is_dir()]
            if len(members) > MAX_ARCHIVE_MEMBERS:
                raise ParseError(f"archive {name!r} has {len(members)} members; at most {MAX_ARCHIVE_MEMBERS} are read")
            out: list[tuple[str, Opener]] = []
            for info in members:
                if info.flag_bits & 0x1:
                    if skipped is not None:
                        skipped.skip("encrypted archive member")
                    continue
                if info.filename.lower().endswith(_ARCHIVE_SUFFIXES):
                    if skipped is not None:
                        skipped.skip("nested archive not opened")
                    continue
                with archive.open(info) as stream:
                    head = _count_capped(stream, budget)
                if is_archive(info.filename, head):
                    if skipped is not None:
                        skipped.skip("nested archive not opened")
                    continue
                out.append((info.filename, functools.partial(archive.open, info)))
            return out
        if data[:2] == b"\x1f\x8b":

            def open_gzip() -> IO[bytes]:
                return gzip.GzipFile(fileobj=io.BytesIO(data))  # type: ignore[return-value]

            with open_gzip() as stream:
                head = _count_capped(stream, budget)
            inner = re.sub(r"\.gz$", "", name, flags=re.I) or "data"
            if is_archive(inner, head):
                if skipped is not None:
                    skipped.skip("nested archive not opened")
                return []
            return [(inner, open_gzip)]
    except ParseError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError, ValueError) as exc:
        # RuntimeError: encrypted member; NotImplementedError: compression method zipfile lacks.
        raise ParseError(f"attachment {name!r} is not a readable archive ({exc.__class__.__name__}: {exc})") from None
    return [(name, functools.partial(io.BytesIO, data))]


def extract(
    name: str, data: bytes, skipped: EventList | None = None, *, head: int | None = None
) -> list[tuple[str, bytes]]:
    """The files inside a zip or gzip attachment, one level deep, as bytes (see open_members);
    anything else is returned as is. With head, only each file's first `head` bytes (a detector's look)."""
    packed = data[:4] in (b"PK\x03\x04", b"PK\x05\x06") or data[:2] == b"\x1f\x8b"
    members = open_members(name, data, skipped)
    if not packed:
        return [(name, data if head is None else data[:head])]
    out = []
    for member, opener in members:
        with opener() as stream:
            out.append((member, stream.read() if head is None else stream.read(head)))
    return out


def read_lines(part: Message, opener: Opener, skipped: EventList | None = None) -> Iterator[str]:
    """The text lines of one file, read and decoded one at a time (a 190 MB CSV is never one string).

    A line over MAX_LINE_BYTES is dropped and counted in `skipped`.
    Each line is decoded as bytes_text decodes a whole file: the part's declared charset, UTF-8,
    then cp1252. Line ends ("\\n") are dropped; a "\\r" is left for Table, which reads it as
    bytes_text's callers do. UTF-16 and UTF-32 files, whose "\\n" is not one byte, are decoded whole.
    """
    try:
        charset = part.get_content_charset()
        if charset:
            codecs.lookup(charset)
    except Exception:  # noqa: BLE001 — an unparseable or unknown charset parameter
        charset = None
    with opener() as raw_stream:
        stream = io.BufferedReader(raw_stream, _READ_CHUNK) if not isinstance(raw_stream, io.BytesIO) else raw_stream
        first = stream.peek(4)[:4] if hasattr(stream, "peek") else b""
        if first[:2] in (b"\xff\xfe", b"\xfe\xff") or (charset or "").lower().startswith(("utf-16", "utf-32")):
            yield from bytes_text(part, stream.read()).split("\n")
            return
        codec = charset or "utf-8"
        start = True
        while line := stream.readline(MAX_LINE_BYTES):
            if len(line) == MAX_LINE_BYTES and not line.endswith(b"\n"):
                while line and not line.endswith(b"\n"):
                    line = stream.readline(MAX_LINE_BYTES)
                if skipped is not None:
                    skipped.skip(f"line over {MAX_LINE_BYTES // (1024 * 1024)} MB")
                start = False
                continue
            if start:
                start = False
                if line.startswith(b"\xef\xbb\xbf"):
                    line = line[3:]
            if line.endswith(b"\n"):
                line = line[:-1]
            try:
                yield line.decode(codec)
            except UnicodeDecodeError:
                yield mime.decode_bytes(line, charset)


def text_head(part: Message, opener: Opener, size: int) -> str:
    """The first `size` bytes of a file as text (cut at its last whole line when it is longer)."""
    with opener() as stream:
        data = stream.read(size + 1)
    if len(data) > size:
        data = data[:size]
        cut = data.rfind(b"\n")
        if cut > 0:
            data = data[: cut + 1]
    return bytes_text(part, data)


# --- CSV ----------------------------------------------------------------------------------------


def sniff_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _ends_inside_quotes(line: str, inside: bool, delimiter: str) -> bool:
    """Whether a CSV line leaves a quoted field open. Only run on the rare lines with an odd number
    of quote characters, so the per-character loop costs nothing on a well-formed 50,000-row file."""
    at_field_start = not inside
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if inside:
            if ch == '"':
                if i + 1 < n and line[i + 1] == '"':
                    i += 1
                else:
                    inside = False
        elif ch == '"' and at_field_start:
            inside = True
        at_field_start = ch == delimiter and not inside
        i += 1
    return inside


def iter_records(lines: Iterable[str], delimiter: str, skipped: EventList) -> Iterator[str]:
    """Logical CSV records from physical lines (a list, or a stream read one line at a time). A
    record whose opening quote never closes within _MAX_RECORD_LINES lines costs that one line
    (counted), not the rest of the file: the lines looked ahead at are read again."""
    source = iter(lines)
    again: collections.deque[str] = collections.deque()
    while True:
        line = again.popleft() if again else next(source, None)
        if line is None:
            return
        if line.count('"') % 2 == 0 or not _ends_inside_quotes(line, False, delimiter):
            yield line
            continue
        group, inside = [line], True
        while len(group) < _MAX_RECORD_LINES:
            following = again.popleft() if again else next(source, None)
            if following is None:
                break
            group.append(following)
            inside = _ends_inside_quotes(following, True, delimiter)
            if not inside:
                break
        if inside:
            skipped.skip("broken CSV quoting")
            again.extendleft(reversed(group[1:]))
            continue
        yield "\n".join(group)


def _normal_lines(lines: Iterable[str]) -> Iterator[str]:
    # What Table does to a whole text, line by line: "\r\n" and a lone "\r" end lines, NULs go.
    for line in lines:
        if "\x00" in line:
            line = line.replace("\x00", "")
        if "\r" in line:
            yield from line.removesuffix("\r").replace("\r\n", "\n").replace("\r", "\n").split("\n")
        else:
            yield line


class Table:
    """A CSV split into normalized headers and raw rows (lists of strings).

    text is the whole CSV, or its lines as read_lines gives them: then the rows are read as they
    are used, once, and the file is never held whole.
    """

    def __init__(self, text: str | Iterable[str], skipped: EventList) -> None:
        if isinstance(text, str):
            lines: Iterator[str] = iter(text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").split("\n"))
        else:
            lines = _normal_lines(text)
        first = next((line for line in lines if line.strip()), None)
        if first is None:
            raise ParseError("the CSV file is empty")
        self.delimiter = sniff_delimiter(first)
        header_row = next(csv.reader([first], delimiter=self.delimiter), [])
        self.raw_headers = [h.strip() for h in header_row]
        self.headers = [normalize_key(h) for h in header_row]
        self.header_line = first.strip()
        self._lines = lines
        self._skipped = skipped

    def rows(self) -> Iterator[list[str]]:
        reader = csv.reader(iter_records(self._lines, self.delimiter, self._skipped), delimiter=self.delimiter)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error:  # e.g. a field over csv.field_size_limit(); the reader moves on past it
                self._skipped.skip("unreadable CSV row")
                continue
            # Blank lines and ASCII-art rules ("+-----+") in pasted tables are layout, not bad rows.
            if row and any(cell.strip(" +-=|") for cell in row):
                yield row


def looks_like_csv(text: str) -> bool:
    """A header line naming an IP column and a time column, and at least one data line."""
    head = text.lstrip("\ufeff\r\n ")[:4096]
    first, _, rest = head.partition("\n")
    if not rest.strip():
        return False
    delimiter = sniff_delimiter(first)
    if first.count(delimiter) < 1:
        return False
    headers = [normalize_key(h) for h in next(csv.reader([first], delimiter=delimiter), [])]
    return find_column(headers, IP_COLUMNS) is not None and find_column(headers, TIME_COLUMNS) is not None


def time_columns(headers: list[str]) -> tuple[int | None, int | None, int | None]:
    """(single time column) or (date column, clock column); a full timestamp column wins."""
    date_col, clock_col = find_column(headers, _DATE_COLUMNS), find_column(headers, _CLOCK_COLUMNS)
    single = find_column(headers, [c for c in TIME_COLUMNS if c not in _DATE_COLUMNS + _CLOCK_COLUMNS])
    if single is None and date_col is not None and clock_col is not None:
        return None, date_col, clock_col
    return (single if single is not None else find_column(headers, TIME_COLUMNS)), None, None


_BARE_CLOCK = re.compile(r"^\d{1,2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?$")


def _quote(cell: str, delimiter: str) -> str:
    if delimiter in cell or '"' in cell or "\n" in cell:
        return '"' + cell.replace('"', '""') + '"'
    return cell


def table_events(table: Table, out: EventList, **options) -> None:
    """Append one ParsedEvent per good row of `table` to `out`; count the bad rows in `out`
    (iter_table_events, collected)."""
    out.extend(iter_table_events(table, out, **options))


def iter_table_events(
    table: Table,
    out: EventList,
    *,
    fmt: str,
    received_at: datetime | None,
    reporter: str,
    reporter_org: str,
    category_for: Callable[[dict[str, str]], str | None],
    default_category: str,
    confidence: float,
    default_confidence: float | None = None,
    id_prefix: str = "",
    prefer_ports: tuple[str, ...] = PORT_COLUMNS,
    clock_offset: str = "",
) -> Iterator[ParsedEvent]:
    """One ParsedEvent per good row of `table`, as the rows are read; the bad rows are counted in
    `out`. A table without IP and time columns raises ParseError here, before any row is read.

    `confidence` applies when category_for names a category, `default_confidence` when the row
    falls back to default_category. `clock_offset` ("+01:00") is the zone of a separate date and
    clock column pair whose clock carries none (AbuseHub's event_date/event_time are local time).
    """
    headers = table.headers
    ip_col = find_column(headers, IP_COLUMNS)
    time_col, date_col, clock_col = time_columns(headers)
    if ip_col is None or (time_col is None and date_col is None):
        raise ParseError(f"no IP and time columns among: {', '.join(table.raw_headers[:30])}")
    port_col = find_column(headers, prefer_ports)
    id_col = find_column(headers, ID_COLUMNS)
    width = len(headers)  # extra cells past the header are kept in the evidence, not in the record
    header_text = table.header_line
    needed = max(c for c in (ip_col, time_col, date_col, clock_col) if c is not None) + 1

    def rows() -> Iterator[ParsedEvent]:
        row_number = 0
        for row in table.rows():
            row_number += 1
            if len(row) < needed:
                out.skip("row with too few fields")
                continue
            ip = valid_ip(row[ip_col])
            if ip is None:
                out.skip(ip_refusal(row[ip_col]))
                continue
            if time_col is not None:
                when_text = row[time_col]
            else:
                clock = row[clock_col].strip()  # type: ignore[index]
                zone = clock_offset if clock_offset and _BARE_CLOCK.match(clock) else ""
                when_text = f"{row[date_col].strip()} {clock}{zone}"  # type: ignore[index]
            when = parse_when(when_text)
            if when is None:
                out.skip("unreadable time")
                continue
            problem = check_when(when, received_at)
            if problem:
                out.skip(problem)
                continue
            record = (
                dict(zip(headers, row, strict=False))
                if len(row) <= width
                else dict(zip(headers, row[:width], strict=True))
            )
            category = category_for(record)
            row_confidence = confidence
            if category is None:
                category = default_category
                row_confidence = confidence if default_confidence is None else default_confidence
            port = valid_port(row[port_col]) if port_col is not None and port_col < len(row) else None
            external_id = row[id_col].strip()[:200] if id_col is not None and id_col < len(row) else ""
            yield (
                ParsedEvent(
                    ip=ip,
                    occurred_at=when,
                    category=category,
                    format=fmt,
                    port=port,
                    reporter=reporter,
                    reporter_org=reporter_org,
                    external_id=external_id or (f"{id_prefix}#{row_number}" if id_prefix else ""),
                    evidence=header_text + "\n" + table.delimiter.join(_quote(c, table.delimiter) for c in row),
                    confidence=row_confidence,
                )
            )

    return rows()
