"""Answering a reporter about an address that is not ours with the network's abuse contact:
written once per reporter and address, sent once, never to feeds or robots."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse

from cases.models import InboundMessage, NoticeStatus, Report, ReporterReferral, TriageEvent
from cases.services import notices, triage
from cases.services.common import TransitionError
from cases.services.filing import record_reports
from tests.cases.helpers import T0, customer_with, event
from tests.rdap_server import ip_network_object, rdap_server  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db

REPORTER = "alice@victim.example"


@pytest.fixture(autouse=True)
def _quiet(settings):
    settings.ENRICHMENT_ENABLED = False
    settings.NOTICE_FROM_EMAIL = "abuse@isp.example"


@pytest.fixture
def network(rdap_server):  # noqa: F811
    rdap_server.answer("192.0.2.0/24", ip_network_object("192.0.2.0/24", abuse_email="abuse@net-a.example"))
    return rdap_server


def complaint(ip: str = "192.0.2.55", reporter: str = REPORTER, *, headers: str = "", **kw) -> Report:
    n = InboundMessage.objects.count()
    msgid = f"<c{n}.{ip}@victim.example>"
    raw = f"From: {reporter}\r\nMessage-ID: {msgid}\r\n{headers}Subject: attack\r\n\r\nfrom {ip}\r\n"
    message = InboundMessage.objects.create(
        raw=raw.encode(),
        size=len(raw),
        sha256=hashlib.sha256(raw.encode()).hexdigest(),
        channel="email",
        message_id=msgid,
        status="parsed",
    )
    kw.setdefault("format", "freetext")
    record_reports([event(ip, reporter=reporter, **kw)], message=message)
    return Report.objects.filter(message=message).get()


def refer(client, *reports: Report):
    return client.post(
        reverse("cases:unassigned_refer"), {"ids": [r.pk for r in reports], "tab": "outside"}, follow=True
    )


def test_the_reporter_is_told_the_abuse_contact_once(client, noc_user, network, django_capture_on_commit_callbacks):
    first = complaint(at=T0)
    again = complaint(at=T0.replace(hour=20))  # the same reporter about the same address, later
    client.force_login(noc_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = refer(client, first)
    assert "1 reporter told where to write" in response.text
    with django_capture_on_commit_callbacks(execute=True):
        refer(client, again)
        refer(client, first)  # a double click: already dismissed, nothing more

    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == [REPORTER]
    assert "abuse@net-a.example" in sent.body
    assert "192.0.2.55" in sent.subject
    assert sent.extra_headers["In-Reply-To"] == first.message.message_id
    assert sent.extra_headers["Auto-Submitted"] == "auto-replied"
    referral = ReporterReferral.objects.get()
    assert (referral.status, referral.abuse_email, referral.report_id) == (
        NoticeStatus.SENT,
        "abuse@net-a.example",
        first.pk,
    )
    assert network.requests == ["/ip/192.0.2.55"]  # the second report's look-up came from the cache
    # Both reports leave the queue, with the reason and an audit row each.
    for report in (first, again):
        report.refresh_from_db()
        assert report.dismissed_reason == "Not our address; the reporter was referred to abuse@net-a.example."
    assert TriageEvent.objects.filter(kind="referred").count() == 2


def test_a_referral_is_sent_once_even_when_its_task_runs_twice(noc_user, network):
    contact = triage.find_abuse_contact("192.0.2.55")
    referral = triage.refer_reporter(complaint(), contact, actor=noc_user)
    assert triage.send_referral(referral.pk) == notices.SENT
    assert triage.send_referral(referral.pk) == notices.SKIPPED
    assert len(mail.outbox) == 1


def test_a_second_reporter_about_the_same_address_gets_an_answer_too(noc_user, network):
    contact = triage.find_abuse_contact("192.0.2.55")
    one = triage.refer_reporter(complaint(), contact, actor=noc_user)
    two = triage.refer_reporter(complaint(reporter="bob@other.example"), contact, actor=noc_user)
    assert one.pk != two.pk
    assert one.key != two.key


@pytest.mark.parametrize(
    ("reporter", "kw", "why"),
    [
        ("fbl@mail.example", {"format": "arf"}, "automated feed"),
        ("mailer-daemon@victim.example", {}, "robot sender"),
        ("someone@isp.example", {}, "our own domain"),
        (REPORTER, {"headers": "Auto-Submitted: auto-generated\r\n"}, "Auto-Submitted"),
    ],
)
def test_feeds_robots_and_automatic_mail_are_never_answered(noc_user, network, reporter, kw, why):
    contact = triage.find_abuse_contact("192.0.2.55")
    report = complaint(reporter=reporter, **kw)
    with pytest.raises(TransitionError, match=why):
        triage.refer_reporter(report, contact, actor=noc_user)
    assert not ReporterReferral.objects.exists()
    assert Report.objects.unassigned().count() == 1


def test_a_report_about_our_own_address_is_not_referred(client, noc_user, network):
    customer_with("192.0.2.0/24", "LATER", valid_from=T0.replace(year=2027))
    report = complaint()
    assert report.unassigned_reason == "not_held"
    client.force_login(noc_user)
    response = refer(client, report)
    assert "None of the selected reports is about an address outside our space." in response.text
    assert network.requests == []


def test_a_refused_sending_is_kept_pending_with_the_error(noc_user, network, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    contact = triage.find_abuse_contact("192.0.2.55")
    referral = triage.refer_reporter(complaint(), contact, actor=noc_user)
    assert triage.send_referral(referral.pk) == notices.RETRY
    referral.refresh_from_db()
    assert (referral.status, referral.attempts) == (NoticeStatus.PENDING, 1)
    assert "ConnectionRefusedError" in referral.last_error


def test_the_referral_reaches_an_smtp_server(noc_user, network, smtp_server, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    contact = triage.find_abuse_contact("192.0.2.55")
    referral = triage.refer_reporter(complaint(), contact, actor=noc_user)
    assert triage.send_referral(referral.pk) == notices.SENT
    received = smtp_server.wait_for(1)
    assert received[0].rcpt_tos == [REPORTER]
    assert "abuse@net-a.example" in received[0].message.get_payload(decode=True).decode()
    assert received[0].message["Message-ID"] == referral.message_id


def test_a_referral_whose_task_was_lost_is_sent_by_the_sweep(noc_user, network, django_capture_on_commit_callbacks):
    contact = triage.find_abuse_contact("192.0.2.55")
    referral = triage.refer_reporter(complaint(), contact, actor=noc_user)  # its task never runs (no commit)
    assert mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        assert triage.sweep_referrals() == 0  # too young to be lost
    ReporterReferral.objects.update(created_at=referral.created_at - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert triage.sweep_referrals() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert triage.sweep_referrals() == 0
    assert len(mail.outbox) == 1
    assert ReporterReferral.objects.get().status == NoticeStatus.SENT


def test_the_dismissed_tab_shows_whether_the_answer_went_out(
    client, noc_user, network, django_capture_on_commit_callbacks
):
    client.force_login(noc_user)
    with django_capture_on_commit_callbacks(execute=True):
        refer(client, complaint())
    page = client.get(reverse("cases:unassigned") + "?reason=dismissed")
    assert "answer to reporter: sent" in page.text
    assert "referred to abuse@net-a.example" in page.text
