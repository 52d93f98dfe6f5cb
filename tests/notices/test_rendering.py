"""What a notice says: rendered once, at issue time, from the admin's template or the built-in one;
third parties' addresses redacted; evidence escaped in HTML whatever a template says."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cases.models import CaseEvent, Notice, NoticeKind, NoticeTemplate
from cases.services import notices
from cases.services.links import customer_url
from tests.notices.builders import T0, case_with_report, customer_on, file_reports, spam

pytestmark = pytest.mark.django_db

EVIDENCE = """Received: from mail.isp.example (198.51.100.7) by mx.victim.example (203.0.113.9)
    at 14:02:33 from 00:1a:2b:3c:4d:5e, relay 2001:db8::25 and ::ffff:203.0.113.10
From: spammer@198-51-100-7.isp.example
To: victim@victim.example
Subject: cheap pills <script>alert("x")</script>
Build 1.2.3 of the bot, seen at 2026-11-20T14:02:00Z."""


def issue(case, kind=NoticeKind.FIRST_NOTICE, *, key="k-1", capture, **kw) -> Notice:
    with capture(execute=False):
        return notices.issue_notice(case, kind, key=key, actor=None, **kw)


def test_a_first_notice_says_what_was_seen_what_to_do_what_happens_next_and_the_reference(
    django_capture_on_commit_callbacks,
):
    case = case_with_report(django_capture_on_commit_callbacks, evidence=EVIDENCE, port=25)
    deadline = T0 + timedelta(hours=72)
    notice = issue(
        case,
        capture=django_capture_on_commit_callbacks,
        reason="1 report from 1 reporter.",
        context={"next_step": "Further reports after the deadline bring a warning.", "deadline": deadline},
    )
    assert notice.subject == f"[{case.reference}] Abuse report: spam from your connection"
    body = notice.body
    for expected in (
        case.customer.account,
        "Category: Spam",
        "Reported addresses: 198.51.100.7",
        "First report: 2026-11-20T14:02:00Z",
        "2026-11-20T14:02:00Z  198.51.100.7 port 25  Spam",
        notices.WHAT_TO_DO["spam"],
        "Further reports after the deadline bring a warning.",
        "Deadline: 2026-11-23T14:02:00Z",
        customer_url(case),
        f"Reference: {case.reference}",
    ):
        assert expected in body, expected
    assert "None" not in body
    assert f'href="{customer_url(case)}"' in notice.html_body
    assert "2026-11-23T14:02:00Z" in notice.html_body


def test_evidence_keeps_the_reported_address_and_redacts_every_other_address(django_capture_on_commit_callbacks):
    case = case_with_report(django_capture_on_commit_callbacks, evidence=EVIDENCE)
    body = issue(case, capture=django_capture_on_commit_callbacks).body
    excerpt = body.split("----\n", 1)[1].rsplit("\n----", 1)[0]
    assert "(198.51.100.7)" in excerpt
    for third_party in (
        "203.0.113.9",
        "2001:db8::25",
        "::ffff:203.0.113.10",
        "spammer@",
        "victim@victim.example",
    ):
        assert third_party not in excerpt, third_party
    assert excerpt.count("[redacted]") == 5
    # Not addresses: a time, a MAC address and a version number stay as they were.
    assert "at 14:02:33 from 00:1a:2b:3c:4d:5e" in excerpt
    assert "Build 1.2.3 of the bot" in excerpt


def test_every_reported_address_of_the_case_stays_readable(django_capture_on_commit_callbacks):
    customer = customer_on("198.51.100.0/24")
    file_reports(
        django_capture_on_commit_callbacks,
        spam("198.51.100.7", evidence="seen with 198.51.100.8 and 192.0.2.1"),
        spam("198.51.100.8", at=T0 + timedelta(minutes=90), reporter="other@mail.example"),
    )
    case = customer.cases.get()
    notice = issue(case, capture=django_capture_on_commit_callbacks)
    assert "Reported addresses: 198.51.100.7, 198.51.100.8" in notice.body
    assert "seen with 198.51.100.8 and [redacted]" in notice.body


def test_the_evidence_excerpt_is_capped(django_capture_on_commit_callbacks):
    evidence = "\n".join(f"line {i}: spam relayed for 203.0.113.{i % 250}" for i in range(2000))
    case = case_with_report(django_capture_on_commit_callbacks, evidence=evidence)
    body = issue(case, capture=django_capture_on_commit_callbacks).body
    excerpt = body.split("----\n", 1)[1].rsplit("\n----", 1)[0]
    assert len(excerpt) <= notices.EXCERPT_MAX_CHARS + 20
    assert excerpt.endswith("[… cut …]")
    assert "203.0.113" not in excerpt


def test_html_escapes_the_evidence_even_when_an_admins_template_asks_for_it_raw(django_capture_on_commit_callbacks):
    NoticeTemplate.objects.create(
        kind=NoticeKind.WARNING,
        subject="{{ reference }} warning",
        body_text="Evidence:\n{{ evidence }}",
        body_html="<div>{{ evidence|safe }}</div>{% autoescape off %}<p>{{ evidence }}</p>{% endautoescape %}",
    )
    case = case_with_report(django_capture_on_commit_callbacks, evidence=EVIDENCE)
    notice = issue(case, NoticeKind.WARNING, capture=django_capture_on_commit_callbacks)
    assert "<script>" not in notice.html_body
    assert notice.html_body.count("&lt;script&gt;") == 2
    # Text is text: the evidence reads as it was written.
    assert '<script>alert("x")</script>' in notice.body
    assert notice.subject == f"{case.reference} warning"


def test_an_admins_template_is_used_and_a_broken_one_falls_back_to_the_built_in(django_capture_on_commit_callbacks):
    case = case_with_report(django_capture_on_commit_callbacks)
    NoticeTemplate.objects.create(
        kind=NoticeKind.FIRST_NOTICE, subject="Hello {{ customer_name }}", body_text="Ref {{ reference }}"
    )
    ours = issue(case, capture=django_capture_on_commit_callbacks)
    assert ours.subject == f"Hello {case.customer.name}"
    assert ours.body == f"Ref {case.reference}\n"
    assert ours.html_body == ""  # no HTML template: text only
    NoticeTemplate.objects.filter(kind=NoticeKind.FIRST_NOTICE).update(body_text="{% if %}")
    fallback = issue(case, key="k-2", capture=django_capture_on_commit_callbacks)
    assert fallback.subject.startswith(f"[{case.reference}] Abuse report")


@pytest.mark.parametrize("kind", [k for k in NoticeKind.values if k != NoticeKind.REPORTER_ACK])
def test_every_customer_notice_renders_text_and_html_without_any_context(kind, django_capture_on_commit_callbacks):
    case = case_with_report(django_capture_on_commit_callbacks)
    notice = issue(case, kind, capture=django_capture_on_commit_callbacks)
    assert notice.subject.startswith(f"[{case.reference}] ")
    assert "\n" not in notice.subject
    assert notices.DEFAULT_NEXT_STEP[kind] in notice.body
    assert "Deadline:" not in notice.body
    assert notice.html_body.startswith("<!DOCTYPE html>")
    assert "None" not in notice.body + notice.html_body


def test_a_scheduled_suspension_says_when(django_capture_on_commit_callbacks):
    case = case_with_report(django_capture_on_commit_callbacks)
    at = T0 + timedelta(days=2)
    notice = issue(
        case, NoticeKind.SUSPENSION, capture=django_capture_on_commit_callbacks, context={"scheduled_for": at}
    )
    assert "Suspension scheduled" in notice.subject
    assert "approved for 2026-11-22T14:02:00Z" in notice.body


def test_a_reporters_acknowledgement_tells_nothing_about_the_customer(django_capture_on_commit_callbacks):
    case = case_with_report(django_capture_on_commit_callbacks, reporter="alice@people.example", format="freetext")
    report = case.reports.get()
    notice = issue(case, NoticeKind.REPORTER_ACK, report=report, capture=django_capture_on_commit_callbacks)
    assert notice.recipients == ["alice@people.example"]
    assert notice.subject == f"[{case.reference}] Your report about 198.51.100.7 was received"
    for private in (case.customer.name, case.customer.account, "/c/", "noc@"):
        assert private not in notice.body + notice.html_body
    assert "2026-11-20T14:02:00Z" in notice.body


def test_the_row_holds_the_notice_as_sent_and_a_case_event_says_it_was_written(django_capture_on_commit_callbacks):
    case = case_with_report(django_capture_on_commit_callbacks)
    notice = issue(case, capture=django_capture_on_commit_callbacks, reason="1 report from 1 reporter.")
    assert notice.message_id.startswith("<") and notice.message_id.endswith("@isp.example>")
    assert notice.recipients == case.customer.notice_recipients()
    event = CaseEvent.objects.get(case=case, kind="notice")
    assert (event.new, event.note, event.actor_kind) == ("first_notice", "1 report from 1 reporter.", "system")


def test_reply_to_is_plus_addressed_with_the_case_reference(settings):
    settings.NOTICE_REPLY_TO = "Abuse Desk <abuse@isp.example>"
    assert notices.reply_to_address(42) == "Abuse Desk <abuse+AD-42@isp.example>"
    settings.NOTICE_REPLY_TO = "abuse+desk@isp.example"
    assert notices.reply_to_address(7) == "abuse+AD-7@isp.example"
