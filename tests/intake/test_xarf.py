"""X-ARF (MIME + YAML report part) and XARF v4 JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from cases import intake
from cases.intake import mime, xarf
from cases.intake.base import ParseError
from tests.corpus import NOT_NAMED, corpus_dir

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "intake"
CORPUS_V4 = (corpus_dir() or Path("/nonexistent-corpus")) / "xarf-v4"
RECEIVED = datetime(2024, 6, 1, tzinfo=UTC)


def _parse(raw: bytes):
    msg = mime.parse_message(raw)
    assert xarf.detect(msg, raw)
    return xarf.parse(msg, raw, received_at=RECEIVED)


def _xarf_mail(report: str, *, evidence: str = "log line\n") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Reports <reports@honeynet.example>"
    msg["Subject"] = "abuse report"
    msg["X-ARF"] = "YES"
    msg.set_content("human readable part\n")
    msg.add_attachment(report, filename="report.txt")
    msg.add_attachment(evidence, filename="logfile.log")
    return msg.as_bytes()


def _v4(**overrides) -> dict:
    report = json.loads((FIXTURES / "xarf_v4_ddos.json").read_text())
    report.update(overrides)
    return report


def test_it_reads_an_xarf_mail_with_a_yaml_report_part():
    raw = (FIXTURES / "xarf_login_attack.eml").read_bytes()
    [event] = _parse(raw)
    assert event.ip == "198.51.100.23"
    assert event.port == 22
    assert event.occurred_at == datetime(2024, 5, 14, 9, 2, 45, tzinfo=UTC)
    assert event.category == "login_attack"
    assert event.format == "xarf"
    assert event.reporter == "reports@honeynet.example"
    assert event.reporter_org == "Example Honeynet Project"
    assert event.external_id == "hn-2024-05-14-0042@honeynet.example"
    assert "Failed password for admin" in event.evidence
    assert event.confidence > 0.9


def test_the_dispatcher_picks_xarf_for_the_fixture():
    result = intake.parse((FIXTURES / "xarf_login_attack.eml").read_bytes(), received_at=RECEIVED)
    assert result.error is None
    assert result.format == "xarf"
    assert [e.ip for e in result.events] == ["198.51.100.23"]


def test_an_all_digit_ipv6_source_stays_an_address_not_a_yaml_number():
    report = "---\nReported-From: a@b.example\nReport-Type: spam\nSource-Type: ipv6\nSource: 1:2:3:4:5:6:7:8\n"
    [event] = _parse(_xarf_mail(report + "Date: 2024-05-01T10:00:00+00:00\n"))
    assert event.ip == "1:2:3:4:5:6:7:8"
    assert event.category == "spam"
    assert event.occurred_at == datetime(2024, 5, 1, 10, tzinfo=UTC)


def test_a_uri_source_without_an_address_is_refused_with_a_reason():
    report = (
        "Reported-From: takedown@example.net\nReport-Type: phishing\nSource-Type: uri\n"
        "Source: http://bank-login.example/\nDate: 2024-05-01T10:00:00Z\n"
    )
    with pytest.raises(ParseError, match="not an IP address"):
        _parse(_xarf_mail(report))


def test_a_uri_source_with_an_ip_host_is_used():
    report = (
        "Reported-From: takedown@example.net\nReport-Type: phishing\nSource-Type: uri\n"
        "Source: http://203.0.113.7:8080/login\nDate: 2024-05-01T10:00:00Z\n"
    )
    [event] = _parse(_xarf_mail(report))
    assert (event.ip, event.category) == ("203.0.113.7", "phishing")


@pytest.mark.parametrize(
    ("source", "date", "reason"),
    [
        ("148.81.111.11.12", "2024-05-01T10:00:00Z", "not an IP address"),
        ("203.0.113.5", "2031-01-01T00:00:00Z", "future"),
    ],
)
def test_bad_source_or_future_date_raise_parse_error(source, date, reason):
    report = (
        f"Reported-From: a@b.example\nReport-Type: login-attack\nSource-Type: ipv4\nSource: {source}\nDate: {date}\n"
    )
    with pytest.raises(ParseError, match=reason):
        _parse(_xarf_mail(report))


def test_broken_yaml_is_still_read_line_by_line():
    report = "Reported-From: a@b.example\nReport-Type: port-scan\nSource-Type: ipv4\nSource: 203.0.113.9\n"
    report += "Date: 2024-05-01 10:00:00\nUser-Agent: scanner: v2 [unclosed\n"
    [event] = _parse(_xarf_mail(report))
    assert (event.ip, event.category) == ("203.0.113.9", "scanning")


def test_a_bare_v4_json_body_parses():
    raw = (FIXTURES / "xarf_v4_ddos.json").read_bytes()
    result = intake.parse(raw, received_at=RECEIVED)
    assert result.error is None, result.error
    [event] = result.events
    assert event.ip == "2001:db8:40::17"
    assert event.port == 123
    assert event.category == "ddos"
    assert event.format == "xarf4"
    assert event.occurred_at == datetime(2024, 5, 20, 7, 15, tzinfo=UTC)
    assert (event.reporter, event.reporter_org) == ("noc@scrub.example", "Example Scrubbing Center")
    assert event.external_id == "3f2b8c1e-6d4a-4e0b-9a51-2c7d9e8f1a22"
    assert "9.2 Gbit/s" in event.evidence  # the text evidence payload, decoded


def test_a_v4_json_attachment_parses():
    msg = EmailMessage()
    msg["From"] = "noc@scrub.example"
    msg["Subject"] = "XARF report"
    msg.set_content("see attachment")
    msg.add_attachment(json.dumps(_v4()).encode(), maintype="application", subtype="json", filename="report.json")
    raw = msg.as_bytes()
    [event] = _parse(raw)
    assert event.ip == "2001:db8:40::17"


@pytest.mark.skipif(not xarf.SCHEMA_DIR.is_dir(), reason="XARF schemas (shared corpus) not present")
def test_schema_validation_runs_and_an_off_spec_report_loses_confidence():
    good = xarf.parse_v4(_v4(), received_at=RECEIVED)
    assert "validated against" in good.evidence and ": valid" in good.evidence
    assert good.confidence == pytest.approx(0.9)  # the report's own confidence, unreduced
    off_spec = xarf.parse_v4(_v4(tags=["Not A Tag"]), received_at=RECEIVED)
    assert "problems: tags/0" in off_spec.evidence
    assert off_spec.confidence == pytest.approx(0.9 * 0.6)


def test_without_the_schema_files_a_structural_check_runs(monkeypatch, tmp_path):
    monkeypatch.setattr(xarf, "SCHEMA_DIR", tmp_path)
    xarf._validator.cache_clear()
    try:
        event = xarf.parse_v4(_v4(), received_at=RECEIVED)
        assert "structural check only" in event.evidence
        assert event.confidence == pytest.approx(0.81)
        with pytest.raises(ParseError, match="missing source_identifier"):
            xarf.parse_v4(_v4(source_identifier=""), received_at=RECEIVED)
    finally:
        xarf._validator.cache_clear()


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"source_identifier": "shop.example.com"}, "not an IP address"),
        ({"source_identifier": "148.81.111.11.12"}, "not an IP address"),
        ({"timestamp": "yesterday-ish"}, "unreadable"),
        ({"timestamp": "2039-01-01T00:00:00Z"}, "future"),
        ({"reporter": "someone"}, "reporter is not an object"),
    ],
)
def test_unusable_v4_reports_raise_parse_error(overrides, reason):
    with pytest.raises(ParseError, match=reason):
        xarf.parse_v4(_v4(**overrides), received_at=RECEIVED)


def test_json_that_is_not_xarf_is_not_detected():
    for raw in (b'{"hello": "world"}', b'{"xarf_version": "4.0.0", ', b"[" * 100000):
        assert not xarf.detect(mime.parse_message(raw), raw)


@pytest.mark.skipif(corpus_dir() is None, reason=NOT_NAMED)
@pytest.mark.parametrize(
    ("name", "ip", "category"),
    [
        ("connection-login-attack.json", "198.51.100.77", "login_attack"),
        ("connection-port-scan.json", "198.51.100.150", "scanning"),
        ("content-phishing.json", "203.0.113.45", "phishing"),
        ("infrastructure-botnet.json", "198.51.100.25", "botnet"),
        ("messaging-spam.json", "192.168.1.100", "spam"),
        ("vulnerability-open-service.json", "192.0.2.50", "vulnerable_service"),
        ("copyright-p2p.json", "192.0.2.100", "copyright"),
    ],
)
def test_corpus_v4_samples_say_what_they_say(name, ip, category):
    raw = (CORPUS_V4 / name).read_bytes()
    [event] = xarf.parse(mime.parse_message(raw), raw, received_at=datetime(2025, 6, 1, tzinfo=UTC))
    assert (event.ip, event.category) == (ip, category)
