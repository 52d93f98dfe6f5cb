"""Generic CSV and key: value feeds."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from cases import intake
from cases.intake import feeds, mime
from cases.intake.base import ParseError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "intake"
RECEIVED = datetime(2024, 6, 1, tzinfo=UTC)


def _parse(raw: bytes):
    msg = mime.parse_message(raw)
    assert feeds.detect(msg, raw)
    return feeds.parse(msg, raw, received_at=RECEIVED)


def _mail_with(body: str, attachment: bytes | None = None, filename: str = "export.csv") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Feed Bot <feed@sensor.example>"
    msg["Subject"] = "daily export"
    msg.set_content(body)
    if attachment is not None:
        msg.add_attachment(attachment, maintype="text", subtype="csv", filename=filename)
    return msg.as_bytes()


def test_a_bare_csv_goes_through_the_dispatcher():
    result = intake.parse((FIXTURES / "feed_bruteforce.csv").read_bytes(), received_at=RECEIVED)
    assert result.error is None, result.error
    assert result.format == "csv"
    first, second, third = result.events
    assert (first.ip, first.port, first.category) == ("192.0.2.44", 51234, "login_attack")
    assert first.occurred_at == datetime(2024, 5, 10, 8, 0, 1, tzinfo=UTC)
    assert second.occurred_at == datetime(2024, 5, 10, 6, 5, tzinfo=UTC)
    assert second.port is None
    assert (third.category, third.occurred_at) == ("scanning", datetime(2024, 5, 10, 8, tzinfo=UTC))
    assert (
        third.evidence
        == "timestamp,src_ip,src_port,dst_port,category,count\n1715328000,192.0.2.46,40000,3389,scanner,5"
    )
    assert first.confidence == 0.8


def test_key_value_records_in_a_mail_body():
    events = _parse((FIXTURES / "feed_keyvalue.eml").read_bytes())
    assert [(e.ip, e.port) for e in events] == [("198.51.100.200", 44321), ("198.51.100.201", None)]
    assert events[0].occurred_at == datetime(2024, 5, 15, 9, 41, 7, tzinfo=UTC)
    assert events[1].occurred_at == datetime(2024, 5, 15, 9, 45, tzinfo=UTC)
    assert events[1].category == "login_attack"
    assert events[0].format == "keyvalue"
    assert events[0].reporter == "waf-alerts@shop.example"


def test_semicolon_csv_with_other_header_names_and_a_hint_from_the_file_name():
    data = b"IP Address;First Seen;Count\n203.0.113.5;2024-05-01 10:00:00;3\n203.0.113.6;2024-05-01 11:00:00;1\n"
    events = _parse(_mail_with("see attachment", data, filename="spam-sources.csv"))
    assert [e.ip for e in events] == ["203.0.113.5", "203.0.113.6"]
    assert {e.category for e in events} == {"spam"}
    assert events[0].confidence == 0.6


def test_a_csv_pasted_below_prose_ends_at_the_blank_line():
    body = "Hello,\nplease see the list below.\n\nip,timestamp\n192.0.2.1,2024-05-01T00:00:00Z\n"
    body += "\nThanks, the sensor team\n"
    events = _parse(_mail_with(body))
    assert [e.ip for e in events] == ["192.0.2.1"]
    assert events.skipped == 0
    assert events[0].category == "other" and events[0].confidence == 0.5


def test_split_date_and_time_columns():
    data = b"src_ip,event_date,event_time\n192.0.2.8,2024-05-02,03:04:05\n"
    [event] = _parse(_mail_with("x", data))
    assert event.occurred_at == datetime(2024, 5, 2, 3, 4, 5, tzinfo=UTC)


def test_broken_quoting_costs_one_row_not_the_file():
    data = (
        b'ip,timestamp,note\n192.0.2.1,2024-05-01 00:00:00,"ok"\n'
        b'192.0.2.3,2024-05-01 00:00:02,"multi\nline, ""quoted"" note"\n'
        b'192.0.2.2,2024-05-01 00:00:01,"never closed\n'
        + b"".join(b"192.0.2.%d,2024-05-01 00:01:00,fine\n" % i for i in range(10, 70))
    )
    events = _parse(_mail_with("x", data))
    ips = [e.ip for e in events]
    assert ips[:3] == ["192.0.2.1", "192.0.2.3", "192.0.2.10"]
    assert 'multi\nline, ""quoted"" note' in events[1].evidence
    assert len(ips) == 62
    assert events.skip_reasons == {"broken CSV quoting": 1}


def test_non_utf8_bytes_invalid_ips_and_future_times_are_skipped_and_counted():
    data = (
        b"ip,timestamp,host\n"
        b"192.0.2.1,2024-05-01 00:00:00,caf\xe9.example\n"
        b"148.81.111.11.12,2024-05-01 00:00:00,x\n"
        b"192.0.2.2,2099-01-01 00:00:00,x\n"
        b"192.0.2.3,1970-01-01 00:00:00,x\n"
        b"192.0.2.4,31/12/2024 25:99,x\n"
    )
    events = _parse(_mail_with("x", data))
    assert [e.ip for e in events] == ["192.0.2.1"]
    assert "café.example" in events[0].evidence
    assert events.skip_reasons == {
        "invalid IP address": 1,
        "time in the future": 1,
        "time implausibly old": 1,
        "unreadable time": 1,
    }


def test_a_feed_where_every_row_is_bad_raises_parse_error():
    data = b"ip,timestamp\n10.1.2.3.4,2024-05-01 00:00:00\n"
    with pytest.raises(ParseError, match="all records skipped"):
        _parse(_mail_with("x", data))


@pytest.mark.parametrize(
    "raw",
    [
        b"name,comment\nbob,hello\n",
        b"just some words about 192.0.2.1 yesterday\n",
        b"IP: 192.0.2.1\nComment: no time here\n",
        b"\xff\xfe\x00garbage\x00",
    ],
)
def test_things_without_an_ip_and_a_time_field_are_not_feeds(raw):
    assert not feeds.detect(mime.parse_message(raw), raw)
