"""Inputs that once broke intake: each must end stored, with a status, without holding up others."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from cases.models import Case, InboundMessage, ParseStatus, Report
from cases.services.intake import process_pending, receive
from tests.cases.helpers import customer_with

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def complaint(n: int, ip: str, subject: bytes = b"scanning") -> bytes:
    return (
        b"From: noc@victim.example\r\nSubject: "
        + subject
        + f"\r\nMessage-ID: <h{n}@victim.example>\r\n\r\n".encode()
        + f"Port scanning from {ip} on 2026-11-20 14:02:00 UTC.\r\n".encode()
    )


def test_undecodable_header_bytes_do_not_hold_up_the_batch():
    customer_with("198.51.100.0/24", "B-1")
    bad, _ = receive(complaint(1, "198.51.100.8", subject=b"caf\xe9 spam \x00 here"), "email")
    good, _ = receive(complaint(2, "198.51.100.9"), "email")
    process_pending(limit=10)
    bad.refresh_from_db()
    good.refresh_from_db()
    assert good.status == ParseStatus.PARSED
    assert bad.status == ParseStatus.PARSED
    assert "\x00" not in bad.subject
    assert Report.objects.count() == 2
    assert all("\x00" not in r.evidence and "\udce9" not in r.evidence for r in Report.objects.all())


def test_a_nul_in_a_header_is_still_stored():
    message, created = receive(b"Subject: a\x00b\r\nMessage-ID: <n\x00ul@x>\r\n\r\nbody", "email")
    assert created
    message.refresh_from_db()
    assert message.subject == "ab" and message.message_id == "<nul@x>"


def test_an_event_cannot_be_added_by_hand_to_a_message_still_waiting(client, noc_user):
    customer_with("198.51.100.0/24", "B-1")
    message, _ = receive(complaint(3, "198.51.100.7"), "email")  # stays "new": no on-commit here
    client.force_login(noc_user)
    response = client.post(
        reverse("cases:message_add_event", args=[message.pk]),
        {"ip": "198.51.100.20", "occurred_at": "2026-11-20T14:02", "category": "spam"},
        follow=True,
    )
    assert b"still being parsed" in response.content
    message.refresh_from_db()
    assert message.status == ParseStatus.NEW
    process_pending(first=message.pk)
    assert list(Report.objects.values_list("ip", flat=True)) == ["198.51.100.7"]


def test_the_complaint_form_reads_its_time_as_utc_whatever_the_server_zone(client, noc_user, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    customer_with("198.51.100.0/24", "B-1")
    client.force_login(noc_user)
    client.post(
        reverse("cases:complaint_new"),
        {"ip": "198.51.100.7", "occurred_at": "2024-05-01T10:00", "category": "spam"},
    )
    assert Report.objects.get().occurred_at.isoformat() == "2024-05-01T10:00:00+00:00"


@pytest.mark.parametrize("query", ["#²", "abc\x00", "#" + "9" * 40])
def test_odd_queue_searches_are_answered_not_crashed(client, noc_user, query):
    customer_with("198.51.100.0/24", "B-1")
    client.force_login(noc_user)
    response = client.get(reverse("cases:home"), {"q": query})
    assert response.status_code == 200
    assert Case.objects.count() == 0


def test_production_start_up_needs_a_database_url():
    env = {"PATH": "/usr/bin:/bin", "SECRET_KEY": "x", "ALLOWED_HOSTS": "desk.example", "DEBUG": "false"}
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "DATABASE_URL is not set" in done.stderr
    assert InboundMessage.objects.count() == 0


@pytest.fixture
def database_refuses_one_address(db):
    """A trigger that makes the database refuse reports of 198.51.100.66, as a real fault would."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION refuse_report() RETURNS trigger AS $$ BEGIN "
                "IF NEW.ip = '198.51.100.66' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER refuse_report BEFORE INSERT ON cases_report "
                "FOR EACH ROW EXECUTE FUNCTION refuse_report()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER refuse_report BEFORE INSERT ON cases_report WHEN NEW.ip = '198.51.100.66' "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
    yield


def test_a_message_the_database_refuses_does_not_hold_up_its_batch(database_refuses_one_address):
    customer_with("198.51.100.0/24", "B-1")
    bad, _ = receive(complaint(10, "198.51.100.66"), "email")
    good, _ = receive(complaint(11, "198.51.100.67"), "email")
    process_pending(limit=10)
    bad.refresh_from_db()
    good.refresh_from_db()
    assert good.status == ParseStatus.PARSED
    assert bad.status == ParseStatus.UNPARSED
    assert "could not be filed" in bad.parse_error
    assert list(Report.objects.values_list("ip", flat=True)) == ["198.51.100.67"]
