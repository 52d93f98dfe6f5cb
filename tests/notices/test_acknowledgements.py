"""Reporters are thanked once per case, only if they are people: never feeds, never robots or
auto-submitted mail, never our own mail, so an acknowledgement can never start a loop."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cases.models import Notice, NoticeKind, Policy, ReporterSource
from cases.services import ladder, notices
from cases.services.filing import record_pairs
from tests.notices.builders import T0, customer_on, file_reports, inbound, raw_mail, spam

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_policies():
    ladder._forget_policies()
    yield
    ladder._forget_policies()


@pytest.fixture
def customer(db):
    return customer_on("198.51.100.0/24")


def complaint(capture, reporter="alice@people.example", *, headers="", fmt="freetext", at=T0, ip="198.51.100.7"):
    """A person's complaint by mail, filed: the message with its headers, and the report."""
    message = inbound(raw_mail(reporter, headers), sender=reporter)
    [report] = file_reports(capture, spam(ip, at=at, reporter=reporter, format=fmt), message=message)
    return report


def acks() -> list[Notice]:
    return list(Notice.objects.filter(kind=NoticeKind.REPORTER_ACK).order_by("pk"))


def test_a_person_is_thanked_once_per_case(customer, django_capture_on_commit_callbacks):
    first = complaint(django_capture_on_commit_callbacks)
    again = complaint(django_capture_on_commit_callbacks, at=T0 + timedelta(hours=5))
    other = complaint(django_capture_on_commit_callbacks, "bob@people.example", at=T0 + timedelta(hours=6))
    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert notices.acknowledge_reporters([first.pk]) == 1
        assert notices.acknowledge_reporters([first.pk, again.pk, other.pk]) == 1
        assert notices.acknowledge_reporters([again.pk, other.pk]) == 0
    assert [n.recipients for n in acks()] == [["alice@people.example"], ["bob@people.example"]]
    assert len(queued) == 2
    assert acks()[0].report_id == first.pk


@pytest.mark.parametrize("fmt", ["arf", "spamcop", "shadowserver", "xarf", "xarf4", "acns", "csv", "keyvalue"])
def test_automated_feeds_are_never_thanked(customer, django_capture_on_commit_callbacks, fmt):
    report = complaint(django_capture_on_commit_callbacks, "reports@feed.example", fmt=fmt)
    assert notices.acknowledge_reporters([report.pk]) == 0
    assert acks() == []


def test_a_source_marked_automated_is_never_thanked(customer, django_capture_on_commit_callbacks):
    ReporterSource.objects.create(pattern="cert.example", name="A CERT", automated=True)
    ReporterSource.objects.create(pattern="person@cert.example", name="A person there", automated=False)
    robot = complaint(django_capture_on_commit_callbacks, "robot@desk.cert.example")
    person = complaint(django_capture_on_commit_callbacks, "person@cert.example", at=T0 + timedelta(hours=2))
    assert notices.acknowledge_reporters([robot.pk, person.pk]) == 1
    assert [n.recipients for n in acks()] == [["person@cert.example"]]


@pytest.mark.parametrize(
    "headers",
    [
        "Auto-Submitted: auto-replied\r\n",
        "Auto-Submitted: auto-generated; owner-email=x@y.example\r\n",
        "Precedence: bulk\r\n",
        "Precedence: junk\r\n",
        "Precedence: list\r\n",
        "X-Autoreply: yes\r\n",
        "X-Autorespond: on\r\n",
        "List-Id: <abuse.lists.example>\r\n",
        "Return-Path: <>\r\n",
        "Return-Path: <MAILER-DAEMON@mx.people.example>\r\n",
        "Sender: noreply@people.example\r\n",
    ],
)
def test_auto_submitted_mail_is_never_answered(customer, django_capture_on_commit_callbacks, headers):
    report = complaint(django_capture_on_commit_callbacks, headers=headers)
    assert notices.acknowledge_reporters([report.pk]) == 0


def test_mail_that_says_it_is_not_auto_submitted_is_answered(customer, django_capture_on_commit_callbacks):
    report = complaint(django_capture_on_commit_callbacks, headers="Auto-Submitted: no\r\nPrecedence: normal\r\n")
    assert notices.acknowledge_reporters([report.pk]) == 1


@pytest.mark.parametrize(
    "reporter", ["postmaster@people.example", "MAILER-DAEMON@people.example", "no-reply@people.example", ""]
)
def test_robot_senders_are_never_answered(customer, django_capture_on_commit_callbacks, reporter):
    report = complaint(django_capture_on_commit_callbacks, reporter)
    assert notices.acknowledge_reporters([report.pk]) == 0


def test_our_own_acknowledgement_sent_back_to_the_desk_is_never_answered(
    customer, django_capture_on_commit_callbacks, mailoutbox
):
    """The loop: an acknowledgement goes out; an auto-forwarder sends it back to abuse@ as a complaint."""
    first = complaint(django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        notices.acknowledge_reporters([first.pk])
    [sent] = mailoutbox
    assert sent.extra_headers["Auto-Submitted"] == "auto-replied"
    bounced_back = sent.message().as_bytes()
    message = inbound(bounced_back, sender=sent.from_email)
    pairs = [(spam(at=T0 + timedelta(hours=1), reporter="forwarder@people.example", format="freetext"), message)]
    with django_capture_on_commit_callbacks(execute=False):
        summary = record_pairs(pairs)
    assert notices.acknowledge_reporters(summary.new_report_ids) == 0
    # And a complaint "from" our own domain, whatever its headers say.
    ours = complaint(django_capture_on_commit_callbacks, "abuse@isp.example", at=T0 + timedelta(hours=2))
    assert notices.acknowledge_reporters([ours.pk]) == 0
    assert len(acks()) == 1


def test_the_customers_policy_can_turn_acknowledgements_off(customer, django_capture_on_commit_callbacks):
    Policy.objects.create(customer_kind="residential", acknowledge_reporters=False)
    report = complaint(django_capture_on_commit_callbacks)
    assert notices.acknowledge_reporters([report.pk]) == 0


def test_the_ladder_thanks_the_reporter_after_filing(customer, django_capture_on_commit_callbacks, mailoutbox):
    """Filing queues the ladder's evaluation with the new reports; it acknowledges them."""
    message = inbound(raw_mail("alice@people.example"), sender="alice@people.example")
    with django_capture_on_commit_callbacks(execute=True):
        record_pairs([(spam(reporter="alice@people.example", format="freetext"), message)])
    [ack] = acks()
    assert ack.status == "sent"
    assert [m.to for m in mailoutbox if m.extra_headers["Message-ID"] == ack.message_id] == [["alice@people.example"]]
