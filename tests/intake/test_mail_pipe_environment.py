"""The mail server runs the ingest pipe with an almost empty environment.

What it reads is the exit status: 0 = stored (delete it), 75 = try again later (keep it), anything
else = bounce. So the pipe must find the production settings through an env file, say 75 when it
has none, and never 0 for mail it put somewhere production does not look.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MANAGE = [sys.executable, str(ROOT / "manage.py")]
MAIL = (
    b"From: abuse@reporter.example\r\nTo: abuse@isp.example\r\nSubject: spam from 192.0.2.44\r\n"
    b"Message-ID: <pipe-env-1@reporter.example>\r\nDate: Mon, 30 Nov 2026 14:02:00 +0000\r\n\r\n"
    b"Spam came from 192.0.2.44 at 2026-11-30 14:02 UTC.\r\n"
)
BARE = {"PATH": "/usr/bin:/bin"}


def _run(args, env, **kwargs):
    return subprocess.run([*MANAGE, *args], env=env, cwd=ROOT, capture_output=True, timeout=120, **kwargs)


def _production_env_file(tmp_path: Path, **extra: str) -> Path:
    values = {
        "DEBUG": "false",
        "SECRET_KEY": "pipe-test-secret",
        "ALLOWED_HOSTS": "desk.isp.example",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        # A broker nobody listens on: it is down after the message is stored.
        "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
        "ENRICHMENT_ENABLED": "false",
        **extra,
    }
    path = tmp_path / "abusedesk.env"
    path.write_text("".join(f"{k}={v}   # as in .env.example\n" for k, v in values.items() if v is not None))
    return path


def _stored_count(env) -> int:
    count = "from cases.models import InboundMessage as M; print(M.objects.count())"
    out = _run(["shell", "-c", count], env, text=True)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip().splitlines()[-1])


def test_with_no_environment_at_all_the_pipe_keeps_the_mail_for_later():
    done = _run(["ingest_email"], BARE, input=MAIL)
    assert done.returncode == 75, done.stderr
    assert b"ABUSEDESK_ENV_FILE" in done.stderr


def test_the_env_file_gives_the_pipe_production_settings_and_a_down_broker_is_not_a_failure(tmp_path):
    env = {**BARE, "ABUSEDESK_ENV_FILE": str(_production_env_file(tmp_path))}
    migrated = _run(["migrate", "-v0"], env)
    assert migrated.returncode == 0, migrated.stderr
    done = _run(["ingest_email"], env, input=MAIL)
    # Stored in the database the env file names; parsing waits for the periodic pass, so 0, not 75
    # (75 would make the mail server deliver the same message again).
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "prod.sqlite3").exists()
    assert _stored_count(env) == 1


def test_a_named_env_file_that_is_missing_is_temporary(tmp_path):
    done = _run(["ingest_email"], {**BARE, "ABUSEDESK_ENV_FILE": str(tmp_path / "nope.env")}, input=MAIL)
    assert done.returncode == 75
    assert b"not a readable file" in done.stderr


@pytest.mark.parametrize("missing", ["SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL"])
def test_an_incomplete_production_configuration_is_temporary_not_a_bounce(tmp_path, missing):
    env = {**BARE, "ABUSEDESK_ENV_FILE": str(_production_env_file(tmp_path, **{missing: None}))}
    done = _run(["ingest_email"], env, input=MAIL)
    assert done.returncode == 75
    assert missing.encode() in done.stderr


def test_with_debug_off_a_missing_broker_stops_start_up_with_a_message(tmp_path):
    env = {**BARE, "ABUSEDESK_ENV_FILE": str(_production_env_file(tmp_path, CELERY_BROKER_URL=None))}
    done = _run(["check"], env, text=True)
    assert done.returncode != 0
    assert "CELERY_BROKER_URL is not set" in done.stderr


def test_the_environment_wins_over_the_env_file(tmp_path):
    env = {
        **BARE,
        "ABUSEDESK_ENV_FILE": str(_production_env_file(tmp_path)),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'other.sqlite3'}",
    }
    assert _run(["migrate", "-v0"], env).returncode == 0
    assert (tmp_path / "other.sqlite3").exists()
    assert not (tmp_path / "prod.sqlite3").exists()


def test_the_development_pipe_logs_no_broker_warning(tmp_path):
    env = {**BARE, "DEBUG": "true", "DATABASE_URL": f"sqlite:///{tmp_path / 'dev.sqlite3'}"}
    env["ENRICHMENT_ENABLED"] = "false"
    assert _run(["migrate", "-v0"], env).returncode == 0
    done = _run(["ingest_email", "-v2"], env, input=MAIL)
    assert done.returncode == 0, done.stderr
    assert b"stored message" in done.stdout
    assert b"hostname" not in done.stdout + done.stderr
