"""Free-text complaints: a person writes "spam from 198.51.100.7 at 14:02", often with forwarded headers.

Where offenders come from, in order; the first rule that finds any decides, so a mail that names
one offender yields exactly that one:
1. explicit offender lines: "Source-IP: ...", "IP: ...", "Offending IP address: ...", "Source: ...",
   "Attacker: ..." (a network or a zone-id address there is refused with its reason, never read
   as its first address);
2. a list or table of incidents: two or more lines that each give an address and a time: every
   address, each with its own time;
3. the entry hop of each attached message's Received chain, else of Received headers pasted or
   quoted into the text: the host that handed the mail to the complainant's side (see
   mime.entry_index: never a private/internal hop, never the complainant's own relays);
4. addresses written in the text, ranked (a line that says "IP", "from", "source", "attack" first;
   ``are_ours`` puts addresses inside our allocations first); events[0] is the best guess.
Never candidates: pasted whois/RDAP text (whois.py), the victim's side ("Destination IP:", "our
server 192.0.2.80"), traceroute hops, loopback/unspecified addresses, the chain's other hops.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.message import EmailMessage, Message

from . import mime, whois
from .base import ParsedEvent, ParseError

FORMAT = "freetext"
MAX_CANDIDATES = 20

CONF_EXPLICIT = 0.8
CONF_LIST = 0.75
CONF_ATTACHED_ENTRY = 0.7
CONF_QUOTED_ENTRY = 0.6
CONF_TEXT_KEYWORD = 0.5
CONF_TEXT = 0.4
OURS_BONUS = 0.25
OURS_CAP = 0.95

# Order breaks ties: the more specific categories first, spam (the commonest complaint) last.
CATEGORY_WORDS: list[tuple[str, re.Pattern[str]]] = [
    ("phishing", re.compile(r"phish|fake (?:login|bank|page|site)|credential harvest", re.I)),
    ("malware", re.compile(r"malware|virus|trojan|ransomware|malicious (?:file|attachment|download)", re.I)),
    ("botnet", re.compile(r"botnet|\bc&c\b|\bc2 server|command[- ]and[- ]control|\bzombie|\bmirai\b", re.I)),
    ("ddos", re.compile(r"\bddos\b|denial[- ]of[- ]service|\bdos attack|\bsyn flood|udp flood|amplification", re.I)),
    (
        "login_attack",
        re.compile(
            r"brute[- ]?forc|failed (?:login|password)|login attempts|password guessing|dictionary attack"
            r"|credential stuffing|(?:ssh|rdp|smtp auth) attack",
            re.I,
        ),
    ),
    ("scanning", re.compile(r"port ?scan|\bscann(?:ing|er)|\bprob(?:e|es|ing)\b", re.I)),
    ("copyright", re.compile(r"copyright|\bdmca\b|infring|piracy|pirated|bittorrent|\btorrent", re.I)),
    (
        "vulnerable_service",
        re.compile(r"open (?:dns )?resolver|open (?:ntp|memcached|relay|proxy)|vulnerab|exposed service", re.I),
    ),
    ("spam", re.compile(r"\bspam|unsolicited|junk mail|bulk mail|unsubscribe", re.I)),
]
_KEYWORD_LINE = re.compile(r"\bip\b|\bfrom\b|source|attack|address|originat|offend|host", re.I)
# A labelled line naming the victim's side ("- Targeted Range: 172.16.30.0/24" in Webiron's reports,
# "Destination IP: ...") names the complainant's own addresses, never the source of the abuse.
_VICTIM_LINE = re.compile(
    r"^[\s>*\-•]*(?:target(?:ed)?|destination|dest|dst|victim|attacked)(?:[ _-]?(?:ip|range|host|address|network|net))*"
    r"\s*[:=]",
    re.I,
)
# Traceroute hops ("9  10.0.0.1 (10.0.0.1)", "3  ge-6-20.car1.net (213.242.67.105)  1.2 ms") are the
# networks on the way to the reported host, not the host (Netcraft's takedown notices list them).
_TRACEROUTE_HEADING = re.compile(r"trace\s?route|tracert", re.I)
_TRACEROUTE_HOP = re.compile(r"^\s*\d{1,2}\.?\s+(?:\S+\s+)?\(?[0-9A-Fa-f.:]+\)?(?:\s+.*\bms\b.*|\s+\*.*)?\s*$")
_PORT_NEAR = re.compile(r"\bport\s*[:#]?\s*(\d{1,5})\b", re.I)


@dataclasses.dataclass
class _Candidate:
    ip: str
    confidence: float
    why: str
    order: int
    port: int | None = None
    at: datetime | None = None
    context: str = ""


def detect(msg: EmailMessage, raw: bytes) -> bool:
    """The fallback: anything can be a person's complaint."""
    return True


# "Source-IP: 198.51.100.7", "IP address = ...", "- Offending IP: ...", "| Attacker | 198.51.100.7 |".
_OFFENDER_LABEL = (
    r"(?:source|src|sender|client|remote|originating|origin|offending|abusive|attacking|attacker|offender|"
    r"reported|infected|spamming|malicious|suspicious|compromised)?[ _-]?"
    r"(?:ip(?:v[46])?(?:[ _-]?addr(?:ess)?)?|address|host|source|attacker|offender)(?:[ _-]?ip)?"
)
_OFFENDER_LINE = re.compile(rf"^[\s>*\-•|#]*(?P<label>{_OFFENDER_LABEL})\s*(?:\|\s*|[:=#]\s*)(?P<value>\S.*)$", re.I)
_LABEL_WORDS = re.compile(r"source|src|ip|offend|attack|abusive|infected|sender|client|origin", re.I)
# Prose: "the offending IP address is 198.51.100.7", "offending IP: ...".
_OFFENDING_PROSE = re.compile(
    r"\boffending\s+(?:ip(?:v[46])?\s*(?:address)?|address|host)\b\W{0,3}(?:is|was|:)?\s*", re.I
)
# "our server 192.0.2.80", "to our mail server at ...", "my host": the complainant's own machine.
_VICTIM_CONTEXT = re.compile(
    r"\b(?:our|my|victim'?s?|target(?:ed)?|against|destination)\b(?:(?!\b(?:from|by|source)\b)[\w\s\-,/]){0,30}$",
    re.I,
)
_LABELLED_PORT = re.compile(r"^[\s>*\-•]*(?:source[ _-]?port|src[ _-]?port|port)\s*[:=]\s*(\d{1,5})\b", re.I)
MAX_LIST_EVENTS = 10_000


def parse(
    msg: EmailMessage,
    raw: bytes,
    *,
    received_at: datetime,
    are_ours: Callable[[Iterable[str]], set[str]] | None = None,
) -> list[ParsedEvent]:
    now = received_at or datetime.now(UTC)
    subject = mime.header(msg, "Subject")
    text = mime.body_text(msg)
    reporter = mime.address(msg, "Reply-To") if mime.is_bare(msg) else mime.address(msg, "From")
    lines = text.splitlines()
    network_ips = whois.network_ips(text)
    skip_lines = _skipped_lines(lines)

    attached = mime.attached_messages(msg)
    trusted = [reporter] if reporter else []
    chain: list[_Candidate] = []
    chain_ips: set[str] = set()
    for inner in attached[:10]:
        _add_chain(
            mime.received_hops(inner, now=now), CONF_ATTACHED_ENTRY, "attached message", chain, chain_ips, trusted
        )
    if not chain:
        quoted = mime.received_hops_from_text(text, now=now)
        _add_chain(quoted, CONF_QUOTED_ENTRY, "quoted headers", chain, chain_ips, trusted)

    explicit, refused = _explicit(lines, skip_lines, network_ips, now)
    rows = [] if explicit else _incident_rows(lines, skip_lines, network_ips | chain_ips, now)
    if explicit:
        cands = explicit
    elif rows:
        cands = rows
    elif chain:
        cands = chain
    else:
        cands = _text_candidates(lines, skip_lines, network_ips | chain_ips, now)
    if not cands:
        if refused:
            raise ParseError("; ".join(f"{written}: {why}" for written, why in refused[:5]))
        if not text.strip() and not attached:
            raise ParseError("the message has no readable text")
        if network_ips:
            raise ParseError("the only addresses in the text are pasted whois/RDAP network data, not offenders")
        raise ParseError("no valid IP address in the text, quoted headers or attachments")

    ranked = cands if cands is rows else _rank(cands, are_ours)[:MAX_CANDIDATES]
    fallback_time, time_note = _fallback_time(msg, attached, text, now)
    category, category_sure = _category(subject, text, has_chain=bool(attached) or "received:" in text.lower())
    excerpt = mime.cap(f"Subject: {subject}\n\n{text}", 6000)
    if refused:
        excerpt = "".join(f"[refused {w[:60]}: {why}]\n" for w, why in refused[:5]) + excerpt
    org = mime.display_name(msg) or (mime.org_domain(reporter) if reporter else "")
    if len(ranked) == 1 and ranked[0].port is None:
        ranked[0].port = _labelled_port(lines)
    events = []
    for cand in ranked[:MAX_LIST_EVENTS]:
        confidence = cand.confidence if category_sure else cand.confidence * 0.8
        occurred_at = cand.at or fallback_time
        note = f"[candidate: {cand.why}; {'time from ' + time_note if cand.at is None else 'time found with it'}]"
        if cand.context:
            note += f"\n[line: {cand.context}]"
        events.append(
            ParsedEvent(
                ip=cand.ip,
                port=cand.port,
                occurred_at=occurred_at,
                category=category,
                format=FORMAT,
                reporter=reporter,
                reporter_org=org,
                external_id=mime.message_id(msg),
                evidence=mime.cap(note + "\n\n" + excerpt),
                confidence=round(confidence, 3),
            )
        )
    return events


def _skipped_lines(lines: list[str]) -> set[int]:
    """Line numbers that never name an offender: Received headers (read as chains), traceroutes,
    the victim's labelled lines, pasted whois/RDAP records."""
    out: set[int] = set()
    in_traceroute = False
    in_received = False
    for number, line in enumerate(lines):
        if re.match(r"^(?:\s*>)*\s*received:", line, re.I):
            in_received = True
            out.add(number)
            continue
        if in_received and line.strip(" \t>") and re.match(r"^(?:\s*>)*[ \t]+", line):
            out.add(number)
            continue
        in_received = False
        if _TRACEROUTE_HEADING.search(line):
            in_traceroute = True
            out.add(number)
            continue
        if in_traceroute:
            if _TRACEROUTE_HOP.match(line):
                out.add(number)
                continue
            if line.strip():
                in_traceroute = False  # the first line that is not a hop ends the trace
        if _VICTIM_LINE.match(line) or whois.is_whois_line(line):
            out.add(number)
    return out


def _near_date(lines: list[str], number: int, now: datetime) -> datetime | None:
    on_line = mime.find_dates(lines[number], now=now, limit=1)
    if on_line:
        return on_line[0]
    near = "\n".join(lines[max(0, number - 2) : number + 3])
    dates = mime.find_dates(near, now=now, limit=1)
    return dates[0] if dates else None


def _port_on(line: str, port: int | None) -> int | None:
    if port is not None:
        return port
    pm = _PORT_NEAR.search(line)
    return int(pm.group(1)) if pm and 0 < int(pm.group(1)) <= 65535 else None


def _explicit(
    lines: list[str], skip: set[int], exclude: set[str], now: datetime
) -> tuple[list[_Candidate], list[tuple[str, str]]]:
    """Addresses on explicit offender lines, and what such lines gave that was refused (and why)."""
    found: dict[str, _Candidate] = {}
    refused: list[tuple[str, str]] = []
    for number, line in enumerate(lines):
        if number in skip:
            continue
        value = None
        m = _OFFENDER_LINE.match(line)
        if m and _LABEL_WORDS.search(m.group("label")):
            value = m.group("value")
        else:
            pm = _OFFENDING_PROSE.search(line)
            if pm:
                value = line[pm.end() :]
        if value is None:
            continue
        head = value.strip().split()[0].strip(",;") if value.strip() else ""
        bad = mime.refused_ips(head)
        if bad:
            refused.extend(bad)
            continue
        for ip, port in mime.find_ip_ports(value)[:1]:
            if ip in exclude or mime.is_loopback_or_unspecified(ip):
                continue
            if ip not in found:
                found[ip] = _Candidate(
                    ip,
                    CONF_EXPLICIT,
                    "named on an explicit offender line",
                    len(found),
                    port=_port_on(line, port),
                    at=_near_date(lines, number, now),
                    context=line.strip()[:300],
                )
    return list(found.values()), refused


def _incident_rows(lines: list[str], skip: set[int], exclude: set[str], now: datetime) -> list[_Candidate]:
    """A list or table of incidents: lines that each carry addresses and a time of their own.

    Two such lines at least (one line with a time is an ordinary sentence, rule 4 reads it).
    One event per (address, time); the same address at another time is another incident.
    """
    rows: list[_Candidate] = []
    seen: set[tuple[str, datetime]] = set()
    for number, line in enumerate(lines):
        if number in skip or len(rows) >= MAX_LIST_EVENTS:
            continue
        pairs = [(ip, port) for ip, port in mime.find_ip_ports(line) if ip not in exclude]
        pairs = [(ip, port) for ip, port in pairs if not mime.is_loopback_or_unspecified(ip)]
        if not pairs or _victim_before(line, pairs[0][0], lines[number - 1] if number else ""):
            continue
        dates = mime.find_dates(line, now=now, limit=1)
        if not dates:
            continue
        for ip, port in pairs:
            if (ip, dates[0]) in seen:
                continue
            seen.add((ip, dates[0]))
            rows.append(
                _Candidate(
                    ip,
                    CONF_LIST,
                    "a row of a list of incidents",
                    len(rows),
                    port=_port_on(line, port),
                    at=dates[0],
                    context=line.strip()[:300],
                )
            )
    return rows if len(seen) >= 2 and len({r.context for r in rows}) >= 2 else []


def _victim_before(line: str, ip: str, previous: str) -> bool:
    at = line.find(ip)
    before = (previous.strip()[-40:] + " " + line[: max(0, at)]) if at >= 0 else ""
    return bool(_VICTIM_CONTEXT.search(before))


def _text_candidates(lines: list[str], skip: set[int], exclude: set[str], now: datetime) -> list[_Candidate]:
    candidates: dict[str, _Candidate] = {}
    victims: set[str] = set()
    for number, line in enumerate(lines):
        if number in skip:
            continue
        if len(candidates) >= MAX_CANDIDATES * 3:
            break
        for ip, port in mime.find_ip_ports(line):
            if ip in exclude or mime.is_loopback_or_unspecified(ip):
                continue
            if _victim_before(line, ip, lines[number - 1] if number else ""):
                victims.add(ip)
            keyword = bool(_KEYWORD_LINE.search(line))
            confidence = CONF_TEXT_KEYWORD if keyword else CONF_TEXT
            current = candidates.get(ip)
            at = _near_date(lines, number, now)
            if current is None or confidence > current.confidence:
                candidates[ip] = _Candidate(
                    ip,
                    confidence,
                    "named in the text",
                    current.order if current else len(candidates),
                    port=_port_on(line, port),
                    at=at,
                    context=line.strip()[:300],
                )
            elif at and current.at and at < current.at:
                # One address listed under several headings with a time each (Project Honey Pot: comment
                # spam at 10:00, "other suspicious" at 00:00): the incident began at the earliest.
                current.at = at
    kept = [c for c in candidates.values() if c.ip not in victims]
    return kept or list(candidates.values())


def _labelled_port(lines: list[str]) -> int | None:
    for line in lines:
        m = _LABELLED_PORT.match(line)
        if m and 0 < int(m.group(1)) <= 65535:
            return int(m.group(1))
    return None


def _add_chain(
    hops: list[mime.Hop],
    entry_conf: float,
    where: str,
    out: list[_Candidate],
    chain_ips: set[str],
    trusted: list[str],
) -> None:
    chain_ips.update(hop.from_ip for hop in hops if hop.from_ip)
    index = mime.entry_index(hops, trusted=trusted)
    if index is None:
        return
    entry = hops[index]
    if any(c.ip == entry.from_ip for c in out):
        return
    # Only the entry: hops newer than it are the complainant's side, older ones the sender's own
    # claims (forgeable), so neither is a candidate.
    out.append(
        _Candidate(
            entry.from_ip,
            entry_conf,
            f"entry hop of the {where}' Received chain",
            len(out),
            at=entry.at,
            context=entry.raw[:300],
        )
    )


def _rank(cands: list[_Candidate], are_ours: Callable[[Iterable[str]], set[str]] | None) -> list[_Candidate]:
    ours: set[str] = set()
    if are_ours is not None and cands:
        try:
            ours = set(are_ours([cand.ip for cand in cands]))  # one batched look-up per message
        except Exception:  # noqa: BLE001 — a failing hint must not lose the report
            ours = set()
        for cand in cands:
            if cand.ip in ours:
                cand.confidence = min(OURS_CAP, cand.confidence + OURS_BONUS)
                cand.why += ", inside our address space"
    return sorted(cands, key=lambda c: (c.ip not in ours, -c.confidence, c.order))


def _fallback_time(msg: Message, attached: list[Message], text: str, now: datetime) -> tuple[datetime, str]:
    for inner in attached:
        at = mime.parse_date(mime.header(inner, "Date"), now=now)
        if at:
            return at, "the attached message's Date"
    dates = mime.find_dates(text, now=now, limit=1)
    if dates:
        return dates[0], "the first date in the text"
    at = mime.parse_date(mime.header(msg, "Date"), now=now)
    if at:
        return at, "the complaint's Date"
    return now, "the time it was received"


def text_category(subject: str, text: str) -> str | None:
    """The category a report's own words name most ("... known botware (IE: botnets)"), or None.

    For structured formats whose fields name no category: the prose around them often does.
    """
    category, sure = _category(subject, text, has_chain=False)
    return category if sure else None


def _category(subject: str, text: str, *, has_chain: bool) -> tuple[str, bool]:
    scores: dict[str, int] = {}
    sample = text[:200_000]
    for category, pattern in CATEGORY_WORDS:
        score = 3 * len(pattern.findall(subject)) + len(pattern.findall(sample))
        if score:
            scores[category] = score
    if scores:
        best = max(scores.values())
        return next(c for c, _ in CATEGORY_WORDS if scores.get(c) == best), True
    # Forwarded mail headers with no other hint: a person complaining about a mail means spam.
    return ("spam", False) if has_chain else ("other", False)
