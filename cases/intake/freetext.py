"""Free-text complaints: a person writes "spam from 198.51.100.7 at 14:02", often with forwarded headers.

There is no structure to trust, so this parser proposes candidates instead of facts: every address it
finds becomes an event with a confidence, best first. The caller (which can ask the database) passes
``are_ours`` so that addresses inside our allocations rank first; events[0] is the best guess and the
rest are alternatives a person can pick from.

Where addresses come from, most trusted first:
1. the entry hop of an attached message's Received chain (the host that handed the mail to the complainant);
2. the entry hop of Received headers pasted or quoted into the text;
3. addresses written in the text, a little higher when the line says "IP", "from", "source", "attack".
Relays inside the complainant's network (hops after the entry) are left out: they are the complainant's.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.message import EmailMessage, Message

from . import mime
from .base import ParsedEvent, ParseError

FORMAT = "freetext"
MAX_CANDIDATES = 20

CONF_ATTACHED_ENTRY = 0.7
CONF_QUOTED_ENTRY = 0.6
CONF_TEXT_KEYWORD = 0.5
CONF_TEXT = 0.4
CONF_UPSTREAM = 0.3
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
    candidates: dict[str, _Candidate] = {}
    excluded: set[str] = set()
    order = 0

    def add(ip: str, confidence: float, why: str, **extra) -> None:
        nonlocal order
        if mime.is_loopback_or_unspecified(ip) or ip in excluded:
            return
        current = candidates.get(ip)
        if current is None or confidence > current.confidence:
            order += 1
            candidates[ip] = _Candidate(ip, confidence, why, current.order if current else order, **extra)
        elif extra.get("at") and current.at and extra["at"] < current.at:
            # One address listed under several headings with a time each (Project Honey Pot: comment
            # spam at 10:00, "other suspicious" at 00:00): the incident began at the earliest.
            current.at = extra["at"]

    attached = mime.attached_messages(msg)
    for inner in attached[:10]:
        _add_chain(mime.received_hops(inner, now=now), CONF_ATTACHED_ENTRY, "attached message", add, excluded)
    _add_chain(mime.received_hops_from_text(text, now=now), CONF_QUOTED_ENTRY, "quoted headers", add, excluded)

    lines = text.splitlines()
    in_traceroute = False
    for number, line in enumerate(lines):
        if len(candidates) >= MAX_CANDIDATES * 3:
            break
        if re.match(r"^(?:\s*>)*\s*received:", line, re.I):
            continue  # already read as part of a chain
        if _TRACEROUTE_HEADING.search(line):
            in_traceroute = True
            continue
        if in_traceroute:
            if _TRACEROUTE_HOP.match(line):
                continue
            if line.strip():
                in_traceroute = False  # the first line that is not a hop ends the trace
        if _VICTIM_LINE.match(line):
            continue
        for ip, port in mime.find_ip_ports(line):
            near = "\n".join(lines[max(0, number - 2) : number + 3])
            if port is None:
                pm = _PORT_NEAR.search(line)
                port = int(pm.group(1)) if pm and 0 < int(pm.group(1)) <= 65535 else None
            dates = mime.find_dates(near, now=now, limit=1)
            keyword = bool(_KEYWORD_LINE.search(line))
            add(
                ip,
                CONF_TEXT_KEYWORD if keyword else CONF_TEXT,
                "named in the text",
                port=port,
                at=dates[0] if dates else None,
                context=line.strip()[:300],
            )

    if not candidates:
        if not text.strip() and not attached:
            raise ParseError("the message has no readable text")
        raise ParseError("no valid IP address in the text, quoted headers or attachments")

    ranked = _rank(list(candidates.values()), are_ours)[:MAX_CANDIDATES]
    fallback_time, time_note = _fallback_time(msg, attached, text, now)
    category, category_sure = _category(subject, text, has_chain=bool(attached) or "received:" in text.lower())
    reporter = mime.address(msg, "Reply-To") if mime.is_bare(msg) else mime.address(msg, "From")
    excerpt = mime.cap(f"Subject: {subject}\n\n{text}", 6000)
    events = []
    for cand in ranked:
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
                reporter_org=mime.display_name(msg) or (mime.org_domain(reporter) if reporter else ""),
                external_id=mime.message_id(msg),
                evidence=mime.cap(note + "\n\n" + excerpt),
                confidence=round(confidence, 3),
            )
        )
    return events


def _add_chain(hops: list[mime.Hop], entry_conf: float, where: str, add, excluded: set[str]) -> None:
    index = mime.entry_index(hops)
    if index is None:
        return
    # Hops newer than the entry are the complainant's own relays: never the culprit.
    for hop in hops[:index]:
        if hop.from_ip:
            excluded.add(hop.from_ip)
    entry = hops[index]
    add(entry.from_ip, entry_conf, f"entry hop of the {where}' Received chain", at=entry.at, context=entry.raw[:300])
    for hop in hops[index + 1 :]:
        if hop.from_ip:
            add(hop.from_ip, CONF_UPSTREAM, f"earlier hop of the {where}' Received chain", at=hop.at)


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
