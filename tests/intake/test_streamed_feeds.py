"""Big feeds are read as a stream: parse_stream gives parse's answer one event at a time, reading a
zipped or plain CSV line by line, so a feed of a million rows is never held whole; a long field is
read, not refused; a parser that breaks half way keeps what it gave and says why."""

from __future__ import annotations

import gc
import io
import tracemalloc
import zipfile
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest

from cases import intake
from cases.intake import mime, shadowserver, tabular
from cases.models import ParseStatus, Report
from cases.services import intake as intake_service
from tests.cases.helpers import customer_with

RECEIVED = datetime(2026, 11, 21, tzinfo=UTC)
HEADER = '"timestamp","ip","protocol","port","hostname","tag","asn","geo","region","city"\n'


def _rows(count: int, *, banner: str = "") -> str:
    base = datetime(2026, 11, 20, tzinfo=UTC)
    return "".join(
        f'"{base + timedelta(seconds=n):%Y-%m-%d %H:%M:%S}","198.51.{n // 250 % 250}.{n % 250 + 1}",'
        f'"tcp",22,"{banner}","ssh",64500,"NL","X","Y"\n'
        for n in range(count)
    )


def _mail(filename: str, data: bytes, *, subtype: str = "zip", sender: str = "autoreports@shadowserver.org") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["Subject"] = "Shadowserver NL Accessible SSH Report: 2026-11-20"
    msg.set_content("report attached")
    maintype = "text" if subtype == "csv" else "application"
    if maintype == "text":
        msg.add_attachment(data.decode(), subtype=subtype, filename=filename)
    else:
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def _zipped(name: str, text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, text)
    return buffer.getvalue()


def _same(a, b) -> bool:
    return [(e.as_dict(), e.evidence) for e in a] == [(e.as_dict(), e.evidence) for e in b]


def test_a_zipped_shadowserver_feed_streams_the_events_parse_gives():
    raw = _mail("2026-11-20-scan_ssh-nl.csv.zip", _zipped("2026-11-20-scan_ssh-nl.csv", HEADER + _rows(500)))
    listed = intake.parse(raw, received_at=RECEIVED)
    streamed = intake.parse_stream(raw, received_at=RECEIVED)
    assert not isinstance(streamed.events, list)
    assert (streamed.format, streamed.error) == (listed.format, listed.error) == ("shadowserver", None)
    assert _same(list(streamed.events), listed.events) and len(listed.events) == 500


def test_a_csv_pasted_into_prose_streams_only_its_table():
    text = (
        "Hello, we saw these attacks:\n\n"
        "ip,timestamp,category\n198.51.100.7,2026-11-20 10:00:00,ssh brute force\n"
        "198.51.100.8,2026-11-20 10:05:00,ssh brute force\n\n"
        "Regards, 192.0.2.99 team\n"
    )
    msg = EmailMessage()
    msg["From"] = "noc@reporter.example"
    msg["Subject"] = "attacks"
    msg.set_content(text)
    raw = msg.as_bytes()
    listed = intake.parse(raw, received_at=RECEIVED)
    streamed = intake.parse_stream(raw, received_at=RECEIVED)
    assert streamed.format == listed.format == "csv"
    assert [e.ip for e in listed.events] == ["198.51.100.7", "198.51.100.8"]
    assert _same(list(streamed.events), listed.events)


def test_a_feed_without_events_gives_the_same_reason_streamed():
    raw = _mail("2026-11-20-scan_ssh-nl.csv", (HEADER + '"never","not an ip"\n').encode(), subtype="csv")
    listed = intake.parse(raw, received_at=RECEIVED)
    streamed = intake.parse_stream(raw, received_at=RECEIVED)
    assert listed.events == [] and list(streamed.events) == []
    assert (streamed.format, streamed.error) == (listed.format, listed.error)
    assert "no Shadowserver events" in listed.error


def test_the_stream_holds_a_few_events_not_the_feed():
    rows = 20_000
    raw = _mail("2026-11-20-scan_ssh-nl.csv.zip", _zipped("2026-11-20-scan_ssh-nl.csv", HEADER + _rows(rows)))
    gc.collect()
    tracemalloc.start()
    try:
        streamed = intake.parse_stream(raw, received_at=RECEIVED)
        taken = sum(1 for _ in streamed.events)
        _, streamed_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        listed = intake.parse(raw, received_at=RECEIVED)
        _, listed_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert taken == len(listed.events) == rows
    # The list holds 20,000 events (13 MB here, 31 MB for 60,000); the stream one row and one read
    # buffer at a time (5 MB, whatever the rows).
    assert streamed_peak < 8 * 1024 * 1024 < listed_peak


@pytest.mark.parametrize("zipped", [True, False], ids=["zipped", "plain"])
def test_a_field_longer_than_csvs_default_limit_is_read(zipped):
    banner = "x" * 300_000  # csv refuses fields over 128 KiB unless told otherwise
    text = HEADER + _rows(1, banner=banner) + _rows(2)[len(_rows(1)) :]
    name = "2026-11-20-scan_ssh-nl.csv"
    raw = _mail(name + ".zip", _zipped(name, text)) if zipped else _mail(name, text.encode(), subtype="csv")
    msg = mime.parse_message(raw)
    events = shadowserver.parse(msg, raw, received_at=RECEIVED)
    assert len(events) == 2 and events.skipped == 0
    streamed = intake.parse_stream(raw, received_at=RECEIVED)
    assert [e.ip for e in streamed.events] == [e.ip for e in events]
    assert len(events[0].evidence) <= 8000  # the evidence is capped, not the row refused


def test_read_lines_gives_what_the_whole_text_gives():
    # Quoted newlines, a quote that never closes, old Mac and Windows line ends, NUL bytes, a BOM,
    # and a cp1252 line in an otherwise UTF-8 file.
    data = (
        b'\xef\xbb\xbfip,timestamp,note\r\n192.0.2.1,2026-11-20 10:00:00,"two\nlines"\r\n'
        b'192.0.2.2,2026-11-20 10:01:00,"never closed\r192.0.2.3,2026-11-20 10:02:00,ok\n'
        b"192.0.2.4,2026-11-20 10:03:00,caf\xe9\n192.0.2.5,2026-11-20 10:04:00,nu\x00l\n"
    )
    part = EmailMessage()
    whole, streamed = tabular.EventList(), tabular.EventList()
    rows_whole = list(tabular.Table(tabular.bytes_text(part, data), whole).rows())
    rows_streamed = list(tabular.Table(tabular.read_lines(part, lambda: io.BytesIO(data)), streamed).rows())
    assert rows_streamed == rows_whole
    assert [r[0] for r in rows_whole] == ["192.0.2.1", "192.0.2.3", "192.0.2.4", "192.0.2.5"]
    assert streamed.skip_reasons == whole.skip_reasons == {"broken CSV quoting": 1}


def test_a_line_without_an_end_is_dropped_and_counted_not_held():
    data = b"ip,timestamp\n" + b"9" * (tabular.MAX_LINE_BYTES + 10) + b"\n192.0.2.1,2026-11-20 10:00:00\n"
    skipped = tabular.EventList()
    lines = list(tabular.read_lines(EmailMessage(), lambda: io.BytesIO(data), skipped))
    assert lines == ["ip,timestamp", "192.0.2.1,2026-11-20 10:00:00"]
    assert skipped.skip_reasons == {"line over 1 MB": 1}


@pytest.mark.django_db
def test_a_parser_that_breaks_half_way_keeps_what_it_filed_and_says_why(settings, monkeypatch):
    settings.INTAKE_CHUNK_EVENTS = 2
    settings.ENRICHMENT_ENABLED = False
    customer_with("198.51.0.0/16", "F-1")
    real = shadowserver.parse_stream

    def breaks_after_three(msg, raw, **kwargs):
        for n, event in enumerate(real(msg, raw, **kwargs)):
            if n == 3:
                raise OSError("the disk went away")
            yield event

    monkeypatch.setattr(shadowserver, "parse_stream", breaks_after_three)
    raw = _mail("2026-11-20-scan_ssh-nl.csv", (HEADER + _rows(10)).encode(), subtype="csv")
    message, _ = intake_service.receive(raw, "email")
    intake_service.process_pending(first=message.pk)
    message.refresh_from_db()
    assert (message.status, message.events_filed, message.format) == (ParseStatus.PARSED, 3, "shadowserver")
    assert "the parser stopped after 3 events: OSError: the disk went away" in message.parse_error
    assert Report.objects.count() == 3


def test_a_desk_that_takes_bigger_mail_parses_all_of_it(settings, monkeypatch):
    monkeypatch.setattr(mime, "MAX_MESSAGE_BYTES", 4096)
    raw = _mail("2026-11-20-scan_ssh-nl.csv", (HEADER + _rows(200)).encode(), subtype="csv")
    assert len(raw) > 3 * 4096
    settings.INTAKE_MAX_MESSAGE_BYTES = 1024
    assert len(intake.parse(raw, received_at=RECEIVED).events) < 200  # cut at the parsers' own limit
    settings.INTAKE_MAX_MESSAGE_BYTES = len(raw)
    assert len(intake.parse(raw, received_at=RECEIVED).events) == 200
