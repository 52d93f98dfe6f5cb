"""A real Celery worker on a real Redis sends notices to an SMTP server on 127.0.0.1: the ladder's
first notice end to end, a server that refuses and then accepts, and one that refuses for good."""

from __future__ import annotations

import pytest

from cases.models import CaseEvent, Notice, NoticeKind, NoticeStatus
from cases.services import notices
from tests import fixtures_services
from tests.fixtures_services import wait_until
from tests.notices import smtp
from tests.notices.builders import T0, customer_on, file_reports, spam
from tests.notices.workers import route_to_workers

# Until tests/conftest.py loads tests.fixtures_services as a plugin (harmless after).
redis_url = fixtures_services.redis_url
celery_worker_process = fixtures_services.celery_worker_process
scripted_smtp = smtp.scripted_smtp

pytestmark = pytest.mark.integration


@pytest.fixture
def celery_worker_env(scripted_smtp: smtp.ScriptedSmtp) -> dict[str, str]:
    # Retries after a second (then two), so a refusal-then-acceptance fits in a test.
    return {**scripted_smtp.worker_env(), "NOTICE_RETRY_BASE_SECONDS": "1", "ENRICHMENT_ENABLED": "false"}


@pytest.fixture
def worker(celery_worker_process, monkeypatch, settings):
    """The worker, with the notices queued in this process handed to it through Redis."""
    settings.ENRICHMENT_ENABLED = False
    route_to_workers(monkeypatch, celery_worker_process.sender, celery_worker_process.queue)
    return celery_worker_process


def notice_sent(pk: int):
    def check():
        row = Notice.objects.get(pk=pk)
        return row if row.status in (NoticeStatus.SENT, NoticeStatus.FAILED) else None

    return check


def test_a_report_filed_here_gets_its_first_notice_written_and_sent_by_the_worker(
    worker, scripted_smtp, django_capture_on_commit_callbacks, monkeypatch
):
    # The ladder runs in the worker too: filing here queues its evaluation there.
    route_to_workers(monkeypatch, worker.sender, worker.queue, ("cases.tasks_notices.", "cases.tasks_ladder."))
    customer = customer_on("198.51.100.0/24")
    file_reports(django_capture_on_commit_callbacks, spam(evidence="spam from 198.51.100.7 to 192.0.2.1"))
    notice = wait_until(
        lambda: Notice.objects.filter(case__customer=customer, status=NoticeStatus.SENT).first(),
        timeout=30,
        what="the worker's ladder to write the first notice and send it",
    )
    assert notice.kind == NoticeKind.FIRST_NOTICE
    [mail] = scripted_smtp.wait_for(1)
    assert mail.message["Message-ID"] == notice.message_id
    assert mail.rcpt_tos == customer.notice_recipients()
    assert "192.0.2.1" not in mail.content.decode() and "[redacted]" in mail.content.decode()
    assert "Task cases.tasks_notices.send_notice_task[" in worker.log_text()


def test_a_server_that_refuses_then_accepts_gets_the_notice_once(
    worker, scripted_smtp, django_capture_on_commit_callbacks
):
    case = customer_on("198.51.100.0/24")
    file_reports(django_capture_on_commit_callbacks, spam(at=T0))
    case = case.cases.get()
    scripted_smtp.refuse_next("451 4.7.1 Greylisted", "421 4.3.2 Busy")
    notice = notices.issue_notice(case, NoticeKind.WARNING, key="refused-then-accepted", actor=None)
    row = wait_until(notice_sent(notice.pk), timeout=30, what="the retried notice to be sent")
    assert (row.status, row.attempts) == (NoticeStatus.SENT, 3)
    assert scripted_smtp.message_ids() == {notice.message_id: 1}
    log = worker.log_text()
    assert "next try in 1 s: Recipients refused" in log and "next try in 2 s" in log
    # The task was retried by Celery (received three times), not by a loop in the worker.
    assert log.count("Task cases.tasks_notices.send_notice_task[") == 3


def test_a_server_that_refuses_for_good_fails_the_notice_and_says_so(
    worker, scripted_smtp, django_capture_on_commit_callbacks
):
    case = customer_on("198.51.100.0/24")
    file_reports(django_capture_on_commit_callbacks, spam(at=T0))
    case = case.cases.get()
    scripted_smtp.refuse_next("550 5.1.1 Mailbox unavailable")
    notice = notices.issue_notice(case, NoticeKind.WARNING, key="refused", actor=None)
    row = wait_until(notice_sent(notice.pk), timeout=30, what="the worker to give up on the notice")
    assert row.status == NoticeStatus.FAILED and "550" in row.last_error
    assert CaseEvent.objects.filter(case=case, kind="notice_failed").exists()
    assert scripted_smtp.received() == []
