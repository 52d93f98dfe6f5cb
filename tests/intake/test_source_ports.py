"""Parsers keep the source port wherever a report gives it: behind CGNAT it names the subscriber."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from cases.intake import parse

RECEIVED = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _arf(source_port: str | None) -> bytes:
    port_line = f"Source-Port: {source_port}\r\n" if source_port is not None else ""
    return (
        "From: fbl@feedback.mail.example\r\nTo: abuse@isp.example\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
        "Message-ID: <port-1@feedback.mail.example>\r\nSubject: FBL report\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nspam complaint\r\n"
        "--b\r\nContent-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\nUser-Agent: FBL/2\r\nVersion: 1\r\nSource-IP: 198.51.100.130\r\n"
        f"{port_line}Arrival-Date: Mon, 30 Nov 2026 09:58:12 +0000\r\n\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: x@deals.example\r\nSubject: offer\r\n\r\n--b--\r\n"
    ).encode()


def test_arf_keeps_the_source_port_of_rfc_6692():
    [event] = parse(_arf("51234"), received_at=RECEIVED).events
    assert (event.ip, event.port) == ("198.51.100.130", 51234)
    [without] = parse(_arf(None), received_at=RECEIVED).events
    assert without.port is None
    # Not a port: dropped, the report itself still counts.
    [bad] = parse(_arf("99999"), received_at=RECEIVED).events
    assert bad.port is None and bad.ip == "198.51.100.130"


def test_xarf_v4_keeps_source_port():
    body = {
        "xarf_version": "4.0.0",
        "report_id": "8f1c2b9e-3c1a-4c55-9a51-2f2e0c1d7a10",
        "timestamp": "2026-11-30T09:58:12Z",
        "reporter": {"org": "Example CERT", "contact": "cert@cert.example", "domain": "cert.example"},
        "sender": {"org": "Example CERT", "contact": "cert@cert.example", "domain": "cert.example"},
        "source_identifier": "198.51.100.131",
        "source_port": 40123,
        "category": "connection",
        "type": "login_attack",
        "service": "ssh",
        "destination_ip": "192.0.2.10",
        "destination_port": 22,
        "protocol": "tcp",
        "attempt_count": 40,
        "evidence_source": "honeypot",
    }
    raw = (
        "From: cert@cert.example\r\nTo: abuse@isp.example\r\nSubject: XARF report\r\n"
        "Message-ID: <xarf-port@cert.example>\r\nContent-Type: application/json\r\n\r\n" + json.dumps(body)
    ).encode()
    [event] = parse(raw, received_at=RECEIVED).events
    assert (event.ip, event.port) == ("198.51.100.131", 40123)


def test_shadowserver_keeps_src_port():
    csv = (
        '"timestamp","src_ip","src_port","dst_ip","dst_port","protocol","infection","asn"\r\n'
        '"2026-11-30 09:00:00","198.51.100.132","62001","192.0.2.1","80","tcp","mirai","64500"\r\n'
    )
    raw = (
        "From: autoreports@shadowserver.example\r\nTo: abuse@isp.example\r\n"
        "Subject: [64500] Shadowserver Drone Report: 2026-11-30\r\nMessage-ID: <ss-port@shadowserver.example>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="s"\r\n\r\n'
        "--s\r\nContent-Type: text/plain\r\n\r\n"
        "attached\r\n--s\r\nContent-Type: text/csv\r\n"
        'Content-Disposition: attachment; filename="2026-11-30-botnet_drone-asn64500.csv"\r\n\r\n' + csv + "--s--\r\n"
    ).encode()
    [event] = parse(raw, received_at=RECEIVED).events
    assert (event.ip, event.port) == ("198.51.100.132", 62001)
