from __future__ import annotations

import mailbox
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from cases.models import InboundMessage
from cases.services.intake import receive

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
MAIL = (
    b"From: fbl@mail.example\r\nTo: abuse@isp.example\r\nMessage-ID: <r1@mail.example>\r\n"
    b"Subject: complaint about 198.51.100.7\r\n\r\nSpam came from 198.51.100.7 at 2026-11-20 14:02 UTC.\r\n"
)


def test_the_same_bytes_twice_are_one_message():
    first, created = receive(MAIL, "email")
    again, created_again = receive(MAIL, "imap")
    assert created and not created_again
    assert first.pk == again.pk
    again.refresh_from_db()
    assert again.times_received == 2
    assert again.message_id == "<r1@mail.example>"
    assert again.subject == "complaint about 198.51.100.7"
    assert bytes(again.raw) == MAIL


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage without headers",
        b"Subject: =?bogus-charset?B?////?=\r\nMessage-ID: " + b"x" * 5000 + b"\r\n\r\nbody",
        b"Content-Type: multipart/mixed; boundary=zzz\r\n\r\n--zzz\r\nContent-Type: text/plain\r\n\r\ntrunc",
    ],
)
def test_hostile_or_empty_input_is_still_stored(raw, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        message, created = receive(raw, "email")
    assert created
    message.refresh_from_db()
    assert bytes(message.raw) == raw
    assert message.status in {"parsed", "unparsed"}
    if message.status == "unparsed":
        assert message.parse_error


def test_ingest_email_from_files_mbox_and_maildir(tmp_path):
    eml = tmp_path / "one.eml"
    eml.write_bytes(MAIL)
    box = mailbox.mbox(tmp_path / "box.mbox")
    for n in range(3):
        box.add(MAIL.replace(b"<r1@", f"<mbox{n}@".encode()))
    box.close()
    md = mailbox.Maildir(tmp_path / "Maildir", create=True)
    md.add(MAIL.replace(b"<r1@", b"<md1@"))
    md.close()
    call_command("ingest_email", str(eml), str(tmp_path / "box.mbox"), str(tmp_path / "Maildir"), "--no-progress")
    assert InboundMessage.objects.count() == 5
    assert set(InboundMessage.objects.values_list("channel", flat=True)) == {"bulk"}
    call_command("ingest_email", str(eml), "--no-progress")
    assert InboundMessage.objects.count() == 5


def test_ingest_email_exits_non_zero_for_a_missing_file(tmp_path):
    with pytest.raises(SystemExit) as exc:
        call_command("ingest_email", str(tmp_path / "nope.eml"), "--no-progress")
    assert exc.value.code == 75


@pytest.mark.django_db(transaction=True)
def test_the_mail_server_pipe_exits_zero_once_stored(tmp_path, settings):
    # A real subprocess, as the MTA runs it: message on stdin, exit status is all it reads.
    db = tmp_path / "pipe.sqlite3"
    env = {
        "DATABASE_URL": f"sqlite:///{db}",
        "SECRET_KEY": "x",
        "ALLOWED_HOSTS": "x",
        "PATH": "/usr/bin:/bin",
        "ENRICHMENT_ENABLED": "false",
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT)
    done = subprocess.run([*manage, "ingest_email"], input=MAIL, env=env, cwd=ROOT, capture_output=True)
    assert done.returncode == 0, done.stderr
    count = subprocess.run(
        [
            *manage,
            "shell",
            "-c",
            "from cases.models import InboundMessage as M; print(M.objects.filter(channel='email').count())",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert count.stdout.strip().splitlines()[-1] == "1"
    # A database it cannot write to: non-zero, so the MTA keeps the mail and retries.
    bad = {**env, "DATABASE_URL": f"sqlite:///{tmp_path}/missing/dir/db.sqlite3"}
    failed = subprocess.run([*manage, "ingest_email"], input=MAIL, env=bad, cwd=ROOT, capture_output=True)
    assert failed.returncode != 0


def _zip_bomb() -> bytes:
    import base64
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("report.csv", b"ip,timestamp\n" + b"0" * (300 * 1024 * 1024))
    payload = base64.encodebytes(buf.getvalue())
    return (
        b"From: feed@example.net\r\nSubject: report\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n'
        b'--b\r\nContent-Type: application/zip\r\nContent-Disposition: attachment; filename="r.zip"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + payload + b"--b--\r\n"
    )


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(
            b"From: a@example.net\r\nSubject: big\r\n\r\n" + (b"spam from 198.51.100.7 " * 40 + b"\r\n") * 27000,
            id="25MB",
        ),
        pytest.param(_zip_bomb(), id="zip-bomb"),
        pytest.param(
            b"From: a@example.net\r\nContent-Type: text/html\r\n\r\n<p>Attack from <b>148.81.111.11.12</b></p>",
            id="html-only-invalid-ip",
        ),
    ],
)
def test_huge_or_hostile_messages_are_kept_and_end_with_a_status(raw, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        message, _ = receive(raw, "email")
    message.refresh_from_db()
    assert message.size == len(raw)
    assert message.status in {"parsed", "unparsed"}
    if message.status == "unparsed":
        assert message.parse_error
    assert not message.reports.filter(ip="148.81.111.11").exists()
