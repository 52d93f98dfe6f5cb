"""Report parsers: pure functions from raw bytes to ParsedEvents. No database access here.

Entry point::

    parse(raw: bytes, *, received_at: datetime | None = None,
          are_ours: Callable[[Iterable[str]], set[str]] | None = None) -> ParseResult

Each format lives in its own module with ``detect(msg, raw) -> bool`` and
``parse(msg, raw, *, received_at) -> list[ParsedEvent]`` (raising base.ParseError with a reason).
Detectors are tried in FORMATS order; the first format whose parser yields events wins. A detected
format that fails does not stop the others. Free text is the fallback; after a failed structured
format its guesses get lower confidence and the format's reason in their evidence, and if it finds
nothing the failed format's reason is the result's error.
``parse`` never raises: any failure becomes ``ParseResult(events=[], error=...)``.

Intake uses ``parse_stream``: the same answer, with the events as an iterator. Formats that read big
files also have ``parse_stream(msg, raw, *, received_at) -> Iterator[ParsedEvent]``, which reads
them as the events are taken (raising ParseError, before its first event, where parse would).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from types import ModuleType

from .base import EVIDENCE_MAX_CHARS, ParsedEvent, ParseError, ParseResult

__all__ = ["FORMATS", "FALLBACK", "ParsedEvent", "ParseError", "ParseResult", "ParseStream", "parse", "parse_stream"]

log = logging.getLogger(__name__)

# ARF first: its detector only looks at content types, and feedback loops are the bulk of the
# mail. X-ARF next: its mails are multipart too and would otherwise read as free text with IPs.
# The XML notices (ACNS, Safe Browsing) before the feeds: their prose has "IP Address:"-like lines
# that the key:value reader would take without the port or the list's category.
# The API's own event lists (api_events) go first: they are recognised by their content type alone.
# DMARC aggregates right after ARF: their zipped XML must not reach the generic readers. Attachments
# (JSON, XML, plain-text lists) after the feeds, which own the CSV files.
FORMATS = (
    "api_events",
    "arf",
    "dmarc",
    "xarf",
    "spamcop",
    "acns",
    "safebrowsing",
    "shadowserver",
    "feeds",
    "attachments",
)
FALLBACK = "freetext"
# A message that claimed a structure and broke it is a weaker source for a free-text guess.
STRUCTURED_FAILED_FACTOR = 0.8


def _module(name: str) -> ModuleType | None:
    # Imported lazily so that a format module that is missing (or broken) disables only itself.
    full = f"{__name__}.{name}"
    try:
        return importlib.import_module(full)
    except ModuleNotFoundError as exc:
        if exc.name == full:  # not written (yet): that format is simply not available
            return None
        log.warning("intake parser %s could not be imported", name, exc_info=True)
        return None
    except Exception:  # noqa: BLE001
        log.warning("intake parser %s could not be imported", name, exc_info=True)
        return None


def _format_of(module: ModuleType, name: str, events: list[ParsedEvent]) -> str:
    # A module may report a finer format on its events (xarf vs xarf4, csv vs keyvalue).
    return events[0].format if events and events[0].format else getattr(module, "FORMAT", name)


@functools.cache
def _parameters(function: Callable) -> frozenset[str]:
    # Once per parser function: reading a signature took as long as some parsers take.
    return frozenset(inspect.signature(function).parameters)


def _kwargs(function: Callable, received_at: datetime, are_ours, resolve_host) -> dict:
    kwargs: dict = {"received_at": received_at}
    parameters = _parameters(function)
    if are_ours is not None and "are_ours" in parameters:
        kwargs["are_ours"] = are_ours
    if resolve_host is not None and "resolve_host" in parameters:
        kwargs["resolve_host"] = resolve_host
    return kwargs


def _run(module: ModuleType, msg, raw: bytes, received_at: datetime, are_ours, resolve_host=None) -> list[ParsedEvent]:
    events = module.parse(msg, raw, **_kwargs(module.parse, received_at, are_ours, resolve_host))
    return [e for e in (events or []) if isinstance(e, ParsedEvent)]


def _run_stream(
    module: ModuleType, msg, raw: bytes, received_at: datetime, are_ours, resolve_host=None
) -> Iterator[ParsedEvent]:
    """The module's events as an iterator: its parse_stream where it has one (the big-feed formats,
    which read their files as the events are taken), else its parse's list."""
    stream = getattr(module, "parse_stream", None)
    if stream is None:
        return iter(_run(module, msg, raw, received_at, are_ours, resolve_host))
    events = stream(msg, raw, **_kwargs(stream, received_at, are_ours, resolve_host))
    return (e for e in events if isinstance(e, ParsedEvent))


def parse(
    raw: bytes,
    *,
    received_at: datetime | None = None,
    are_ours: Callable[[Iterable[str]], set[str]] | None = None,
    resolve_host: Callable[[str], list[str] | None] | None = None,
) -> ParseResult:
    """Detect the format of raw and parse it. Never raises.

    received_at (aware; default now) is the fallback incident time and the reference for rejecting
    future dates. are_ours(ips) -> the subset that is ours, when given, lets free text rank our addresses first.
    Raw that is not e-mail (a bare CSV or JSON body) is wrapped as a text/plain message first, so
    the feed parsers see it too (see mime.parse_message).
    A report that names only URLs has their host names resolved at intake by resolve_host(name) ->
    addresses, or None when the name does not exist (default: abusedesk.lib.dns.host_addresses,
    the configured resolver).
    """
    try:
        return _parse(raw, received_at=received_at, are_ours=are_ours, resolve_host=resolve_host)
    except Exception as exc:  # noqa: BLE001 — intake must keep the message and say why, whatever happened
        log.exception("intake parse failed")
        return ParseResult(format="", events=[], error=f"parser failure: {type(exc).__name__}: {str(exc)[:300]}")


@dataclasses.dataclass(slots=True)
class ParseStream:
    """What parse_stream gives: ParseResult with the events as an iterator, read as they are taken."""

    format: str
    events: Iterator[ParsedEvent]
    error: str | None = None


def parse_stream(
    raw: bytes,
    *,
    received_at: datetime | None = None,
    are_ours: Callable[[Iterable[str]], set[str]] | None = None,
    resolve_host: Callable[[str], list[str] | None] | None = None,
) -> ParseStream:
    """parse, for intake: the same detection, format and error, but the events come out one at a
    time, so a feed of a million rows (a 190 MB CSV in a zip) is never held in memory whole.

    The formats that read big files (shadowserver, feeds) stream them (their parse_stream); the
    others give their list. The first event has been read when this returns, so a message with
    none has its error here. Reading further may still raise: a file that breaks half way (the
    caller keeps what it took and says why). Never raises itself.
    """
    try:
        return _parse(raw, received_at=received_at, are_ours=are_ours, resolve_host=resolve_host, stream=True)
    except Exception as exc:  # noqa: BLE001 — intake must keep the message and say why, whatever happened
        log.exception("intake parse failed")
        return ParseStream(format="", events=iter(()), error=f"parser failure: {type(exc).__name__}: {str(exc)[:300]}")


def _parse(raw: bytes, *, received_at: datetime | None, are_ours, resolve_host=None, stream: bool = False):
    result = _parse_stream(raw, received_at=received_at, are_ours=are_ours, resolve_host=resolve_host, stream=stream)
    if stream:
        return result
    return ParseResult(format=result.format, events=list(result.events), error=result.error)


def _parse_stream(
    raw: bytes, *, received_at: datetime | None, are_ours, resolve_host=None, stream: bool
) -> ParseStream:
    from . import mime

    if received_at is None or received_at.tzinfo is None:
        received_at = datetime.now(UTC) if received_at is None else received_at.replace(tzinfo=UTC)
    # (the head first: stripping a 40 MB message copies it)
    if not raw or not bytes(raw[:4096]).strip() and not bytes(raw).strip():
        return ParseStream(format="", events=iter(()), error="empty message")
    raw = bytes(raw)
    msg = mime.parse_message(raw)

    first_error: tuple[str, str] | None = None
    detected_any = False
    for name in FORMATS:
        module = _module(name)
        if module is None:
            continue
        try:
            if not module.detect(msg, raw):
                continue
        except Exception:  # noqa: BLE001 — a broken detector means "not this format"
            log.warning("intake detector %s failed", name, exc_info=True)
            continue
        detected_any = True
        fmt = getattr(module, "FORMAT", name)
        try:
            if stream:
                # The first event is read here, so a format that fails or finds nothing says so
                # (ParseError, or nothing) before the dispatcher settles on it.
                events = _run_stream(module, msg, raw, received_at, are_ours)
                first = next(events, None)
                if first is not None:
                    return ParseStream(format=_format_of(module, fmt, [first]), events=itertools.chain([first], events))
                events = []
            else:
                events = _run(module, msg, raw, received_at, are_ours)
        except ParseError as exc:
            if getattr(module, "CLASSIFIES", False):
                # A DMARC aggregate with nothing to file is classified, not a complaint to guess at:
                # free text would read its XML's every source address as an offender.
                return ParseStream(format=fmt, events=iter(()), error=str(exc) or "unreadable")
            first_error = first_error or (fmt, str(exc) or "unreadable")
            continue
        except Exception as exc:  # noqa: BLE001
            log.warning("intake parser %s crashed", name, exc_info=True)
            first_error = first_error or (fmt, f"{fmt} parser failure: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        if events:
            return ParseStream(format=_format_of(module, fmt, events), events=iter(events))
        first_error = first_error or (fmt, f"{fmt} report with no events in it")

    # Free text runs even after a structured format failed: a Netcraft X-ARF that names only a URL
    # still says "[10.0.2.11]" in its prose. The structured reason travels with the guess, or is the
    # answer if the guess finds nothing either.
    fallback = _module(FALLBACK)
    structured_error = first_error if detected_any else None
    if fallback is None:
        if structured_error:
            return ParseStream(format=structured_error[0], events=iter(()), error=structured_error[1])
        return ParseStream(format="", events=iter(()), error="no parser recognised this message")
    try:
        events = _run(fallback, msg, raw, received_at, are_ours)
    except ParseError as exc:
        events, reason = [], str(exc) or "no report found in the text"
    else:
        reason = "no report found in the text"
    if not events:
        # The last resort: a report that names only URLs (phishing, malware, copyright) is about
        # whoever serves them now.
        url_events, url_reason = _urls(msg, raw, received_at, resolve_host)
        if url_events:
            return ParseStream(format="url", events=iter(url_events))
        if structured_error:
            detail = f"; {url_reason}" if url_reason else ""
            return ParseStream(format=structured_error[0], events=iter(()), error=structured_error[1] + detail)
        return ParseStream(format="url" if url_reason else "", events=iter(()), error=url_reason or reason)
    if structured_error:
        for event in events:
            event.confidence = round(event.confidence * STRUCTURED_FAILED_FACTOR, 3)
            note = f"[{structured_error[0]} parser: {structured_error[1]}; read as free text]\n"
            event.evidence = (note + event.evidence)[:EVIDENCE_MAX_CHARS]
    return ParseStream(format=FALLBACK, events=iter(events))


def _urls(msg, raw: bytes, received_at: datetime, resolve_host) -> tuple[list[ParsedEvent], str]:
    """Events for a URL-only report, or ([], why not); ("", "") when the mail names no URL at all."""
    module = _module("urls")
    if module is None:
        return [], ""
    try:
        return _run(module, msg, raw, received_at, None, resolve_host), ""
    except ParseError as exc:
        reason = str(exc)
        return [], "" if reason.startswith("no IP address and no URL") else reason
