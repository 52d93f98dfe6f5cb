"""The outbox under concurrency and failure: one claim wins a race; the sweeper queues what was
lost and takes back the claims of dead workers, whose copy (if any) has the same Message-ID."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from cases import queue
from cases.models import CaseEvent, Notice, NoticeKind, NoticeStatus
from cases.services import notices
from tests.notices.builders import case_with_report


def issue(capture, key: str = "k") -> Notice:
    case = case_with_report(capture)
    with capture(execute=False):
        return notices.issue_notice(case, NoticeKind.FIRST_NOTICE, key=key, actor=None)


def row(notice: Notice) -> Notice:
    return Notice.objects.get(pk=notice.pk)


def in_threads(count: int, work) -> list:
    """Run work() in `count` threads released at the same instant; their results."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work()
        except Exception as exc:  # reported in the assertion, not lost in a thread
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.fixture
def unqueued(monkeypatch) -> list:
    """Nothing is handed to a worker: the test runs the sending itself."""
    queued: list = []
    monkeypatch.setattr(queue, "enqueue_on_commit", lambda name, *args: queued.append((name, args)))
    return queued


@pytest.mark.django_db(transaction=True)
def test_of_workers_racing_for_one_notice_exactly_one_claims_it(django_capture_on_commit_callbacks, unqueued):
    notice = issue(django_capture_on_commit_callbacks)
    claims = in_threads(6, lambda: notices.claim_notice(notice.pk))
    assert sum(1 for c in claims if c is not None and not isinstance(c, Exception)) == 1, claims
    assert not [c for c in claims if isinstance(c, Exception)]
    assert (row(notice).status, row(notice).attempts) == (NoticeStatus.SENDING, 1)


@pytest.mark.django_db(transaction=True)
def test_workers_racing_to_send_one_notice_send_one_copy(django_capture_on_commit_callbacks, unqueued, scripted_smtp):
    notice = issue(django_capture_on_commit_callbacks)
    outcomes = in_threads(6, lambda: notices.send_notice(notice.pk))
    assert Counter(outcomes) == {notices.SENT: 1, notices.SKIPPED: 5}, outcomes
    assert scripted_smtp.message_ids() == {notice.message_id: 1}
    assert row(notice).status == NoticeStatus.SENT


@pytest.mark.django_db
def test_the_sweeper_queues_a_notice_whose_task_was_lost_once_per_timeout(django_capture_on_commit_callbacks, settings):
    settings.NOTICE_CLAIM_TIMEOUT_SECONDS = 300
    notice = issue(django_capture_on_commit_callbacks)
    later = timezone.now() + timedelta(seconds=301)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert notices.sweep_outbox() == 0  # just written: its own task is on the way
        assert notices.sweep_outbox(now=later) == 1
        assert notices.sweep_outbox(now=later + timedelta(seconds=60)) == 0  # queued a minute ago
        assert notices.sweep_outbox(now=later + timedelta(seconds=302)) == 1
    assert len(queued) == 2
    # A notice waiting for its retry is the retry's business until well after it is due.
    Notice.objects.filter(pk=notice.pk).update(next_attempt_at=later + timedelta(hours=1))
    assert notices.sweep_outbox(now=later + timedelta(hours=1)) == 0


@pytest.mark.django_db
def test_a_dead_workers_claim_is_taken_back_and_the_second_copy_has_the_same_message_id(
    django_capture_on_commit_callbacks, scripted_smtp, settings
):
    """The one exception: killed after the SMTP server accepted, before the row was marked."""
    settings.NOTICE_CLAIM_TIMEOUT_SECONDS = 300
    notice = issue(django_capture_on_commit_callbacks)
    claim = notices.claim_notice(notice.pk).claimed_at
    notices.build_message(row(notice)).send()  # accepted; then the worker is killed
    assert notices.sweep_outbox(now=claim + timedelta(seconds=200)) == 0  # a live claim is left alone
    assert row(notice).status == NoticeStatus.SENDING
    with time_machine.travel(claim + timedelta(seconds=301)), django_capture_on_commit_callbacks(execute=True):
        assert notices.sweep_outbox() == 1
    sent = row(notice)
    assert (sent.status, sent.attempts) == (NoticeStatus.SENT, 2)
    assert scripted_smtp.message_ids() == {notice.message_id: 2}


@pytest.mark.django_db
def test_a_slow_worker_that_finishes_after_its_claim_was_taken_back_is_not_followed_by_a_copy(
    django_capture_on_commit_callbacks, scripted_smtp, settings
):
    settings.NOTICE_CLAIM_TIMEOUT_SECONDS = 300
    notice = issue(django_capture_on_commit_callbacks)
    claim = notices.claim_notice(notice.pk).claimed_at
    with time_machine.travel(claim + timedelta(seconds=301)):
        with django_capture_on_commit_callbacks(execute=False) as queued:
            assert notices.sweep_outbox() == 1
        assert row(notice).status == NoticeStatus.PENDING
        # The slow worker's SMTP server answers at last, and the worker marks the row.
        notices.build_message(row(notice)).send()
        assert notices.mark_sent(notice.pk, claim=claim)
        for send_again in queued:
            send_again()
    assert row(notice).status == NoticeStatus.SENT
    assert scripted_smtp.message_ids() == {notice.message_id: 1}


@pytest.mark.django_db
def test_a_dead_workers_claim_on_the_last_attempt_fails_the_notice(django_capture_on_commit_callbacks, settings):
    settings.NOTICE_MAX_ATTEMPTS = 2
    notice = issue(django_capture_on_commit_callbacks)
    Notice.objects.filter(pk=notice.pk).update(
        status=NoticeStatus.SENDING, claimed_at=timezone.now() - timedelta(hours=1), attempts=2
    )
    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert notices.sweep_outbox() == 0
    assert queued == []
    failed = row(notice)
    assert failed.status == NoticeStatus.FAILED
    assert failed.last_error.startswith("Gave up after 2 attempts. The worker sending attempt 2 stopped")
    assert CaseEvent.objects.filter(case_id=notice.case_id, kind="notice_failed").exists()
