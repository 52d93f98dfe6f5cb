"""The ladder after filing: a message that touches a case or two has its cases evaluated in the
worker that filed it, right after the commit; when that fails, the evaluation is queued for a worker
(whose retries take over). A feed touching many cases queues one task for them."""

from __future__ import annotations

import logging

import pytest
from django.db import OperationalError
from django.utils import timezone

from cases.intake.base import ParsedEvent
from cases.models import Case, NoticeKind, Rung
from cases.services import filing, intake, ladder
from tests.cases.helpers import customer_with

pytestmark = pytest.mark.django_db


def arf(ip: str, n: int = 1) -> bytes:
    date = timezone.now().strftime("%a, %d %b %Y %H:%M:%S +0000")
    return (
        "From: fbl@feedback.mail.example\r\nTo: abuse@isp.example\r\n"
        f"Date: {date}\r\nMessage-ID: <fbl-after-{n}@feedback.mail.example>\r\nSubject: complaint\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary="p"\r\n\r\n'
        "--p\r\nContent-Type: text/plain\r\n\r\nAn abuse report.\r\n"
        "--p\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: abuse\r\nUser-Agent: FBL/1.0\r\nVersion: 1\r\nSource-IP: {ip}\r\nArrival-Date: {date}\r\n\r\n"
        "--p\r\nContent-Type: message/rfc822\r\n\r\n"
        f"Received: from shop ([{ip}]) by mx.feedback.mail.example; {date}\r\nSubject: deal {n}\r\n\r\nBuy.\r\n"
        "--p--\r\n"
    ).encode()


def test_a_filed_message_climbs_its_case_in_the_same_worker(django_capture_on_commit_callbacks):
    customer_with("198.51.100.0/24", "A-1")
    with django_capture_on_commit_callbacks(execute=True):
        message, _ = intake.receive(arf("198.51.100.7"), "email")
    case = Case.objects.get()
    assert case.report_count == 1
    assert case.rung == Rung.FIRST_NOTICE  # the default policy: a first notice after one report
    assert case.notices.filter(kind=NoticeKind.FIRST_NOTICE).count() == 1


def test_a_failed_evaluation_is_queued_for_a_worker(django_capture_on_commit_callbacks, monkeypatch, caplog):
    customer_with("198.51.100.0/24", "A-1")
    real = ladder.evaluate_cases
    calls = []

    def down_once(ids, **kwargs):
        calls.append(list(ids))
        if len(calls) == 1:
            raise OperationalError("the database went away")
        return real(ids, **kwargs)

    monkeypatch.setattr(ladder, "evaluate_cases", down_once)
    with caplog.at_level(logging.WARNING, logger="cases.queue"), django_capture_on_commit_callbacks(execute=True):
        intake.receive(arf("198.51.100.8", 2), "email")
    case = Case.objects.get()
    # In-process first (it failed), then the queued task (run here: the test settings run tasks eagerly).
    assert calls == [[case.pk], [case.pk]]
    assert "queued for a worker" in caplog.text
    assert Case.objects.get().rung == Rung.FIRST_NOTICE


def test_a_chunk_touching_many_cases_queues_their_evaluation(monkeypatch, settings):
    settings.ENRICHMENT_ENABLED = False  # no look-up tasks among those queued
    queued, run_here = [], []
    monkeypatch.setattr(filing.queue, "enqueue_on_commit", lambda name, *args: queued.append(name))
    monkeypatch.setattr(filing.queue, "run_after_commit", lambda name, *args: run_here.append(name))
    for n in range(filing.LADDER_INLINE_CASES + 1):
        customer_with(f"203.0.113.{n * 8}/29", f"M-{n}")
    events = [
        ParsedEvent(ip=f"203.0.113.{n * 8 + 1}", occurred_at=timezone.now(), category="scanning", format="csv")
        for n in range(filing.LADDER_INLINE_CASES + 1)
    ]
    filing.file_chunk([(e, None) for e in events])
    assert queued == ["cases.tasks_ladder.evaluate_cases_task"] and run_here == []
    one = ParsedEvent(ip="203.0.113.2", occurred_at=timezone.now(), category="spam", format="csv")
    filing.file_chunk([(one, None)])
    assert run_here == ["cases.tasks_ladder.evaluate_cases_task"]
