"""Writing a notice: in the decision's transaction, once per key, queued only after the commit."""

from __future__ import annotations

import pytest
from django.db import transaction

from cases.models import CaseEvent, Notice, NoticeKind, NoticeStatus
from cases.services import notices
from customers.models import Contact
from tests.notices.builders import case_with_report, customer_on

pytestmark = pytest.mark.django_db


def test_a_second_call_with_the_same_key_returns_the_first_notice_and_writes_nothing(
    django_capture_on_commit_callbacks,
):
    case = case_with_report(django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        first = notices.issue_notice(case, NoticeKind.WARNING, key="case:1:warning:1", actor=None, reason="a")
        again = notices.issue_notice(case, NoticeKind.WARNING, key="case:1:warning:1", actor=None, reason="b")
    assert again.pk == first.pk
    assert Notice.objects.count() == 1
    assert CaseEvent.objects.filter(kind="notice").count() == 1
    assert len(queued) == 1


def test_sending_is_queued_only_when_the_decision_commits(django_capture_on_commit_callbacks):
    case = case_with_report(django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        try:
            with transaction.atomic():
                notices.issue_notice(case, NoticeKind.WARNING, key="rolled-back", actor=None)
                raise RuntimeError("the decision fails after writing its notice")
        except RuntimeError:
            pass
    assert queued == []
    assert not Notice.objects.filter(key="rolled-back").exists()


def test_without_a_contact_the_notice_is_written_failed_with_the_reason_and_nothing_is_queued(
    django_capture_on_commit_callbacks,
):
    customer = customer_on("198.51.100.0/24", contacts=("off@home.example",))
    Contact.objects.filter(customer=customer).update(receives_notices=False)
    case = case_with_report(django_capture_on_commit_callbacks, customer=customer)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        notice = notices.issue_notice(case, NoticeKind.FIRST_NOTICE, key="k", actor=None)
    assert queued == []
    assert (notice.status, notice.recipients) == (NoticeStatus.FAILED, [])
    assert "no contact that receives notices" in notice.last_error
    failed = CaseEvent.objects.get(case=case, kind="notice_failed")
    assert failed.new == "first_notice"
    assert "no contact that receives notices" in failed.note


def test_recipients_are_the_contacts_that_receive_notices_once_each(django_capture_on_commit_callbacks):
    customer = customer_on("198.51.100.0/24", contacts=("a@home.example", "b@home.example", "c@home.example"))
    Contact.objects.filter(email="c@home.example").update(receives_notices=False)
    case = case_with_report(django_capture_on_commit_callbacks, customer=customer)
    with django_capture_on_commit_callbacks(execute=False):
        notice = notices.issue_notice(case, NoticeKind.FIRST_NOTICE, key="k", actor=None)
        given = notices.issue_notice(
            case, NoticeKind.WARNING, key="k2", actor=None, recipients=["x@y.example", "X@y.example", ""]
        )
    assert notice.recipients == ["a@home.example", "b@home.example"]
    assert given.recipients == ["x@y.example"]


def test_the_queued_task_sends_the_notice(django_capture_on_commit_callbacks, mailoutbox):
    case = case_with_report(django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        notice = notices.issue_notice(case, NoticeKind.FIRST_NOTICE, key="k", actor=None)
    notice.refresh_from_db()
    assert notice.status == NoticeStatus.SENT
    assert [m.extra_headers["Message-ID"] for m in mailoutbox] == [notice.message_id]
