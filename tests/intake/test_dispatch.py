from __future__ import annotations

import ipaddress
import sys
import types
from datetime import UTC

import pytest

import cases.intake as intake
from cases.intake import mime, parse
from cases.intake.base import CATEGORIES, EVIDENCE_MAX_CHARS, ParsedEvent, ParseError

from . import FIXTURES, RECEIVED_AT, fixture


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("arf_rfc5965.eml", "arf"),
        ("arf_legacy_headers_only.eml", "arf"),
        ("spamcop_report.eml", "spamcop"),
        ("freetext_plain.eml", "freetext"),
        ("freetext_attached.eml", "freetext"),
    ],
)
def test_each_format_goes_to_its_parser(name, fmt):
    assert parse(fixture(name), received_at=RECEIVED_AT).format == fmt


def test_every_fixture_gives_events_or_a_reason_and_events_keep_the_contract():
    names = sorted(p.name for p in FIXTURES.glob("*.eml"))
    assert len(names) >= 15
    for name in names:
        result = parse(fixture(name), received_at=RECEIVED_AT)
        assert bool(result.events) != bool(result.error), name
        for event in result.events:
            assert str(ipaddress.ip_address(event.ip)) == event.ip
            assert event.occurred_at.tzinfo is UTC
            assert event.occurred_at <= RECEIVED_AT
            assert event.category in CATEGORIES
            assert 0 < event.confidence <= 1
            assert len(event.evidence) <= EVIDENCE_MAX_CHARS


def test_bare_csv_body_is_wrapped_as_a_text_message():
    raw = b"ip,timestamp,type\n198.51.100.70,2024-01-30T10:00:00Z,scan\n"
    assert not mime.looks_like_mail(raw)
    msg = mime.parse_message(raw)
    assert mime.is_bare(msg)
    assert mime.bare_text(msg) == raw.decode()
    assert mime.body_text(msg) == raw.decode()
    result = parse(raw, received_at=RECEIVED_AT)
    assert "198.51.100.70" in [e.ip for e in result.events]


def test_bare_json_and_key_value_bodies_are_not_taken_for_mail():
    assert mime.is_bare(mime.parse_message(b'{"Source": {"IP": "198.51.100.71"}}'))
    assert mime.is_bare(mime.parse_message(b"IP: 198.51.100.72\nDate: 2024-01-30 10:00:00\n"))
    assert not mime.is_bare(mime.parse_message(fixture("freetext_plain.eml")))
    assert not mime.is_bare(mime.parse_message(b"From MAILER-DAEMON Mon Jan 1 00:00:00 2024\nSubject: x\n\nbody\n"))


def test_a_missing_format_module_is_skipped(monkeypatch):
    monkeypatch.setattr(intake, "FORMATS", ("not_written_yet", *intake.FORMATS))
    assert parse(fixture("arf_rfc5965.eml"), received_at=RECEIVED_AT).format == "arf"


def _install(monkeypatch, name: str, detect, parse_fn) -> None:
    module = types.ModuleType(f"cases.intake.{name}")
    module.detect = detect
    module.parse = parse_fn
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(intake, "FORMATS", (name, *intake.FORMATS))


def test_a_crashing_detector_or_parser_does_not_stop_the_others(monkeypatch):
    def boom(*args, **kwargs):
        raise ZeroDivisionError("bug")

    _install(monkeypatch, "crashy", lambda msg, raw: True, boom)
    result = parse(fixture("spamcop_report.eml"), received_at=RECEIVED_AT)
    assert result.format == "spamcop"
    assert result.events

    _install(monkeypatch, "crashy_detect", boom, boom)
    assert parse(fixture("spamcop_report.eml"), received_at=RECEIVED_AT).format == "spamcop"


def test_a_detected_format_that_fails_falls_back_to_free_text_with_its_reason(monkeypatch):
    def refuse(msg, raw, *, received_at):
        raise ParseError("schema says no")

    plain = parse(fixture("freetext_plain.eml"), received_at=RECEIVED_AT).events[0]
    _install(monkeypatch, "strict", lambda msg, raw: True, refuse)
    result = parse(fixture("freetext_plain.eml"), received_at=RECEIVED_AT)
    assert result.format == "freetext"
    assert result.events[0].ip == plain.ip
    assert result.events[0].confidence < plain.confidence
    assert result.events[0].evidence.startswith("[strict parser: schema says no; read as free text]")


def test_a_detected_format_that_fails_on_text_without_addresses_reports_its_reason(monkeypatch):
    def refuse(msg, raw, *, received_at):
        raise ParseError("schema says no")

    _install(monkeypatch, "strict", lambda msg, raw: True, refuse)
    result = parse(b"From: a@b.example\nSubject: x\n\nno address here\n", received_at=RECEIVED_AT)
    assert result.events == []
    assert result.format == "strict"
    assert result.error == "schema says no"


def test_format_modules_get_received_at_and_a_finer_format_name_is_kept(monkeypatch):
    seen = {}

    def fine(msg, raw, *, received_at):
        seen["received_at"] = received_at
        return [ParsedEvent(ip="198.51.100.1", occurred_at=received_at, category="other", format="xarf4")]

    _install(monkeypatch, "fine", lambda msg, raw: True, fine)
    result = parse(b"anything at all", received_at=RECEIVED_AT)
    assert seen["received_at"] == RECEIVED_AT
    assert result.format == "xarf4"


def test_parse_never_raises_even_on_non_bytes():
    result = parse("not bytes but text 198.51.100.9", received_at=RECEIVED_AT)  # type: ignore[arg-type]
    assert result.events or result.error
