"""manage.py parse_report: shows how files parse, one JSON line (or table) per file, and stores nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cases.models import Case, CaseEvent, InboundMessage, Notice, Report

PROJECT = Path(__file__).resolve().parents[2]
EVENT_KEYS = {"ip", "port", "occurred_at", "category", "reporter", "external_id"}

# A feedback report per RFC 5965: Source-IP and Arrival-Date in the machine-readable part.
ARF = b"""\
From: fbl@mailbox.example
To: abuse@isp.example
Subject: FW: complaint about a message from 198.51.100.7
Date: Tue, 14 May 2024 10:05:00 +0000
Message-ID: <fbl-1@mailbox.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="b1"

--b1
Content-Type: text/plain

This is an email abuse report for a message received from IP 198.51.100.7.

--b1
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ExampleFBL/1.0
Version: 1
Source-IP: 198.51.100.7
Arrival-Date: Tue, 14 May 2024 09:58:12 +0000
Original-Mail-From: <sender@shop.example>

--b1
Content-Type: message/rfc822

Received: from mail.shop.example (mail.shop.example [198.51.100.7])
\tby mx.mailbox.example with ESMTP id 4B2; Tue, 14 May 2024 09:58:12 +0000
From: sender@shop.example
To: someone@mailbox.example
Subject: Cheap watches
Date: Tue, 14 May 2024 09:58:10 +0000
Message-ID: <spam-1@shop.example>

Buy now.

--b1--
"""

# XARF v4 (core schema): source_identifier, timestamp, category/type.
XARF4 = {
    "xarf_version": "4.2.0",
    "report_id": "0f3b6a52-2f1c-4d6e-9d1e-6c0b7d2a9e11",
    "timestamp": "2024-05-14T08:00:00Z",
    "reporter": {"org": "SSH Watch", "contact": "abuse@sshwatch.example", "domain": "sshwatch.example"},
    "sender": {"org": "SSH Watch", "contact": "abuse@sshwatch.example", "domain": "sshwatch.example"},
    "source_identifier": "203.0.113.9",
    "source_port": 51234,
    "category": "connection",
    "type": "login_attack",
    "first_seen": "2024-05-14T08:00:00Z",
    "service": "ssh",
}

NOTHING = b"""\
From: someone@example.org
To: abuse@isp.example
Subject: hello
Date: Tue, 14 May 2024 10:05:00 +0000
Message-ID: <hello-1@example.org>

Just saying hello. There is no address or incident in this message.
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {"arf": tmp_path / "fbl.eml", "xarf4": tmp_path / "ssh.json", "nothing": tmp_path / "hello.eml"}
    paths["arf"].write_bytes(ARF)
    paths["xarf4"].write_text(json.dumps(XARF4))
    paths["nothing"].write_bytes(NOTHING)
    return paths


def run(*args: str) -> tuple[list[str], CommandError | None]:
    out = StringIO()
    error = None
    try:
        call_command("parse_report", *args, stdout=out)
    except CommandError as exc:
        error = exc
    return out.getvalue().splitlines(), error


def json_lines(*args: str) -> tuple[list[dict], CommandError | None]:
    lines, error = run("--json", "--offline", *args)
    return [json.loads(line) for line in lines], error


def test_it_prints_one_json_object_per_file_with_the_events(files):
    objects, error = json_lines(str(files["arf"]), str(files["xarf4"]))
    assert error is None
    assert [o["file"] for o in objects] == [str(files["arf"]), str(files["xarf4"])]
    arf, xarf4 = objects
    assert set(arf) == {"file", "format", "events", "error"}
    assert arf["format"] == "arf"
    assert arf["error"] is None
    assert len(arf["events"]) == 1
    assert set(arf["events"][0]) == EVENT_KEYS
    assert arf["events"][0]["ip"] == "198.51.100.7"
    assert arf["events"][0]["occurred_at"] == "2024-05-14T09:58:12Z"
    assert arf["events"][0]["category"] == "spam"
    assert xarf4["format"] == "xarf4"
    assert xarf4["error"] is None
    assert [(e["ip"], e["port"], e["category"]) for e in xarf4["events"]] == [("203.0.113.9", 51234, "login_attack")]
    assert xarf4["events"][0]["occurred_at"] == "2024-05-14T08:00:00Z"


def test_a_file_with_nothing_in_it_gives_an_error_object_and_no_failure(files):
    objects, error = json_lines(str(files["nothing"]))
    assert error is None
    assert len(objects) == 1
    assert objects[0]["file"] == str(files["nothing"])
    assert objects[0]["events"] == []
    assert isinstance(objects[0]["error"], str) and objects[0]["error"]


def test_a_missing_file_gives_an_error_object_and_exit_status_1_after_the_rest(files, tmp_path):
    missing = tmp_path / "not-there.eml"
    objects, error = json_lines(str(missing), str(files["arf"]))
    # The good file after the missing one is still parsed and printed; the failure comes at the end.
    assert [o["file"] for o in objects] == [str(missing), str(files["arf"])]
    assert objects[0]["events"] == [] and objects[0]["format"] == ""
    assert "cannot read" in objects[0]["error"]
    assert objects[1]["events"][0]["ip"] == "198.51.100.7"
    assert error is not None and error.returncode == 1


def test_a_folder_is_not_a_readable_file(tmp_path):
    objects, error = json_lines(str(tmp_path))
    assert objects[0]["events"] == [] and "cannot read" in objects[0]["error"]
    assert error is not None and error.returncode == 1


@pytest.mark.django_db
def test_it_writes_nothing_to_the_database(files, tmp_path):
    models = (InboundMessage, Report, Case, CaseEvent, Notice)
    with CaptureQueriesContext(connection) as queries:
        out = StringIO()
        # Not --offline: the allocation look-up (a read) runs as in the real pipeline.
        with pytest.raises(CommandError):
            call_command(
                "parse_report",
                "--json",
                str(files["arf"]),
                str(files["xarf4"]),
                str(files["nothing"]),
                str(tmp_path / "missing.eml"),
                stdout=out,
            )
    assert len(out.getvalue().splitlines()) == 4
    writes = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().split()[0].upper() != "SELECT"]
    assert writes == []
    assert [m.objects.count() for m in models] == [0] * len(models)


def test_without_json_it_prints_a_table_per_file(files):
    lines, error = run("--offline", str(files["arf"]), str(files["nothing"]))
    assert error is None
    text = "\n".join(lines)
    assert f"== {files['arf']}" in text
    assert "format: arf   events: 1" in text
    row = next(line for line in lines if line.startswith("198.51.100.7"))
    assert "2024-05-14T09:58:12Z" in row and "spam" in row
    assert f"== {files['nothing']}" in text
    assert "events: 0" in text
    assert any(line.startswith("error: ") for line in lines)


def test_received_at_sets_the_fallback_time_and_must_carry_a_zone(files):
    with pytest.raises(CommandError, match="time zone"):
        call_command("parse_report", "--received-at", "2024-05-14T10:00:00", str(files["arf"]), stdout=StringIO())
    with pytest.raises(CommandError, match="ISO 8601"):
        call_command("parse_report", "--received-at", "yesterday", str(files["arf"]), stdout=StringIO())
    objects, error = json_lines("--received-at", "2024-05-15T00:00:00+02:00", str(files["arf"]))
    assert error is None and objects[0]["events"][0]["occurred_at"] == "2024-05-14T09:58:12Z"


def test_the_exit_status_from_the_shell(files, tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    manage = [sys.executable, str(PROJECT / "manage.py"), "parse_report", "--json", "--offline"]
    ok = subprocess.run([*manage, str(files["nothing"])], cwd=PROJECT, env=env, capture_output=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["events"] == []
    bad = subprocess.run(
        [*manage, str(tmp_path / "gone.eml"), str(files["arf"])], cwd=PROJECT, env=env, capture_output=True, timeout=60
    )
    assert bad.returncode == 1
    assert [json.loads(line)["file"] for line in bad.stdout.splitlines()] == [
        str(tmp_path / "gone.eml"),
        str(files["arf"]),
    ]
    assert b"could not be read" in bad.stderr
