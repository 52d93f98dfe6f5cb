from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from cases.models import Case, CaseEvent, InboundMessage, ParseStatus, Report
from cases.services.intake import process_message, process_pending, receive
from cases.tasks import requeue_unparsed_messages
from tests.cases.helpers import customer_with

pytestmark = pytest.mark.django_db


def complaint(n: int, ip: str) -> bytes:
    return (
        f"From: noc@victim{n}.example\r\nSubject: scanning from {ip}\r\nMessage-ID: <c{n}@victim.example>\r\n"
        f"Date: Fri, 20 Nov 2026 14:0{n % 10}:00 +0000\r\n\r\n"
        f"Port scanning from {ip} against our network on 2026-11-20 14:0{n % 10}:00 UTC.\r\n"
    ).encode()


def test_waiting_messages_are_parsed_in_one_batch_and_only_once():
    customer_with("198.51.100.0/24", "B-1")
    # Outside a captured on-commit block nothing is parsed yet: the messages wait, as they
    # do when the worker is behind.
    ids = [receive(complaint(n, f"198.51.100.{n + 1}"), "email")[0].pk for n in range(5)]
    assert set(InboundMessage.objects.values_list("status", flat=True)) == {ParseStatus.NEW}
    summary = process_pending(first=ids[2], limit=10)
    assert summary.created == 5
    assert set(InboundMessage.objects.values_list("status", flat=True)) == {ParseStatus.PARSED}
    assert Case.objects.get().report_count == 5
    assert CaseEvent.objects.get(kind="reports_added").note == "5 reports from 5 messages"
    assert process_pending(first=ids[0]) is None
    assert process_message(ids[1]) is None
    assert Report.objects.count() == 5


def test_a_batch_is_limited_and_leaves_the_rest_waiting():
    ids = [receive(complaint(n, f"192.0.2.{n + 1}"), "email")[0].pk for n in range(5)]
    process_pending(limit=2)
    statuses = dict(InboundMessage.objects.values_list("pk", "status"))
    assert [statuses[pk] for pk in ids] == ["parsed", "parsed", "new", "new", "new"]


def test_a_message_taken_by_another_worker_is_not_taken_again():
    message, _ = receive(complaint(1, "192.0.2.1"), "email")
    InboundMessage.objects.filter(pk=message.pk).update(status=ParseStatus.PARSING, claimed_at=timezone.now())
    assert process_pending(first=message.pk) is None
    assert process_message(message.pk) is None
    assert InboundMessage.objects.get().status == ParseStatus.PARSING


def test_a_claim_left_by_a_dead_worker_is_released_and_parsed():
    message, _ = receive(complaint(1, "192.0.2.1"), "email")
    InboundMessage.objects.filter(pk=message.pk).update(
        status=ParseStatus.PARSING, claimed_at=timezone.now() - timedelta(hours=1)
    )
    InboundMessage.objects.filter(pk=message.pk).update(received_at=timezone.now() - timedelta(hours=1))
    assert requeue_unparsed_messages() == 1
    assert InboundMessage.objects.get().status == ParseStatus.PARSED
