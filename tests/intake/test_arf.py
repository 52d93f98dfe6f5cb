from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cases.intake import arf, mime, parse
from cases.intake.base import ParseError

from . import RECEIVED_AT, fixture


def test_it_reads_an_rfc5965_report():
    result = parse(fixture("arf_rfc5965.eml"), received_at=RECEIVED_AT)
    assert result.error is None
    assert result.format == "arf"
    [event] = result.events
    assert event.ip == "198.51.100.7"
    assert event.occurred_at == datetime(2024, 1, 15, 14, 2, 3, tzinfo=UTC)
    assert event.category == "spam"
    assert event.reporter == "fbl@fbl.example.org"
    assert event.external_id == "fbl-20240115-0001@fbl.example.org"
    assert event.confidence == 1.0
    assert event.port is None
    assert "Feedback-Type: abuse" in event.evidence
    assert "Subject: Cheap watches" in event.evidence


def test_it_detects_only_feedback_reports():
    assert arf.detect(mime.parse_message(fixture("arf_rfc5965.eml")), b"")
    assert not arf.detect(mime.parse_message(fixture("spamcop_report.eml")), b"")
    assert not arf.detect(mime.parse_message(fixture("freetext_attached.eml")), b"")


def test_legacy_report_without_source_ip_takes_the_entry_hop_of_the_headers_part():
    # Version 0.1, Received-Date, text/rfc822-headers, no Source-IP: what older loops send.
    [event] = parse(fixture("arf_legacy_headers_only.eml"), received_at=RECEIVED_AT).events
    # The first two hops are the reporter's own relay and localhost; the third entered its network.
    assert event.ip == "203.0.113.45"
    assert event.occurred_at == datetime(2024, 1, 16, 14, 15, tzinfo=UTC)
    assert event.category == "malware"
    assert event.reporter == "scomp@fbl.example.net"
    assert event.external_id == "legacy-42@fbl.example.net"
    assert 0.5 < event.confidence < 1.0


def test_fraud_maps_to_phishing_and_ipv6_source_is_canonical():
    [event] = parse(fixture("arf_fraud_ipv6.eml"), received_at=RECEIVED_AT).events
    assert event.category == "phishing"
    assert event.ip == "2001:db8:4::25"
    assert event.occurred_at == datetime(2024, 1, 17, 7, 45, 10, tzinfo=UTC)


def test_future_arrival_date_is_replaced_by_the_received_time_of_the_original():
    [event] = parse(fixture("arf_future_arrival.eml"), received_at=RECEIVED_AT).events
    assert event.ip == "198.51.100.9"
    assert event.occurred_at == datetime(2024, 1, 18, 9, 55, tzinfo=UTC)
    assert event.confidence < 1.0
    assert "Arrival-Date" in event.evidence


def test_invalid_source_ip_without_original_is_an_error_not_a_truncated_address():
    result = parse(fixture("arf_bad_source_ip.eml"), received_at=RECEIVED_AT)
    assert result.events == []
    assert result.format == "arf"
    assert "148.81.111.11.12" in result.error


@pytest.mark.parametrize(
    ("feedback_type", "category"),
    [("abuse", "spam"), ("fraud", "phishing"), ("virus", "malware"), ("opt-out", "spam"), ("other", "other")],
)
def test_feedback_types_map_to_categories(feedback_type, category):
    raw = fixture("arf_rfc5965.eml").replace(b"Feedback-Type: abuse", f"Feedback-Type: {feedback_type}".encode())
    [event] = parse(raw, received_at=RECEIVED_AT).events
    assert event.category == category


def test_a_report_without_feedback_part_raises_parse_error_from_the_module():
    raw = (
        b"Content-Type: multipart/report; report-type=feedback-report; boundary=x\n\n"
        b"--x\nContent-Type: text/plain\n\nhi\n--x--\n"
    )
    msg = mime.parse_message(raw)
    assert arf.detect(msg, raw)
    with pytest.raises(ParseError, match="feedback-report"):
        arf.parse(msg, raw, received_at=RECEIVED_AT)
