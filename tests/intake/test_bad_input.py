"""Bad input never raises: each case ends with events or an error reason."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from cases.intake import mime, parse

from . import RECEIVED_AT, fixture


def test_empty_message():
    for raw in (b"", b"\r\n\r\n  \n"):
        result = parse(raw, received_at=RECEIVED_AT)
        assert result.events == []
        assert result.error == "empty message"


def test_headers_only_message_without_body():
    result = parse(b"From: a@b.example\nSubject: x\n\n", received_at=RECEIVED_AT)
    assert result.events == []
    assert result.error == "the message has no readable text"


def test_truncated_arf_still_gives_the_source_ip():
    result = parse(fixture("bad_truncated_arf.eml"), received_at=RECEIVED_AT)
    assert [e.ip for e in result.events] == ["198.51.100.7"]
    assert result.events[0].occurred_at == datetime(2024, 1, 15, 14, 2, 3, tzinfo=UTC)


def test_arf_cut_before_its_feedback_part_falls_back_to_its_text_with_the_reason():
    result = parse(fixture("arf_rfc5965.eml")[:700], received_at=RECEIVED_AT)
    assert result.format == "freetext"
    [event] = result.events
    assert event.ip == "198.51.100.7"
    assert event.confidence < 0.5
    assert event.evidence.startswith("[arf parser: multipart/report without a message/feedback-report part")


def test_arf_cut_before_any_address_gives_the_arf_reason():
    raw = fixture("arf_rfc5965.eml")
    result = parse(raw[: raw.index(b"This is an email")], received_at=RECEIVED_AT)
    assert result.events == []
    assert result.format == "arf"
    assert "feedback-report" in result.error


def test_unknown_charset_and_unreadable_date_header():
    result = parse(fixture("bad_unknown_charset.eml"), received_at=RECEIVED_AT)
    [event] = result.events
    assert event.ip == "198.51.100.150"
    assert event.occurred_at == datetime(2024, 1, 26, 7, 0, tzinfo=UTC)
    assert event.category == "spam"


def test_wrong_charset_is_decoded_with_a_fallback():
    [event] = parse(fixture("bad_wrong_charset.eml"), received_at=RECEIVED_AT).events
    assert event.ip == "203.0.113.151"
    assert "Müll" in event.evidence


def test_broken_transfer_encodings_do_not_stop_the_parse():
    result = parse(fixture("bad_broken_base64.eml"), received_at=RECEIVED_AT)
    assert result.error is None
    assert "198.51.100.153" in [e.ip for e in result.events]


def test_a_25_mb_message_finishes_quickly():
    filler = (b"x" * 76 + b"\n") * (25 * 1024 * 1024 // 77)
    raw = (
        b"From: big@victim.example\nSubject: huge spam\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
        b"Content-Type: text/plain\n\nspam from 198.51.100.99\n" + filler
    )
    assert len(raw) > 25 * 1000 * 1000
    start = time.monotonic()
    result = parse(raw, received_at=RECEIVED_AT)
    assert time.monotonic() - start < 20
    assert [e.ip for e in result.events] == ["198.51.100.99"]
    assert len(result.events[0].evidence) <= 8000


@pytest.mark.parametrize(
    "text",
    [
        "148.81.111.11.12",
        "999.1.1.1",
        "1.2.3",
        "010.1.1.1",
        "1.2.3.4.5.6",
        "256.256.256.256",
        "12:34:56",
        "2001:db8:::1",
    ],
)
def test_invalid_addresses_are_not_extracted(text):
    assert mime.find_ips(f"attack from {text} yesterday") == []
    raw = f"From: a@b.example\nSubject: spam\n\nspam from {text}\n".encode()
    result = parse(raw, received_at=RECEIVED_AT)
    assert result.events == []
    assert result.error


def test_valid_addresses_next_to_punctuation_are_extracted():
    text = "(198.51.100.1), [198.51.100.2]. 198.51.100.3:8080; IP:198.51.100.4 ::ffff:198.51.100.5 [IPv6:2001:DB8::A]"
    assert mime.find_ip_ports(text) == [
        ("198.51.100.1", None),
        ("198.51.100.2", None),
        ("198.51.100.3", 8080),
        ("198.51.100.4", None),
        ("198.51.100.5", None),
        ("2001:db8::a", None),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Tue, 19 Jan 2016 14:32:40 -0500 (EST)", datetime(2016, 1, 19, 19, 32, 40, tzinfo=UTC)),
        ("Tue, 19 Jan 2016 14:32:49 EST", datetime(2016, 1, 19, 19, 32, 49, tzinfo=UTC)),
        ("19 Jan 2016 20:32:36 +0100", datetime(2016, 1, 19, 19, 32, 36, tzinfo=UTC)),
        ("2024-01-15T14:02:03Z", datetime(2024, 1, 15, 14, 2, 3, tzinfo=UTC)),
        ("2024-01-15T14:02:03.123+02:00", datetime(2024, 1, 15, 12, 2, 3, 123000, tzinfo=UTC)),
        ("2024-01-15 14:02:03 UTC", datetime(2024, 1, 15, 14, 2, 3, tzinfo=UTC)),
        ("15.01.2024 14:02", datetime(2024, 1, 15, 14, 2, tzinfo=UTC)),
        ("Mon Jan 15 14:02:03 2024", datetime(2024, 1, 15, 14, 2, 3, tzinfo=UTC)),
        ("1705327323", datetime(2024, 1, 15, 14, 2, 3, tzinfo=UTC)),
        ("Tue, 19 Jan 2016 14:32:34", datetime(2016, 1, 19, 14, 32, 34, tzinfo=UTC)),
    ],
)
def test_odd_date_formats_parse_to_aware_utc(value, expected):
    assert mime.parse_date(value, now=RECEIVED_AT) == expected


@pytest.mark.parametrize(
    "value",
    [
        "Sat, 18 Jan 2099 09:00:00 +0000",
        "2024-02-05T00:00:00Z",
        "1 Jan 1970 00:00 +0000",
        "soon",
        "",
        "2024-13-45 99:99",
    ],
)
def test_future_ancient_and_garbage_dates_are_rejected(value):
    assert mime.parse_date(value, now=RECEIVED_AT) is None


def test_future_dated_complaint_falls_back_to_the_time_received():
    raw = b"From: a@b.example\nSubject: spam\nDate: Sat, 18 Jan 2099 09:00:00 +0000\n\nspam from 198.51.100.60\n"
    [event] = parse(raw, received_at=RECEIVED_AT).events
    assert event.occurred_at == RECEIVED_AT


def test_naive_received_at_is_taken_as_utc():
    raw = b"From: a@b.example\nSubject: spam\n\nspam from 198.51.100.61\n"
    [event] = parse(raw, received_at=datetime(2024, 2, 1, 12, 0)).events
    assert event.occurred_at == RECEIVED_AT


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00\x01\x02\xff" * 100,
        b"Content-Type: multipart/mixed; boundary=\n\n--\n--\n",
        b"Content-Type: multipart/mixed\nFrom: a@b\n\nno boundary 198.51.100.62\n",
        b"From: <<<@@@>>>\nTo: ,,,\nSubject: =?utf-8?B?####?=\nMessage-ID: <\n\n198.51.100.63\n",
        b"Received: from\nReceived: ;;;;\nFrom: a@b\n\n",
        "Ünïcödé only, no IP".encode("utf-16"),
    ],
)
def test_garbage_never_raises(raw):
    result = parse(raw, received_at=RECEIVED_AT)
    assert result.events or result.error
