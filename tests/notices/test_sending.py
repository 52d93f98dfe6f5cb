"""Sending: claimed with one conditional UPDATE, sent over SMTP as written, retried with backoff on
a temporary refusal, failed (and said so on the case) on a permanent one or after the last try."""

from __future__ import annotations

import email
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from cases.models import CaseEvent, Notice, NoticeKind, NoticeStatus, NoticeTemplate
from cases.services import notices
from tests.fixtures_services import free_port
from tests.notices.builders import case_with_report

pytestmark = pytest.mark.django_db


@pytest.fixture
def notice(django_capture_on_commit_callbacks) -> Notice:
    case = case_with_report(django_capture_on_commit_callbacks, evidence="spam from 198.51.100.7")
    with django_capture_on_commit_callbacks(execute=False):
        return notices.issue_notice(case, NoticeKind.FIRST_NOTICE, key="k", actor=None, reason="first")


def row(notice: Notice) -> Notice:
    return Notice.objects.get(pk=notice.pk)


def test_a_notice_goes_out_once_over_smtp_as_written(notice, scripted_smtp, settings):
    settings.NOTICE_FROM_EMAIL = "Abuse Desk <abuse@isp.example>"
    # What an admin changes after the notice was written does not change what is sent.
    NoticeTemplate.objects.create(kind=NoticeKind.FIRST_NOTICE, subject="changed later", body_text="changed")
    assert notices.send_notice(notice.pk) == notices.SENT
    assert notices.send_notice(notice.pk) == notices.SKIPPED
    [mail] = scripted_smtp.wait_for(1)
    message = mail.message
    assert mail.rcpt_tos == notice.recipients
    assert message["Message-ID"] == notice.message_id
    assert message["Subject"] == notice.subject
    assert message["From"] == "Abuse Desk <abuse@isp.example>"
    assert message["Reply-To"] == f"abuse+AD-{notice.case_id}@isp.example"
    assert message["Auto-Submitted"] == "auto-generated"
    parts = {
        part.get_content_type(): part.get_payload(decode=True).decode().replace("\r\n", "\n")
        for part in message.walk()
        if not part.is_multipart()
    }
    assert parts == {"text/plain": notice.body, "text/html": notice.html_body}
    sent = row(notice)
    assert (sent.status, sent.attempts, sent.last_error) == (NoticeStatus.SENT, 1, "")
    assert sent.sent_at is not None


def test_a_refusal_to_try_later_is_retried_with_backoff_then_sent(notice, scripted_smtp, settings):
    settings.NOTICE_RETRY_BASE_SECONDS = 60
    scripted_smtp.refuse_next("451 4.7.1 Greylisted, try again later", "452 4.3.1 Insufficient storage")
    start = timezone.now()
    assert notices.send_notice(notice.pk) == notices.RETRY
    waiting = row(notice)
    assert waiting.status == NoticeStatus.PENDING
    assert "451" in waiting.last_error and "Greylisted" in waiting.last_error
    assert timedelta(seconds=59) < waiting.next_attempt_at - start < timedelta(seconds=70)
    assert notices.send_notice(notice.pk) == notices.SKIPPED  # not due yet: a retried task waits
    with time_machine.travel(waiting.next_attempt_at + timedelta(seconds=1)):
        assert notices.send_notice(notice.pk) == notices.RETRY
        second = row(notice)
        # The second wait is twice the first.
        assert timedelta(seconds=119) < second.next_attempt_at - timezone.now() < timedelta(seconds=125)
    with time_machine.travel(second.next_attempt_at + timedelta(seconds=1)):
        assert notices.send_notice(notice.pk) == notices.SENT
    assert len(scripted_smtp.received()) == 1
    assert (row(notice).status, row(notice).attempts) == (NoticeStatus.SENT, 3)


def test_a_permanent_refusal_fails_the_notice_at_once_and_staff_see_it(notice, scripted_smtp):
    scripted_smtp.refuse_next("550 5.1.1 No such user here")
    assert notices.send_notice(notice.pk) == notices.FAILED
    failed = row(notice)
    assert failed.status == NoticeStatus.FAILED
    assert "550" in failed.last_error and "No such user" in failed.last_error
    event = CaseEvent.objects.get(case_id=notice.case_id, kind="notice_failed")
    assert event.new == "first_notice" and "No such user" in event.note
    assert scripted_smtp.received() == []


def test_after_the_last_attempt_the_notice_is_failed_with_the_error(notice, scripted_smtp, settings):
    settings.NOTICE_MAX_ATTEMPTS = 3
    scripted_smtp.refuse_next(*["451 4.3.0 Try later"] * 3)
    outcomes = []
    for day in range(1, 4):
        with time_machine.travel(timezone.now() + timedelta(days=day)):
            outcomes.append(notices.send_notice(notice.pk))
    assert outcomes == [notices.RETRY, notices.RETRY, notices.FAILED]
    failed = row(notice)
    assert (failed.status, failed.attempts) == (NoticeStatus.FAILED, 3)
    assert failed.last_error.startswith("Gave up after 3 attempts.") and "451" in failed.last_error
    assert CaseEvent.objects.filter(case_id=notice.case_id, kind="notice_failed").count() == 1
    with time_machine.travel(timezone.now() + timedelta(days=5)):
        assert notices.send_notice(notice.pk) == notices.SKIPPED


def test_a_mail_server_that_is_down_is_a_temporary_failure(notice, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    assert notices.send_notice(notice.pk) == notices.RETRY
    assert "ConnectionRefusedError" in row(notice).last_error


def test_the_demo_file_backend_leaves_a_readable_file_per_notice(notice, settings, tmp_path):
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path)
    assert notices.send_notice(notice.pk) == notices.SENT
    [path] = list(tmp_path.iterdir())
    message = email.message_from_bytes(path.read_bytes())
    assert message["Message-ID"] == notice.message_id
    text = path.read_text()
    assert notice.subject in text
    assert "WHAT YOU MUST DO" in text  # the body is readable as it stands, not encoded


def test_a_task_queued_twice_sends_once(notice, django_capture_on_commit_callbacks, mailoutbox):
    from cases.tasks_notices import send_notice_task

    send_notice_task.apply(args=[notice.pk])
    send_notice_task.apply(args=[notice.pk])
    assert len(mailoutbox) == 1
    assert row(notice).status == NoticeStatus.SENT
