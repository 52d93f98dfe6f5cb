"""Replies by mail, through the real intake path: threaded onto their case by In-Reply-To,
References or the plus address, never parsed as reports; anything odd is parsed as usual."""

from __future__ import annotations

import pytest

from cases.models import Case, CaseStatus, CustomerReply, InboundMessage, NoticeKind, ParseStatus, Report
from cases.services import replies
from cases.services.intake import process_pending, receive
from cases.services.replies import mail_reply_text, thread_reply
from cases.services.workflow import change_case_status
from tests.replies.conftest import REPORTED_IP, sent_notice

pytestmark = pytest.mark.django_db

QUOTED = (
    "\r\nOn Tue, 3 Nov 2026 at 14:02, Abuse desk <abuse@isp.example> wrote:\r\n"
    f"> We received a report of port scanning from {REPORTED_IP} at 2026-11-20 14:02:00 UTC.\r\n"
    f"> Port scanning from {REPORTED_IP} against our network on 2026-11-20 14:02:00 UTC.\r\n"
)


@pytest.fixture(autouse=True)
def _reply_to(settings):
    settings.NOTICE_REPLY_TO = "Abuse Desk <abuse@isp.example>"


def mail(headers: str, body: str = "I removed the infected PC from the network.\r\n" + QUOTED) -> bytes:
    return (
        "From: Owner <owner@customer.example>\r\nSubject: Re: abuse report\r\n"
        "Date: Tue, 24 Nov 2026 09:00:00 +0000\r\n" + headers + "\r\n" + body
    ).encode()


def take_in(raw: bytes, channel: str = "email") -> InboundMessage:
    message, _ = receive(raw, channel)
    process_pending(first=message.pk)
    message.refresh_from_db()
    return message


def assert_threaded(message: InboundMessage, case: Case) -> CustomerReply:
    assert (message.status, message.format, message.event_count) == (ParseStatus.PARSED, "customer_reply", 0)
    reply = CustomerReply.objects.get(message=message)
    assert (reply.case_id, reply.channel) == (case.pk, "email")
    case.refresh_from_db()
    assert case.awaiting_review is True
    # The quoted notice names the customer's address: parsed, it would be filed against them.
    assert Report.objects.filter(message=message).count() == 0
    return reply


def test_a_reply_to_a_notice_is_threaded_onto_its_case_by_in_reply_to(case):
    notice = sent_notice(case)
    reports = Report.objects.count()
    message = take_in(mail(f"Message-ID: <r1@customer.example>\r\nIn-Reply-To: {notice.message_id}\r\n"))
    reply = assert_threaded(message, case)
    assert reply.text == "I removed the infected PC from the network."
    assert Report.objects.count() == reports


def test_a_reference_deep_in_the_chain_threads_too(case):
    notice = sent_notice(case)
    refs = f"<a@x.example> {notice.message_id}\r\n <b@customer.example>"
    message = take_in(mail(f"References: {refs}\r\nIn-Reply-To: <b@customer.example>\r\n"))
    assert_threaded(message, case)


@pytest.mark.parametrize("header", ["To", "Cc", "Delivered-To", "X-Original-To"])
def test_a_reply_to_the_plus_address_is_threaded(case, header):
    message = take_in(mail(f"{header}: Abuse Desk <ABUSE+ad-{case.pk}@ISP.example>\r\n"))
    assert_threaded(message, case)


def test_an_html_only_reply_is_read_as_text_without_the_quote(case):
    notice = sent_notice(case)
    html = (
        "<html><head><style>p{color:red}</style></head><body><p>Fixed &amp; patched.</p>"
        "<script>alert(1)</script><div>New router.</div>"
        f"<blockquote>We received a report about {REPORTED_IP}</blockquote></body></html>"
    )
    raw = mail(
        f"In-Reply-To: {notice.message_id}\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n",
        html,
    )
    reply = assert_threaded(take_in(raw), case)
    assert reply.text == "Fixed & patched.\n\nNew router."


def test_a_multipart_reply_uses_its_plain_text_part(case):
    notice = sent_notice(case)
    raw = mail(
        f"In-Reply-To: {notice.message_id}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="b"\r\n',
        "--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        "Gr=FC=DFe, alles repariert.\r\n\r\nAm 3.11.2026 um 14:02 schrieb Abuse desk:\r\n> old text\r\n"
        "--b\r\nContent-Type: text/html\r\n\r\n<p>ignored</p>\r\n--b--\r\n",
    )
    reply = assert_threaded(take_in(raw), case)
    assert reply.text == "Grüße, alles repariert."


def test_a_bogus_reference_is_parsed_as_a_normal_report(case):
    sent_notice(case)
    complaint = "Port scanning from 198.51.100.8 against our network on 2026-11-20 14:05:00 UTC.\r\nPlease stop it.\r\n"
    message = take_in(
        mail("In-Reply-To: <no-such-notice@isp.example>\r\nTo: abuse+AD-999999@isp.example\r\n", complaint)
    )
    assert message.status == ParseStatus.PARSED and message.format not in ("", "customer_reply")
    assert Report.objects.filter(message=message, ip="198.51.100.8").exists()
    assert not CustomerReply.objects.exists()


def test_a_reporter_answering_our_acknowledgement_is_not_a_customer_reply(case):
    ack = sent_notice(case, kind=NoticeKind.REPORTER_ACK)
    complaint = "It happened again: port scanning from 198.51.100.9 on 2026-11-21 10:00:00 UTC.\r\n"
    message = take_in(mail(f"In-Reply-To: {ack.message_id}\r\n", complaint))
    assert message.format != "customer_reply"
    assert not CustomerReply.objects.exists()
    assert Report.objects.filter(message=message, ip="198.51.100.9").exists()


def test_a_plus_address_elsewhere_is_not_ours(case):
    message = take_in(mail(f"To: abuse+AD-{case.pk}@isp.example.net\r\n"))
    assert message.format != "customer_reply"
    assert not CustomerReply.objects.exists()


def test_an_out_of_office_answer_is_set_aside_not_counted(case):
    notice = sent_notice(case)
    message = take_in(
        mail(f"In-Reply-To: {notice.message_id}\r\nAuto-Submitted: auto-replied\r\n", "I am away until Monday.\r\n")
    )
    assert (message.status, message.format) == (ParseStatus.IGNORED, "customer_reply")
    assert case.reference in message.parse_error
    assert not CustomerReply.objects.exists() and not Report.objects.filter(message=message).exists()


def test_a_reply_to_a_closed_case_is_set_aside_with_the_reason(case, noc_user):
    notice = sent_notice(case)
    change_case_status(case, CaseStatus.RESOLVED, actor=noc_user)
    message = take_in(mail(f"In-Reply-To: {notice.message_id}\r\n"))
    assert message.status == ParseStatus.IGNORED
    assert "closed" in message.parse_error and case.reference in message.parse_error
    assert not CustomerReply.objects.exists() and not Report.objects.filter(message=message).exists()


def test_a_reply_and_a_report_in_one_batch_each_go_their_way(case):
    notice = sent_notice(case)
    reply_message, _ = receive(mail(f"In-Reply-To: {notice.message_id}\r\n"), "email")
    report_message, _ = receive(
        mail(
            "Message-ID: <other@victim.example>\r\n", "Port scanning from 198.51.100.20 on 2026-11-20 14:09:00 UTC.\r\n"
        ),
        "email",
    )
    process_pending(limit=10)
    reply_message.refresh_from_db()
    report_message.refresh_from_db()
    assert_threaded(reply_message, case)
    assert Report.objects.filter(message=report_message, ip="198.51.100.20").exists()


def test_threading_twice_records_one_reply(case):
    notice = sent_notice(case)
    message, _ = receive(mail(f"In-Reply-To: {notice.message_id}\r\n"), "email")
    assert thread_reply(message, bytes(message.raw)) is True
    assert thread_reply(message, bytes(message.raw)) is True
    assert CustomerReply.objects.count() == 1


def test_mail_from_the_api_is_never_a_reply(case):
    notice = sent_notice(case)
    message, _ = receive(mail(f"In-Reply-To: {notice.message_id}\r\n"), "api")
    assert thread_reply(message, bytes(message.raw)) is False


HOSTILE = [
    b"",
    b"\r\n\r\n",
    b"In-Reply-To: \x00\xff\xfe<\x00>\r\n\r\nbody",
    b"In-Reply-To: " + b"<" * 100_000 + b"\r\n\r\nbody",
    b"References: " + b" ".join(b"<id%d@x>" % i for i in range(20_000)) + b"\r\n\r\nbody",
    b"To: =?utf-8?q?=E2=80=AE?= <abuse+AD-" + b"9" * 400 + b"@isp.example>\r\n\r\nbody",
    b"To: abuse+AD-1@isp.example\r\nContent-Type: text/plain; charset=base64\r\n\r\n\xff\xfe fixed",
    b"To: abuse+AD-1@isp.example\r\nContent-Type: text/plain; charset=rot13\r\n\r\nfixed",
    b"To: abuse+AD-1@isp.example\r\nContent-Type: multipart/mixed; boundary=\r\n\r\n--\r\n--\r\n",
    b"To: abuse+AD-1@isp.example\r\nContent-Type: text/html\r\n\r\n<blockquote><blockquote><p>" + b"<b>" * 50_000,
    b"To:\r\n\tabuse+AD-1@isp.example\r\nIn-Reply-To: <a@b> <c@d\r\nReferences: \xc3\x28\r\n\r\nbody",
    b"From: \x80\x81\r\nTo: abuse+AD-1@isp.example\r\nAuto-Submitted: \xff\r\n\r\nbody",
]


@pytest.mark.parametrize("raw", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_headers_never_crash_and_every_message_ends_with_a_status(case, raw):
    message = take_in(raw)
    assert message.status in (ParseStatus.PARSED, ParseStatus.UNPARSED, ParseStatus.IGNORED)
    if message.format == "customer_reply":
        assert message.status != ParseStatus.PARSED or CustomerReply.objects.filter(message=message).exists()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Done.\n\n-----Original Message-----\nFrom: abuse@isp.example\nold", "Done."),
        ("Done.\n________________________________\nFrom: abuse", "Done."),
        ("Done.\nOn Tue, 3 Nov 2026 at 14:02, Abuse desk <abuse@isp.example>\nwrote:\n> old", "Done."),
        ("> only a quote\n> of the notice\n", "(The mail has no text of its own; see the message.)"),
        ("line one\n\n\n\n\nline two\n", "line one\n\nline two"),
        ("Done.\n\nFrom: Abuse Desk <abuse@isp.example>\nSent: Tuesday\nTo: me\n\nold notice", "Done."),
    ],
)
def test_the_new_part_of_a_reply_is_kept(body, expected):
    assert mail_reply_text(b"Content-Type: text/plain\r\n\r\n" + body.encode()) == expected


def test_a_long_reply_is_cut(case):
    notice = sent_notice(case)
    reply = assert_threaded(take_in(mail(f"In-Reply-To: {notice.message_id}\r\n", "word " * 5000)), case)
    assert len(reply.text) <= 5000 and reply.text.endswith("[… shortened]")


@pytest.mark.parametrize(("contact", "cancelled"), [(True, True), (False, False)])
def test_only_a_customer_contact_can_cancel_a_scheduled_suspension_by_mail(case, contact, cancelled):
    from datetime import timedelta

    from django.utils import timezone

    from cases.models import Approval, ApprovalStatus, Rung
    from customers.models import Contact

    if contact:
        Contact.objects.create(customer=case.customer, email="owner@customer.example")
    approval = Approval.objects.create(
        case=case,
        rung=Rung.SUSPENSION,
        status=ApprovalStatus.SCHEDULED,
        reason="three reports after a warning",
        scheduled_for=timezone.now() + timedelta(days=2),
    )
    message = take_in(mail(f"Message-ID: <r9@customer.example>\r\nTo: abuse+{case.reference}@isp.example\r\n"))
    assert_threaded(message, case)  # recorded either way, for staff to read
    approval.refresh_from_db()
    assert (approval.status == ApprovalStatus.CANCELLED) is cancelled


@pytest.mark.parametrize(
    ("channel", "head", "expected"),
    [
        ("email", b"From: c@customer.example\r\nIn-Reply-To: <n-1@isp.example>\r\n", True),
        ("email", b"FROM: c@customer.example\r\nREFERENCES: <a@x> <n-1@isp.example>\r\n", True),
        ("imap", b"To: Abuse <abuse+AD-42@isp.example>\r\nFrom: c@customer.example\r\n", True),
        ("email", b"From: fbl@mail.example\r\nSubject: complaint\r\n", False),
        ("api", b"From: c@customer.example\r\nIn-Reply-To: <n-1@isp.example>\r\n", False),
    ],
)
def test_only_mail_with_threading_headers_is_read_as_a_possible_reply(channel, head, expected):
    # The body may quote anything: only the header block counts.
    raw = head + b"\r\nIn-Reply-To: <n-1@isp.example>\r\nabuse+AD-42@isp.example\r\n"
    assert replies.may_answer(channel, raw) is expected
