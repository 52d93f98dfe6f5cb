"""Shared helpers for the intake parsers: reading mail safely, dates, IP addresses, Received chains.

Everything here is pure (no database, no network) and none of it raises on bad input: a helper that
cannot make sense of its input returns an empty value (``""``, ``None``, ``[]``) instead. Parsers
build on these so that every format treats broken charsets, odd dates and invalid addresses alike.

Public helpers (for every parser module):

- ``parse_message(raw) -> EmailMessage`` — bytes to a message; non-mail bytes (a bare CSV or JSON body)
  come back wrapped as a text/plain message, see ``is_bare(msg)`` and ``bare_text(msg)``.
- ``part_text(part)``, ``body_text(msg)`` — decoded text of one part / of a whole message (HTML stripped).
- ``html_to_text(html)`` — visible text of an HTML document.
- ``header(msg, name)``, ``headers(msg, name)`` — decoded header values as plain ``str``.
- ``address(msg, name)`` — the bare ``user@domain`` of an address header.
- ``parse_date(value, *, now=None)`` — aware UTC datetime or None (odd formats; far-future rejected).
- ``canonical_ip(text)`` / ``find_ips(text)`` / ``find_ip_ports(text)`` — strictly validated addresses.
- ``received_hops(msg)`` / ``entry_hop(msg)`` — the Received chain, and the hop where mail entered
  the receiving (complaining) network.
- ``raw_items(msg)`` — every header as (name, undecoded value), safe on malformed headers.
- ``fields(part)`` — the ``Name: value`` fields of a message/feedback-report-like part.
- ``as_message_text(text)`` — a message parsed from pasted text starting with headers.
- ``as_message(part)`` — the attached message of a message/rfc822 or text/rfc822-headers part.
"""

from __future__ import annotations

import dataclasses
import email
import email.header
import email.headerregistry
import email.policy
import email.utils
import functools
import html
import ipaddress
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from email.message import EmailMessage, Message
from html.parser import HTMLParser

from publicsuffixlist import PublicSuffixList

from abusedesk.lib import addresses, dates

# A 25 MB report parses in well under a second, so the cap is only there to bound memory on absurd input.
MAX_MESSAGE_BYTES = 40 * 1024 * 1024
# IP and date scanning is linear in text size; a few MB is far more than any report's readable text.
MAX_SCAN_CHARS = 4 * 1024 * 1024

BARE_HEADER = "X-Abusedesk-Bare-Body"

_HEADER_LINE = re.compile(rb"^[\x21-\x39\x3b-\x7e]{1,76}:")
_MAIL_HEADERS = {
    b"received",
    b"message-id",
    b"mime-version",
    b"return-path",
    b"delivered-to",
    b"content-type",
    b"x-original-to",
    b"dkim-signature",
    b"authentication-results",
}
_COMMON_HEADERS = {b"from", b"to", b"subject", b"date", b"reply-to", b"sender", b"cc"}


# --- reading the message -------------------------------------------------------------------------


class _ReusingHeaderRegistry(email.headerregistry.HeaderRegistry):
    """policy.default parses a header value again on every msg.get(); the feed parser alone asks each
    part for its Content-Type several times, which was most of an ARF message's parse time. Parsed
    headers are immutable (str subclasses with read-only attributes), so equal (name, value) pairs
    share one object, within a message and across messages. Bounded: cleared when full."""

    _MAX_ENTRIES = 4096
    # Only short, structural values: a long Subject or Received line is rarely seen twice.
    _MAX_VALUE_CHARS = 300

    def __init__(self) -> None:
        super().__init__()
        self._parsed: dict[tuple[str, str], object] = {}

    def __call__(self, name: str, value: str):  # type: ignore[override]
        if len(value) > self._MAX_VALUE_CHARS:
            return super().__call__(name, value)
        key = (name, value)
        header = self._parsed.get(key)
        if header is None:
            header = super().__call__(name, value)
            if len(self._parsed) >= self._MAX_ENTRIES:
                self._parsed.clear()
            self._parsed[key] = header
        return header


POLICY = email.policy.default.clone(header_factory=_ReusingHeaderRegistry())


def looks_like_mail(raw: bytes) -> bool:
    """True when raw starts with an RFC 5322 header block (or an mbox "From " line).

    A bare feed body ("ip,timestamp,..." or JSON) fails this and gets wrapped instead. A key:value
    feed that happens to look like headers needs at least one mail-only header (Received, Message-ID,
    MIME-Version, ...) or two common ones (From, Subject, Date, ...) to count as mail.
    """
    head = raw[:65536].lstrip(b"\r\n")
    if head.startswith(b"From "):
        return True
    mail_only = common = 0
    for line in head.splitlines()[:200]:
        if not line.strip():
            break
        if line[:1] in (b" ", b"\t"):
            continue
        if not _HEADER_LINE.match(line):
            return False
        name = line.split(b":", 1)[0].strip().lower()
        mail_only += name in _MAIL_HEADERS
        common += name in _COMMON_HEADERS
    return mail_only >= 1 or common >= 2


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Bytes to text that never fails: the declared charset, then UTF-8, then cp1252/latin-1."""
    candidates = [c for c in (charset, "utf-8") if c]
    for cs in candidates:
        try:
            return data.decode(cs)
        except (LookupError, UnicodeDecodeError, TypeError):
            continue
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def max_message_bytes() -> int:
    """The cut: MAX_MESSAGE_BYTES, or the desk's INTAKE_MAX_MESSAGE_BYTES when that is higher (a desk
    that takes bigger mail must not have it cut here, silently, to its first 40 MB of rows)."""
    try:
        from django.conf import settings

        return max(MAX_MESSAGE_BYTES, int(getattr(settings, "INTAKE_MAX_MESSAGE_BYTES", 0)))
    except Exception:  # noqa: BLE001 — used without Django settings: the module's own limit
        return MAX_MESSAGE_BYTES


def parse_message(raw: bytes) -> EmailMessage:
    """Parse raw bytes into an EmailMessage (policy=email.policy.default); never raises.

    Bytes that do not start with a mail header block are wrapped: the result is a text/plain message
    whose body is the decoded bytes and which carries ``X-Abusedesk-Bare-Body: yes`` (``is_bare``), so a
    CSV or JSON posted by a feed still reaches the parsers that read bodies. Input past
    max_message_bytes() is cut before parsing.
    """
    if not isinstance(raw, bytes | bytearray):
        raw = str(raw).encode("utf-8", "replace")
    raw = bytes(raw[: max_message_bytes()])
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if looks_like_mail(raw):
        try:
            msg = email.message_from_bytes(raw, policy=POLICY)
            if isinstance(msg, EmailMessage):
                return msg
        except Exception:  # noqa: BLE001 — the stdlib parser is lenient, but a malformed input must not stop intake
            pass
    return _wrap_bare(raw)


def _wrap_bare(raw: bytes) -> EmailMessage:
    msg = EmailMessage()
    msg[BARE_HEADER] = "yes"
    msg["Content-Type"] = "text/plain; charset=utf-8"
    # Kept as an undecoded str payload: set_content would base64-encode megabytes for nothing.
    msg.set_payload(decode_bytes(raw))
    return msg


def is_bare(msg: Message) -> bool:
    """True for a message that parse_message built around non-mail bytes."""
    return bool(msg.get(BARE_HEADER))


def bare_text(msg: Message) -> str:
    """The text of a wrapped non-mail body ("" for real mail)."""
    if not is_bare(msg):
        return ""
    payload = msg.get_payload()
    return payload if isinstance(payload, str) else ""


def part_text(part: Message) -> str:
    """Decoded text of one non-multipart part; survives unknown or wrong charsets and bad encodings."""
    if is_bare(part):
        return bare_text(part)
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 — broken base64/qp: fall back to the undecoded text below
        payload = None
    if payload is None:
        raw = part.get_payload()
        if isinstance(raw, list):  # message/* parts: their content is a message, rendered as text
            return "\n".join(_message_as_text(m) for m in raw if isinstance(m, Message))
        return raw if isinstance(raw, str) else ""
    try:
        charset = part.get_content_charset()
    except Exception:  # noqa: BLE001
        charset = None
    return decode_bytes(payload, charset)


def _message_as_text(msg: Message) -> str:
    try:
        return msg.as_string(policy=email.policy.compat32.clone(max_line_length=0))
    except Exception:  # noqa: BLE001 — a message with undecodable parts: headers are still useful
        return "\n".join(f"{k}: {v}" for k, v in raw_items(msg))


class _TextExtractor(HTMLParser):
    _SKIP = {"script", "style", "head", "title"}
    _BREAK = {"br", "p", "div", "tr", "li", "table", "h1", "h2", "h3", "h4", "pre", "blockquote"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self._SKIP:
            self.skip += 1
        elif tag in self._BREAK:
            self.out.append("\n")
        elif tag in ("td", "th"):
            self.out.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self.skip:
            self.skip -= 1
        elif tag in self._BREAK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(data)


def html_to_text(markup: str) -> str:
    """Visible text of an HTML document: tags dropped, entities decoded, script/style removed."""
    parser = _TextExtractor()
    try:
        parser.feed(markup[:MAX_SCAN_CHARS])
        parser.close()
        text = "".join(parser.out)
    except Exception:  # noqa: BLE001 — HTMLParser is forgiving; this is the last resort
        text = html.unescape(re.sub(r"<[^>]*>", " ", markup[:MAX_SCAN_CHARS]))
    return re.sub(r"[ \t\r\f\v]+", " ", re.sub(r"\n\s*\n+", "\n\n", text)).strip()


def walk(msg: Message) -> Iterator[Message]:
    """msg.walk() that stops quietly on a broken structure and at MAX parts."""
    try:
        for count, part in enumerate(msg.walk()):
            if count > 500:
                return
            yield part
    except Exception:  # noqa: BLE001
        return


def content_type(part: Message) -> str:
    # Detectors ask every part for its type many times, and policy.default re-parses the
    # Content-Type header on each call; the answer cannot change, so keep it on the part.
    cached = getattr(part, "_abusedesk_content_type", None)
    if cached is not None:
        return cached
    try:
        value = part.get_content_type().lower()
    except Exception:  # noqa: BLE001
        value = "text/plain"
    part._abusedesk_content_type = value
    return value


def is_attachment(part: Message) -> bool:
    try:
        return (part.get_content_disposition() or "") == "attachment"
    except Exception:  # noqa: BLE001
        return False


def body_text(msg: Message, *, max_chars: int = MAX_SCAN_CHARS) -> str:
    """The readable text of a message: its text/plain parts, else its HTML parts as text.

    Parts inside attached messages are not included (see attached_messages); inline text attachments are.
    """
    if is_bare(msg):
        return bare_text(msg)[:max_chars]
    plain: list[str] = []
    htmls: list[str] = []
    size = 0
    for part in _own_parts(msg):
        ctype = content_type(part)
        if ctype == "text/plain" or (ctype.startswith("text/") and ctype not in ("text/html", "text/rfc822-headers")):
            text = part_text(part)
            plain.append(text)
        elif ctype == "text/html":
            text = html_to_text(part_text(part))
            htmls.append(text)
        else:
            continue
        size += len(text)
        if size > max_chars:
            break
    text = "\n\n".join(plain) if any(t.strip() for t in plain) else "\n\n".join(htmls)
    return text[:max_chars]


def _own_parts(msg: Message) -> Iterator[Message]:
    """Leaf parts of msg, not descending into attached message/* parts."""
    stack = [msg]
    count = 0
    while stack and count < 500:
        part = stack.pop(0)
        count += 1
        try:
            if part.is_multipart() and not content_type(part).startswith("message/"):
                stack[0:0] = [p for p in part.get_payload() if isinstance(p, Message)]
                continue
        except Exception:  # noqa: BLE001
            continue
        if not content_type(part).startswith("message/"):
            yield part


def attached_messages(msg: Message) -> list[Message]:
    """Messages attached to msg: message/rfc822 parts and text/rfc822-headers parts (headers only)."""
    found: list[Message] = []
    for part in walk(msg):
        if part is msg:
            continue
        ctype = content_type(part)
        if ctype in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers"):
            inner = as_message(part)
            if inner is not None:
                found.append(inner)
    return found


def as_message(part: Message) -> Message | None:
    """The message inside a message/rfc822 or text/rfc822-headers part, or None."""
    try:
        payload = part.get_payload()
    except Exception:  # noqa: BLE001
        return None
    if isinstance(payload, list):
        return payload[0] if payload and isinstance(payload[0], Message) else None
    text = part_text(part)
    return as_message_text(text) if text.strip() else None


def as_message_text(text: str) -> Message | None:
    """A message parsed from text that starts with a header block (quoted headers, a pasted mail)."""
    try:
        return email.message_from_string(text.lstrip()[:MAX_SCAN_CHARS], policy=POLICY)
    except Exception:  # noqa: BLE001
        return None


def fields(part: Message) -> list[tuple[str, str]]:
    """The ``Name: value`` fields of a machine-readable part such as message/feedback-report.

    The stdlib parses message/* parts as a sub-message, so the fields arrive as its headers; other
    content types (text/plain, or a body the parser kept as text) are read line by line.
    """
    try:
        payload = part.get_payload()
    except Exception:  # noqa: BLE001
        return []
    if isinstance(payload, list):
        if payload and isinstance(payload[0], Message):
            return [(k, _unfold(v)) for k, v in raw_items(payload[0])]
        return []
    return parse_fields(part_text(part))


def parse_fields(text: str) -> list[tuple[str, str]]:
    """``Name: value`` lines (with folded continuations) from text; stops at nothing, skips junk."""
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and out:
            name, value = out[-1]
            out[-1] = (name, f"{value} {line.strip()}")
            continue
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,60})\s*:\s?(.*)$", line)
        if m:
            out.append((m.group(1), m.group(2).strip()))
    return out


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]+", " ", str(value)).strip()


def raw_items(msg: Message) -> list[tuple[str, str]]:
    """(name, undecoded value) of every header, never parsing (and so never failing on) a value."""
    try:
        if isinstance(msg, EmailMessage):
            return [(k, str(v)) for k, v in msg.raw_items()]
        return [(k, str(v)) for k, v in msg._headers]  # compat32 messages keep raw values here
    except Exception:  # noqa: BLE001
        return []


# --- headers -------------------------------------------------------------------------------------


def decode_header_value(value: str) -> str:
    """RFC 2047 encoded-words to text, tolerating unknown charsets."""
    value = _unfold(value)
    if "=?" not in value:
        return value
    try:
        parts = email.header.decode_header(value)
    except Exception:  # noqa: BLE001
        return value
    out = []
    for chunk, cs in parts:
        out.append(decode_bytes(chunk, cs) if isinstance(chunk, bytes) else chunk)
    return "".join(out).strip()


def headers(msg: Message, name: str) -> list[str]:
    """All values of header `name`, decoded to plain str; malformed headers come back as their raw text."""
    lname = name.lower()
    return [decode_header_value(v) for k, v in raw_items(msg) if k.lower() == lname]


def header(msg: Message, name: str) -> str:
    """The first value of header `name` as plain text, "" if absent."""
    values = headers(msg, name)
    return values[0] if values else ""


@functools.lru_cache(maxsize=4096)
def _parseaddr_cached(value: str) -> tuple[str, str]:
    try:
        return email.utils.parseaddr(value)
    except Exception:  # noqa: BLE001
        return "", ""


def _parseaddr(value: str) -> tuple[str, str]:
    """email.utils.parseaddr, never raising; remembered for the header values mail repeats (a
    feedback loop's From is the same on every report: the stdlib's parse is slow pure Python)."""
    if len(value) > 512:  # a hostile header is parsed, not kept
        return _parseaddr_cached.__wrapped__(value)
    return _parseaddr_cached(value)


def address(msg: Message, name: str = "From") -> str:
    """The bare lower-case ``user@domain`` of an address header, "" if none can be read."""
    value = header(msg, name)
    if not value:
        return ""
    _, addr = _parseaddr(value)
    if not addr or "@" not in addr:
        m = re.search(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", value)
        addr = m.group(0) if m else ""
    return addr.strip().lower()[:254]


def display_name(msg: Message, name: str = "From") -> str:
    return _parseaddr(header(msg, name))[0].strip()[:200]


def message_id(msg: Message) -> str:
    """Message-ID without angle brackets, "" if absent."""
    return header(msg, "Message-ID").strip().strip("<>").strip()[:255]


# The Public Suffix List as the package bundles it: read from the wheel, never fetched. ICANN
# section only: a mail relay under a private suffix (amazonaws.com, blogspot.com) belongs to the
# suffix's operator for the purpose of "whose relay is this".
_PSL = PublicSuffixList(only_icann=True)


def org_domain(host: str) -> str:
    """The organisational (registrable) domain of a host name or address: mail.example.co.uk -> example.co.uk.

    An IP address, a single label or a bare public suffix comes back as given (lower case).
    """
    host = host.strip().strip(".").lower()
    if "@" in host:
        host = host.rsplit("@", 1)[1]
    if "." not in host or canonical_ip(host):
        return host
    return _PSL.privatesuffix(host) or host


# --- dates ---------------------------------------------------------------------------------------
# One reader for the whole project (abusedesk.lib.dates); re-exported here for the parsers.
ZONE_HOURS = dates.ZONE_HOURS
parse_date = dates.parse_date
find_dates = dates.find_dates


# --- IP addresses --------------------------------------------------------------------------------

# Candidate "words": runs of characters an address can be made of. Splitting on everything else
# (and validating the whole run) is what keeps 148.81.111.11.12 from yielding 148.81.111.11.
_WORD = re.compile(r"[0-9A-Za-z:.]+")
_V4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_V6_PREFIX = re.compile(r"^ipv6:", re.I)


def canonical_ip(text: str | None) -> str | None:
    """Strictly validated canonical text of one address ("[1.2.3.4]" and "IPv6:..." accepted), or None.

    IPv4-mapped IPv6 is unwrapped to IPv4; zone ids, networks (other than /32, /128) and leading-zero
    octets are refused (abusedesk.lib.addresses.parse_host says why).
    """
    return addresses.canonical(text)


def _word_ips(word: str) -> Iterator[tuple[str, int | None]]:
    word = _V6_PREFIX.sub("", word).rstrip(".")
    if not word or not any(c.isdigit() for c in word):
        return
    if ":" not in word:
        if _V4.match(word):
            ip = canonical_ip(word)
            if ip:
                yield ip, None
        return
    stripped = word.strip(":") if not word.startswith("::") else word.rstrip(":")
    if word.count(":") >= 2:
        ip = canonical_ip(stripped) or canonical_ip(word)
        if ip and ":" in ip or (ip and "." in word):
            yield ip, None
            return
    # "1.2.3.4:25", "IP:1.2.3.4", "src=..:1.2.3.4:443": an IPv4 piece, maybe followed by a port.
    pieces = word.split(":")
    for i, piece in enumerate(pieces):
        if _V4.match(piece):
            ip = canonical_ip(piece)
            if not ip:
                continue
            port = None
            if i + 1 < len(pieces) and pieces[i + 1].isdigit() and 0 < int(pieces[i + 1]) <= 65535:
                port = int(pieces[i + 1])
            yield ip, port


def find_ip_ports(text: str, *, max_chars: int = MAX_SCAN_CHARS) -> list[tuple[str, int | None]]:
    """(ip, port-or-None) for every valid address in text, first occurrence order, no duplicates.

    An IP seen once with a port and once without keeps the port.
    """
    found: dict[str, int | None] = {}
    text = text[:max_chars]
    for m in _WORD.finditer(text):
        word = m.group(0)
        if len(word) < 3 or len(word) > 60:
            continue
        follow = text[m.end() : m.end() + 2]
        if follow[:1] == "%" or (follow[:1] == "/" and follow[1:2].isdigit()):
            # "fe80::1%eth0" names an interface, "192.0.2.0/24" a network: neither is one offender,
            # and reading the network's first address would blame whoever holds it.
            continue
        for ip, port in _word_ips(word):
            if ip not in found or (found[ip] is None and port is not None):
                found[ip] = port
    return list(found.items())


def find_ips(text: str, *, max_chars: int = MAX_SCAN_CHARS) -> list[str]:
    """Every valid IPv4/IPv6 address in text (canonical, de-duplicated, in order of appearance)."""
    return [ip for ip, _ in find_ip_ports(text, max_chars=max_chars)]


def is_loopback_or_unspecified(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    return addr.is_loopback or addr.is_unspecified


def refused_ips(text: str, *, max_chars: int = MAX_SCAN_CHARS) -> list[tuple[str, str]]:
    """(what was written, why it is refused) for each zone-id address and each network in text."""
    out: list[tuple[str, str]] = []
    for m in re.finditer(r"[0-9A-Fa-f:.]{3,45}(?:%[\w.-]{1,20}|/\d{1,3})(?![\w/])", text[:max_chars]):
        ip, reason = addresses.parse_host(m.group(0))
        if ip is None and reason and any(c.isdigit() for c in m.group(0).split("/")[0].split("%")[0]):
            head = m.group(0).split("/")[0].split("%")[0]
            if canonical_ip(head):
                out.append((m.group(0), reason))
    return out


# --- Received chains ------------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class Hop:
    """One Received header: who handed the mail over (from_*), who took it (by_host), when."""

    raw: str
    from_host: str = ""
    from_ip: str | None = None
    by_host: str = ""
    at: datetime | None = None


_HELO_ARG = re.compile(r"(?i)(?:\bhelo=|\be?helo\s+)\S+")
_CLAUSE_END = {"by", "with", "id", "for", "via"}


def _split_top(text: str) -> tuple[list[str], list[str]]:
    """Top-level words and parenthesised comments of a Received clause."""
    words: list[str] = []
    comments: list[str] = []
    depth = 0
    buf = ""
    for ch in text:
        if ch == "(":
            if depth == 0 and buf.strip():
                words.extend(buf.split())
                buf = ""
            depth += 1
            if depth == 1:
                continue
        elif ch == ")" and depth:
            depth -= 1
            if depth == 0:
                comments.append(buf)
                buf = ""
                continue
        buf += ch
    if buf.strip():
        (comments if depth else words).extend([buf] if depth else buf.split())
    return words, comments


_KEYWORD = re.compile(r"[()]|(?:(?<=\s)|^)(from|by|with|id|for|via)(?=\s)", re.I)


def _clauses(head: str) -> tuple[str | None, str]:
    """(from-clause text or None, by-host) of a Received value, keywords read at parenthesis depth 0."""
    depth = 0
    from_start: int | None = None
    from_clause: str | None = None
    by_host = ""
    for km in _KEYWORD.finditer(head):
        tok = km.group(0)
        if tok == "(":
            depth += 1
            continue
        if tok == ")":
            depth = max(0, depth - 1)
            continue
        if depth:
            continue
        word = tok.lower()
        if word == "from" and from_start is None and from_clause is None:
            from_start = km.end()
            continue
        if from_start is not None and from_clause is None:
            from_clause = head[from_start : km.start()]
        if word == "by" and not by_host:
            bm = re.match(r"\s+([A-Za-z0-9._-]+)", head[km.end() :])
            by_host = bm.group(1).lower() if bm else ""
    if from_start is not None and from_clause is None:
        from_clause = head[from_start:]
    return from_clause, by_host


def parse_received(value: str, *, now: datetime | None = None) -> Hop:
    """One Received header value -> Hop. Understands Postfix, Sendmail, Exim, qmail, Exchange and Yahoo forms."""
    text = _unfold(value)[:4000]
    hop = Hop(raw=text)
    head, _, date_part = text.rpartition(";")
    if not head:
        head, date_part = text, ""
    hop.at = parse_date(date_part, now=now)
    from_clause, by_host = _clauses(head)
    hop.by_host = by_host
    if from_clause is not None:
        words, comments = _split_top(from_clause)
        # The address the receiving MTA saw sits in the comment; the bare word is the sender's HELO,
        # which it chooses itself ("from 127.0.0.1 (EHLO host) (10.17.18.26)" at Yahoo).
        comment_ips = [ip for c in comments for ip in find_ips(_HELO_ARG.sub(" ", c))]
        word_ips = [ip for w in words[:1] for ip in find_ips(w)]
        hop.from_ip = (comment_ips or word_ips or [None])[0]
        # The reverse-DNS name in the comment is the receiver's view; the HELO word is the sender's
        # claim, used only when the comment has no name (and never when rDNS said "unknown").
        first_comment = _HELO_ARG.sub(" ", comments[0]) if comments else ""
        rdns = re.match(r"\s*([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)", first_comment)
        name = rdns.group(1).lower() if rdns else ""
        word = words[0].strip("[]").lower() if words else ""
        if name and "." in name and not canonical_ip(name):
            hop.from_host = name
        elif name != "unknown" and word != "unknown" and word and not canonical_ip(word):
            hop.from_host = word
    return hop


def received_hops(msg: Message, *, now: datetime | None = None) -> list[Hop]:
    """The Received headers of msg, newest (closest to the complainant) first."""
    return [parse_received(v, now=now) for v in headers(msg, "Received")[:100]]


def received_hops_from_text(text: str, *, now: datetime | None = None) -> list[Hop]:
    """Received headers quoted inside text (forwarded or pasted, possibly "> "-quoted), newest first."""
    hops: list[Hop] = []
    current: list[str] | None = None
    for line in text[:MAX_SCAN_CHARS].splitlines():
        line = re.sub(r"^(?:\s*>)+ ?", "", line)
        if re.match(r"(?i)^received:\s", line):
            if current:
                hops.append(parse_received(" ".join(current), now=now))
            current = [line.split(":", 1)[1].strip()]
        elif current is not None and line[:1] in (" ", "\t") and line.strip():
            current.append(line.strip())
        elif current is not None:
            hops.append(parse_received(" ".join(current), now=now))
            current = None
        if len(hops) >= 100:
            break
    if current:
        hops.append(parse_received(" ".join(current), now=now))
    return hops


def _host_org(host: str) -> str:
    # Only a dotted name says whose host it is: an address or a single label ("fed1rmimpi210") says nothing.
    host = (host or "").strip().strip("[]").lower()
    if "." not in host or canonical_ip(host):
        return ""
    return org_domain(host)


def entry_index(hops: list[Hop], *, trusted: Iterable[str] = ()) -> int | None:
    """Index of the hop where the mail entered the receiving side's trusted boundary, or None.

    Walks from the newest hop. Inside the boundary: the recipient's organisation (the first "by"
    host with a dotted name: Gmail's newest hops are "by 2002:a05:...", an address that names
    nobody), the organisations in ``trusted`` (the complainant's own domain), and every
    organisation whose host handed the mail on inside it. Never the entry: hops handed over from
    private, loopback, link-local, unique-local or CGNAT-shared addresses (a provider's 10.x and
    internal IPv6 relays), or by a single-label name only the receiving network resolves.

    The recipient's MX chain may span organisations: a filtering service in front of the mailbox,
    or a mailbox provider that forwarded the mail. A sender whose organisation is also the "by"
    of the next older hop received the mail itself and passed it on: the walk goes on through it,
    once per organisation. If nothing public is found beyond (the older hop came from a LAN
    address), the first outside hop is the entry after all. The first hop handed over by anybody
    else is where the mail came in from outside.
    """
    ours = {org for org in (org_domain(t) for t in trusted if t) if org}
    for hop in hops:
        org = _host_org(hop.by_host)
        if org:
            ours.add(org)
            break
    first_outside: int | None = None
    relayed: set[str] = set()
    for i, hop in enumerate(hops):
        if hop.from_ip is None:
            continue
        by_org = _host_org(hop.by_host)
        if addresses.is_internal(hop.from_ip):
            if by_org and (by_org in ours or i == 0):
                ours.add(by_org)
            continue
        if hop.from_host and "." not in hop.from_host and (by_org in ours or not by_org):
            continue
        from_org = _host_org(hop.from_host)
        if from_org and from_org in ours:
            if by_org:
                ours.add(by_org)
            continue
        if first_outside is None:
            first_outside = i
        older = next((h for h in hops[i + 1 :] if h.from_ip is not None or _host_org(h.by_host)), None)
        if from_org and from_org not in relayed and older is not None and _host_org(older.by_host) == from_org:
            relayed.add(from_org)
            ours.add(from_org)
            continue
        return i
    return first_outside


def entry_hop(hops: list[Hop], *, trusted: Iterable[str] = ()) -> Hop | None:
    """The hop where mail entered the receiving network (see entry_index)."""
    i = entry_index(hops, trusted=trusted)
    return hops[i] if i is not None else None


def cap(text: str, limit: int = 8000) -> str:
    """Text cut to `limit` characters (evidence must stay small)."""
    return text if len(text) <= limit else text[: limit - 20] + "\n[… cut …]"
