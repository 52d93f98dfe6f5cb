"""Reading the times reports and imports write: one module, for every reader in the project.

- ``parse_date(value, *, now=None)``: lenient, for mail and report text. RFC 5322 (with obsolete
  zones and "(CET)" comments), ISO 8601 with or without zone, zone abbreviations ("... CEST"),
  "15.01.2024 14:02" (day first), asctime, a 12-hour clock ("10:00AM PDT"), Common Log Format,
  Unix seconds. The stdlib reads the strict forms fast; python-dateutil reads the lenient rest.
  Dates without a zone are UTC. Dates before 1995 or more than a day after ``now`` are refused
  (None) as wrong clocks or typos.
- ``parse_feed_time(text)``: the same forms plus Unix milliseconds, without the plausibility check,
  so the caller can say *why* a row's time was refused (``implausible``). The ISO fast path first:
  a 1,000,000-row feed must not pay dateutil's price per row.
- ``find_dates(text)``: every plausible date written in text, in order.
- ``parse_iso(text)``: strict ISO 8601 for imports and commands (ValueError with a reason).

Always aware UTC datetimes out; never raises on bad input except ``parse_iso``.
"""

from __future__ import annotations

import email.utils
import re
import warnings
from datetime import UTC, datetime, timedelta

from dateutil import parser as dateutil_parser
from dateutil.tz import tzoffset

# A clock a little ahead at the reporter is normal; a day ahead is not a real incident time.
FUTURE_SLACK = timedelta(days=1)
EARLIEST_DATE = datetime(1995, 1, 1, tzinfo=UTC)
MAX_SCAN_CHARS = 4 * 1024 * 1024
_NO_FUTURE_LIMIT = datetime(9000, 1, 1, tzinfo=UTC)

# Zone abbreviations reports actually use, in hours east of UTC. Ambiguous ones (IST, AST) are left
# out: a wrong guess is worse than reading the time as UTC. The US ones come from Project Honey Pot
# ("Mon, 21 Sep 2015 10:00AM PDT"), CET/CEST from European feeds (CleanMX).
ZONE_HOURS: dict[str, int] = {
    "UT": 0,
    "UTC": 0,
    "GMT": 0,
    "Z": 0,
    "WET": 0,
    "WEST": 1,
    "BST": 1,
    "CET": 1,
    "CEST": 2,
    "MEZ": 1,
    "MESZ": 2,
    "EET": 2,
    "EEST": 3,
    "MSK": 3,
    "JST": 9,
    "EST": -5,
    "EDT": -4,
    "CST": -6,
    "CDT": -5,
    "MST": -7,
    "MDT": -6,
    "PST": -8,
    "PDT": -7,
}
_TZINFOS = {name: tzoffset(name, hours * 3600) for name, hours in ZONE_HOURS.items()}

_EPOCH = re.compile(r"\d{9,10}(?:\.\d+)?")
_EPOCH_MS = re.compile(r"\d{13}")
# Day-first numeric dates ("15.01.2024 14:02", "15/01/2024"): European feeds write them so.
_DAY_FIRST = re.compile(r"^\d{1,2}[./]\d{1,2}[./]\d{4}\b")
_CLF_FORMATS = ("%d/%b/%Y:%H:%M:%S %z", "%d/%b/%Y:%H:%M:%S")
_UTC_SUFFIX = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)\s*(?:UTC|GMT|Z)$", re.I)
_HAS_YEAR = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)")
_TRAILING_COMMENT = re.compile(r"\s*\([^)]*\)\s*$")

_ZONE_NAMES = "|".join(sorted(ZONE_HOURS, key=len, reverse=True))
_ZONE = rf"(?:(?:{_ZONE_NAMES})\b|[+-]\d{{2}}:?\d{{2}})"
# Scanners for find_dates: where a date may be written in prose. Each match is then read by parse_date.
_SCANNERS = (
    re.compile(
        r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?\s+)?\d{1,2}\s+(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
        r"[a-z]*\.?,?\s+\d{4},?\s+\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AaPp]\.?[Mm]\.?(?![a-z]))?(?:\s+(?:[+-]\d{4}|[A-Z]{2,4}))?"
    ),
    re.compile(
        rf"\d{{4}}-\d{{1,2}}-\d{{1,2}}[T ]\d{{1,2}}:\d{{2}}(?::\d{{2}}(?:[.,]\d{{1,9}})?)?(?:\s*{_ZONE}|Z)?",
        re.I,
    ),
    re.compile(rf"\b\d{{1,2}}[./]\d{{1,2}}[./]\d{{4}}[ T,]+\d{{1,2}}:\d{{2}}(?::\d{{2}})?(?:\s*{_ZONE})?", re.I),
    re.compile(r"\b[A-Z][a-z]{2}\s+[A-Z][a-z]{2}\s+\d{1,2}\s+\d{1,2}:\d{2}:\d{2}\s+(?:[A-Z]{3,4}\s+)?\d{4}"),
)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        # A date without a zone is read as UTC: the feeds that omit it (AOL's original Date) mostly mean UTC.
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _read(text: str) -> datetime | None:
    """Any supported form, naive or aware; None when unreadable. May raise ValueError/OverflowError."""
    if _EPOCH.fullmatch(text):
        return datetime.fromtimestamp(float(text), UTC)
    if _EPOCH_MS.fullmatch(text):
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    try:
        return datetime.fromisoformat(text)  # the strict fast path: "2015-01-22 01:30:25", "...Z", "+02:00"
    except ValueError:
        pass
    utc_named = _UTC_SUFFIX.match(text)
    if utc_named:  # "2024-01-18 02:11:09 UTC": the commonest form in lists, without dateutil's cost
        try:
            return datetime.fromisoformat(utc_named.group(1)).replace(tzinfo=UTC)
        except ValueError:
            pass
    # "10/Oct/2024:13:55:36 -0700": web server logs; dateutil misreads the colon. (Only text with a
    # slash can be one: a failed strptime costs as much as the mail date's whole reading.)
    for fmt in _CLF_FORMATS if "/" in text else ():
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    cleaned = _TRAILING_COMMENT.sub("", text)
    if re.search(r"[A-Za-z]{3},?\s+\d{1,2}\s+[A-Za-z]{3}", cleaned) and not re.search(r"[ap]\.?m\b", cleaned, re.I):
        try:
            parsed = email.utils.parsedate_to_datetime(cleaned)
        except (TypeError, ValueError, IndexError):
            parsed = None
        # parsedate reads an unknown zone name as UTC without a word; only trust it for numeric zones.
        if parsed is not None and not re.search(r"\s[A-Z]{3,5}\s*$", cleaned):
            return parsed
    if not _HAS_YEAR.search(cleaned):
        return None  # dateutil would fill a missing year (or day) from today: a guess, not a date
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # UnknownTimezoneWarning: an unknown zone name is read as UTC
        options = {"dayfirst": bool(_DAY_FIRST.match(cleaned)), "tzinfos": _TZINFOS, "default": datetime(2000, 1, 1)}
        try:
            return dateutil_parser.parse(cleaned, **options)
        except (ValueError, OverflowError):
            if re.search(r"\d\s*[ap]\.?m\b", cleaned, re.I):
                return None  # "13:00PM" is nonsense: unreadable rather than guessed as 01:00 or 13:00
            # A word after the date that is no zone ("08:00 ESTONIA", "14:02 (server time)"): skipped.
            return dateutil_parser.parse(cleaned, fuzzy=True, **options)


def parse_feed_time(text: str | None) -> datetime | None:
    """An aware UTC datetime from a feed's time cell, or None. No plausibility check (see implausible)."""
    text = str(text or "").strip()
    if not text or len(text) > 64:
        return None
    try:
        value = _read(text)
    except (ValueError, OverflowError, TypeError, IndexError, OSError):
        return None
    if value is None:
        return None
    try:
        return _utc(value)
    except (OverflowError, ValueError):
        return None


def implausible(value: datetime, received_at: datetime | None) -> str | None:
    """Why this event time is not believable, or None when it is."""
    limit = (received_at or datetime.now(UTC)) + FUTURE_SLACK
    if value > limit:
        return "time in the future"
    if value < EARLIEST_DATE:
        return "time implausibly old"
    return None


def parse_date(value: str | None, *, now: datetime | None = None) -> datetime | None:
    """A date in any of the forms reports use, as an aware UTC datetime; None if unreadable or implausible."""
    text = str(value or "").strip()[:200]
    if not text:
        return None
    try:
        parsed = _read(text)
        dt = _utc(parsed) if parsed is not None else None
    except (ValueError, OverflowError, TypeError, IndexError, OSError):
        return None
    if dt is None or implausible(dt, now):
        return None
    return dt


def find_dates(text: str, *, now: datetime | None = None, limit: int = 20) -> list[datetime]:
    """Plausible dates written anywhere in text, in order of appearance."""
    text = text[:MAX_SCAN_CHARS]
    found: list[tuple[int, datetime]] = []
    for pattern in _SCANNERS:
        for m in pattern.finditer(text):
            dt = parse_date(m.group(0), now=now)
            if dt is not None:
                found.append((m.start(), dt))
            if len(found) >= limit * 4:
                break
    found.sort(key=lambda pair: pair[0])
    out: list[datetime] = []
    for _, dt in found:
        if dt not in out:
            out.append(dt)
    return out[:limit]


def parse_iso(text: str) -> datetime:
    """Strict ISO 8601 ("2025-03-01T14:02:00Z"); without a zone it is UTC. ValueError says why."""
    try:
        value = datetime.fromisoformat(str(text).strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time (e.g. 2025-03-01T14:02:00Z)") from None
    try:
        return _utc(value)
    except OverflowError:  # 0001-01-01T00:00+01:00 and the like fall outside datetime's range in UTC
        raise ValueError(f"{text!r} is out of range") from None
