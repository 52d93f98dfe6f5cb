"""Shadowserver: CSV (zipped or not) attached to a mail, one event per row."""

from __future__ import annotations

import io
import time
import zipfile
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from cases import intake
from cases.intake import mime, shadowserver, tabular
from cases.intake.base import ParseError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "intake"
RECEIVED = datetime(2024, 6, 1, tzinfo=UTC)
DRONE_HEADER = '"timestamp","ip","asn","geo","url","type","http_agent","src_port","hostname","dst_port","dst_ip"\n'


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def _mail(filename: str, data: bytes, sender: str = "Shadowserver <autoreports@shadowserver.org>") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["Subject"] = "Report: 2024-05-14"
    msg.set_content("report attached")
    msg.add_attachment(data, maintype="application", subtype="zip", filename=filename)
    return msg.as_bytes()


def _parse(raw: bytes):
    msg = mime.parse_message(raw)
    assert shadowserver.detect(msg, raw)
    return shadowserver.parse(msg, raw, received_at=RECEIVED)


def test_it_reads_a_plain_csv_attachment_and_skips_bad_rows():
    events = _parse((FIXTURES / "shadow_scan_ntp.eml").read_bytes())
    assert [e.ip for e in events] == ["203.0.113.10", "203.0.113.11"]
    first = events[0]
    assert first.occurred_at == datetime(2024, 5, 14, 1, 13, 17, tzinfo=UTC)
    assert (first.port, first.category, first.format) == (123, "vulnerable_service", "shadowserver")
    assert (first.reporter, first.reporter_org) == ("autoreports@shadowserver.org", "The Shadowserver Foundation")
    assert first.external_id == "2024-05-14-scan_ntp-example_isp-asn.csv#1"
    assert first.evidence.startswith('"timestamp","ip"') and "ntp1.cust.example" in first.evidence
    # 148.81.111.11.12 is not read as 148.81.111.11; the 2031 row is a clock error.
    assert events.skipped == 2
    assert events.skip_reasons == {"invalid IP address": 1, "time in the future": 1}


def test_a_zipped_drone_report_is_botnet_with_the_source_port():
    rows = '"2024-05-13 22:09:04","192.0.2.77",64500,"NL","GET /x HTTP/1.0","downadup","Mozilla/4.0",8726,,80,'
    rows += '"203.0.113.250"\n'
    raw = _mail(
        "2024-05-14-sinkhole_http_drone-example-asn.csv.zip",
        _zip({"2024-05-14-sinkhole_http_drone-example-asn.csv": (DRONE_HEADER + rows).encode()}),
    )
    [event] = _parse(raw)
    assert (event.ip, event.port, event.category) == ("192.0.2.77", 8726, "botnet")
    assert intake.parse(raw, received_at=RECEIVED).format == "shadowserver"


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("scan_rdp", "vulnerable_service"),
        ("scan_ssh", "vulnerable_service"),
        ("scan6_dns", "vulnerable_service"),
        ("dns_openresolver", "vulnerable_service"),
        ("accessible-rdp", "vulnerable_service"),
        ("Accessible Apple Filing Protocol", "vulnerable_service"),
        ("botnet_drone", "botnet"),
        ("event4_sinkhole_http", "botnet"),
        ("infected_host", "botnet"),
        ("compromised_website", "malware"),
        ("spam_url", "spam"),
        ("ssh_brute_force", "login_attack"),
        ("event4_honeypot_brute_force", "login_attack"),
        ("event4_honeypot_ddos_amp", "ddos"),
        ("event4_honeypot_darknet", "scanning"),
        ("blocklist", None),
    ],
)
def test_the_category_comes_from_the_report_name(name, category):
    assert tabular.classify(name) == category


def test_report_names_are_read_from_file_name_then_subject():
    assert shadowserver.report_name("2015-01-01-scan_ntp-sample-asn.csv.zip") == "scan_ntp"
    assert shadowserver.report_name("2023-05-01-event4_honeypot_brute_force-example_isp-geo.csv") == (
        "event4_honeypot_brute_force"
    )
    assert shadowserver.report_name("report.csv", "[SAMPLE] Shadowserver Accessible RDP Report: 2019-01-16") == (
        "accessible rdp"
    )


def test_fifty_thousand_rows_parse_well_under_ten_seconds():
    header = '"timestamp","ip","protocol","port","hostname","tag","asn","geo","region","city"\n'
    rows = "".join(
        f'"2024-05-13 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}","198.51.{i // 250 % 256}.{i % 250 + 1}",'
        f'"tcp",11211,"h{i}.example.net","memcached",64500,"NL","NOORD-HOLLAND","AMSTERDAM"\n'
        for i in range(50_000)
    )
    name = "2024-05-14-scan_memcached-example-asn.csv"
    raw = _mail(name + ".zip", _zip({name: (header + rows).encode()}))
    started = time.perf_counter()
    events = _parse(raw)
    elapsed = time.perf_counter() - started
    assert len(events) == 50_000 and events.skipped == 0
    assert events[-1].ip == "198.51.199.250"
    assert elapsed < 5, f"50,000 rows took {elapsed:.1f} s"


def test_odd_dates_and_non_utf8_bytes_are_handled_per_row():
    csv = (
        DRONE_HEADER.encode()
        + b'"2024-05-13T22:09:04Z","192.0.2.1",1,"NL","","conficker","",1000,"h\xe9te.example",80,""\n'
        + b'"13/May/2024:22:09:04 +0200","192.0.2.2",1,"NL","","conficker","",1001,,80,""\n'
        + b'"not a date","192.0.2.3",1,"NL","","conficker","",1002,,80,""\n'
        + b'"1715638144","192.0.2.4",1,"NL","","conficker","",1003,,80,""\n'
    )
    raw = _mail("2024-05-14-botnet_drone-example-asn.csv", csv)
    events = _parse(raw)
    assert [e.ip for e in events] == ["192.0.2.1", "192.0.2.2", "192.0.2.4"]
    assert events[1].occurred_at == datetime(2024, 5, 13, 20, 9, 4, tzinfo=UTC)
    assert events[2].occurred_at == datetime.fromtimestamp(1715638144, UTC)
    assert events.skip_reasons == {"unreadable time": 1}


def test_a_report_where_every_row_is_bad_is_a_parse_error_with_the_reasons():
    csv = b'"timestamp","ip","port"\n"2024-05-13 01:00:00","999.1.1.1",1\n"2024-05-13 01:00:00","10.0.0.1.5",2\n'
    with pytest.raises(ParseError, match="invalid IP address: 2"):
        _parse(_mail("2024-05-14-scan_ftp-example-asn.csv", csv))


def test_a_csv_without_ip_column_is_a_parse_error():
    with pytest.raises(ParseError, match="no IP and time columns"):
        _parse(_mail("2024-05-14-scan_ftp-example-asn.csv", b'"when","who"\n"2024-05-13 01:00:00","192.0.2.1"\n'))


def test_mail_from_elsewhere_without_shadowserver_file_names_is_not_detected():
    raw = _mail("export.csv", b"timestamp,ip\n2024-05-13 01:00:00,192.0.2.1\n", sender="someone@feed.example")
    assert not shadowserver.detect(mime.parse_message(raw), raw)
