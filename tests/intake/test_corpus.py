"""Every public sample report parses to the IP(s), time and category it really holds.

An extended suite: the samples live outside the project, in the folder ABUSEDESK_CORPUS_DIR names
(CI names ../shared/corpus/); they are read by path, never copied in. What each one holds was written
down by reading it: tests/intake/corpus_expectations.py. Without the variable the suite skips and
says why (tests/corpus.py); a named folder that is missing fails.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cases.intake import parse
from cases.intake.base import CATEGORIES, ParseResult
from tests.corpus import corpus_dir, require_corpus

from .corpus_expectations import EXPECTATIONS, Expect, _dt

CORPUS = corpus_dir() or Path("/nonexistent-corpus")
FOLDERS = ("abuseio", "xarf-v4")
# Later than every sample (the newest is January 2025): a parser that falls back to the receipt time
# instead of reading the sample's own time shows up as a wrong time, not as a lucky match.
RECEIVED_AT = datetime(2026, 1, 1, tzinfo=UTC)


def _require_corpus() -> None:
    require_corpus(*FOLDERS)


NOT_SAMPLES = {"LICENSE", "LICENCE", "COPYING", "README", "NOTICE"}


def _on_disk() -> set[str]:
    found: set[str] = set()
    for folder in FOLDERS:
        for path in (CORPUS / folder).rglob("*"):
            # Licence and read-me files travel with the samples; they are not reports.
            if path.is_file() and path.stem.upper() not in NOT_SAMPLES:
                found.add(path.relative_to(CORPUS).as_posix())
    return found


def _canon(ip: str) -> str:
    return ipaddress.ip_address(ip).compressed


def _parse_sample(rel: str) -> ParseResult:
    _require_corpus()
    path = CORPUS / rel
    if not path.is_file():
        pytest.fail(f"sample {rel} is listed in corpus_expectations.py but not in {CORPUS}", pytrace=False)
    return parse(path.read_bytes(), received_at=RECEIVED_AT)


def _describe(result: ParseResult) -> str:
    lines = [f"format={result.format!r} error={result.error!r} events={len(result.events)}"]
    for event in result.events[:12]:
        lines.append(
            f"  {event.ip} port={event.port} {event.occurred_at.isoformat()} {event.category} "
            f"fmt={event.format} conf={event.confidence}"
        )
    return "\n".join(lines)


def problems(exp: Expect, result: ParseResult) -> list[str]:
    """Every way result differs from what the sample says; empty when it matches."""
    found: list[str] = []
    if exp.error and result.events and all(not e.ip and e.url and e.unresolved for e in result.events):
        # A URL-only report whose host gave no address (no resolver answers in tests) is kept without
        # one, saying why, for the unassigned queue (cases.intake.urls).
        return [] if result.format == "url" else [f"format {result.format!r}, expected 'url'"]
    if result.format not in exp.format:
        found.append(f"format {result.format!r}, expected one of {exp.format}")
    if exp.error:
        if result.events:
            ips = sorted({e.ip for e in result.events})
            found.append(f"expected no events ({exp.note}), got {len(result.events)}: {ips}")
        if not result.error:
            found.append("expected an error saying why nothing could be read, got none")
        return found

    if not result.events:
        found.append(f"no events (error: {result.error!r})")
        return found

    got = {_canon(e.ip) for e in result.events}
    required = {_canon(ip) for ip in exp.ips}
    allowed = required | {_canon(ip) for ip in exp.optional_ips}
    if required - got:
        found.append(f"missing IPs {sorted(required - got)}")
    if got - allowed:
        found.append(f"unexpected IPs {sorted(got - allowed)}")
    if exp.count is not None and len(result.events) != exp.count:
        found.append(f"{len(result.events)} events, expected {exp.count}")

    earliest = min(e.occurred_at for e in result.events)
    if exp.window is not None:
        start, end = (_dt(t) for t in exp.window)
        if not start <= earliest <= end:
            found.append(f"earliest time {earliest.isoformat()} outside {exp.window[0]} .. {exp.window[1]}")
    else:
        slack = timedelta(seconds=exp.tolerance)
        if not any(abs(earliest - t) <= slack for t in exp.times()):
            found.append(f"earliest time {earliest.isoformat()}, expected {' or '.join(exp.time)}")
        if exp.every_event:
            off = sorted(
                {e.occurred_at for e in result.events if not any(abs(e.occurred_at - t) <= slack for t in exp.times())}
            )
            if off:
                found.append(f"events at {[t.isoformat() for t in off]}, expected {' or '.join(exp.time)}")

    wrong = sorted({e.category for e in result.events} - set(exp.category))
    if wrong:
        found.append(f"categories {wrong}, expected one of {exp.category}")
    absent = sorted(exp.required - {e.category for e in result.events})
    if absent:
        found.append(f"no event with category {absent}")
    return found


def test_the_named_corpus_folder_holds_the_samples():
    _require_corpus()
    assert (CORPUS / "README.md").is_file()


def test_every_sample_on_disk_has_written_expectations_and_vice_versa():
    _require_corpus()
    on_disk = _on_disk()
    assert len(on_disk) >= 97 + 32
    assert sorted(on_disk - EXPECTATIONS.keys()) == [], "samples without expectations: read them and add them"
    assert sorted(EXPECTATIONS.keys() - on_disk) == [], "expectations for samples that are not on disk"


def test_the_expectations_themselves_are_well_formed():
    for rel, exp in EXPECTATIONS.items():
        assert exp.format, rel
        if exp.error:
            assert not exp.ips and exp.note, rel
            continue
        assert exp.ips, rel
        for ip in exp.ips | exp.optional_ips:
            ipaddress.ip_address(ip)
        assert bool(exp.time) != bool(exp.window), rel
        for t in list(exp.time) + list(exp.window or ()):
            assert _dt(t).tzinfo is not None, rel
        assert exp.category and set(exp.category) <= set(CATEGORIES), rel
        assert exp.required <= set(exp.category), rel
        if exp.count is not None:
            assert exp.count >= len(exp.ips), rel


@pytest.mark.parametrize("rel", sorted(EXPECTATIONS))
def test_sample_parses_to_what_it_holds(rel: str):
    exp = EXPECTATIONS[rel]
    result = _parse_sample(rel)
    found = problems(exp, result)
    assert not found, f"{rel}:\n- " + "\n- ".join(found) + "\nparse() gave:\n" + _describe(result)


@pytest.mark.parametrize("rel", sorted(rel for rel, exp in EXPECTATIONS.items() if exp.port is not None))
def test_sample_events_carry_the_port_it_names(rel: str):
    exp = EXPECTATIONS[rel]
    result = _parse_sample(rel)
    assert result.events, f"{rel}: no events (error: {result.error!r})"
    ports = sorted({e.port for e in result.events}, key=str)
    assert ports == [exp.port], f"{rel}: ports {ports}, expected {exp.port}"


@pytest.mark.parametrize("rel", sorted(EXPECTATIONS))
def test_sample_result_keeps_the_contract(rel: str):
    # Whatever the parsers make of a sample: events or a reason, never both missing; canonical IPs.
    result = _parse_sample(rel)
    assert bool(result.events) != bool(result.error), f"{rel}: {_describe(result)}"
    for event in result.events:
        if not event.ip:  # a URL-only report whose host gave no address: kept saying why
            assert event.url and event.unresolved, rel
            continue
        assert ipaddress.ip_address(event.ip).compressed == event.ip, rel
        assert event.occurred_at.tzinfo is UTC, rel
        assert event.occurred_at <= RECEIVED_AT, rel
