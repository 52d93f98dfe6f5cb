from __future__ import annotations

from datetime import UTC, datetime

from cases.intake import mime, parse, spamcop

from . import RECEIVED_AT, fixture


def test_it_reads_a_spamcop_report():
    result = parse(fixture("spamcop_report.eml"), received_at=RECEIVED_AT)
    assert result.format == "spamcop"
    [event] = result.events
    assert event.ip == "198.51.100.23"
    assert event.occurred_at == datetime(2024, 1, 19, 11, 52, 41, tzinfo=UTC)
    assert event.category == "spam"
    assert event.external_id == "7123456789"
    assert event.reporter == "7123456789@reports.spamcop.net"
    assert event.reporter_org == "SpamCop"
    assert event.confidence == 1.0
    assert "[ Offending message ]" in event.evidence


def test_detect_needs_the_spamcop_subject_or_sender():
    assert spamcop.detect(mime.parse_message(fixture("spamcop_report.eml")), b"")
    assert not spamcop.detect(mime.parse_message(fixture("freetext_plain.eml")), b"")
    assert not spamcop.detect(mime.parse_message(fixture("arf_rfc5965.eml")), b"")


def test_without_email_from_line_the_time_comes_from_the_offending_message():
    [event] = parse(fixture("spamcop_no_line.eml"), received_at=RECEIVED_AT).events
    assert event.ip == "203.0.113.77"
    assert event.occurred_at == datetime(2024, 1, 19, 14, 40, 10, tzinfo=UTC)
    assert event.confidence < 1.0


def test_spamvertised_site_reports_the_hosting_address_with_lower_confidence():
    [event] = parse(fixture("spamcop_spamvertised.eml"), received_at=RECEIVED_AT).events
    assert event.ip == "198.51.100.80"
    assert event.occurred_at == datetime(2024, 1, 20, 7, 58, tzinfo=UTC)
    assert event.confidence < 1.0
    assert "pills.example" in event.evidence


def test_invalid_address_in_subject_and_body_is_an_error():
    result = parse(fixture("spamcop_bad_ip.eml"), received_at=RECEIVED_AT)
    assert result.events == []
    assert result.format == "spamcop"
    assert "not an IP address" in result.error


def test_subject_and_body_disagreeing_lowers_confidence():
    raw = fixture("spamcop_report.eml").replace(b"Email from 198.51.100.23", b"Email from 198.51.100.24")
    [event] = parse(raw, received_at=RECEIVED_AT).events
    assert event.ip == "198.51.100.24"  # the body line is what SpamCop's parse found
    assert event.confidence < 1.0
