"""The customer's page behind the signed link: tampered, expired and revoked links open nothing;
a valid one shows the case with the evidence escaped and redacted, and takes a reply."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from cases.models import (
    ActorKind,
    Approval,
    ApprovalStatus,
    Case,
    CaseEvent,
    CaseStatus,
    CustomerReply,
    NoticeKind,
    NoticeStatus,
    Rung,
)
from cases.services import ladder, replies
from cases.services.filing import record_reports
from cases.services.links import make_link_token
from cases.services.replies import revoke_links
from cases.services.workflow import change_case_status
from tests.cases.helpers import event
from tests.conftest import make_user
from tests.replies.conftest import REPORTED_IP, link, sent_notice

pytestmark = pytest.mark.django_db


def assert_refused(response, case: Case, words: str) -> None:
    assert response.status_code == 403
    body = response.content.decode()
    assert words in body
    # Nothing of the case: not its reference, customer, addresses or evidence.
    for secret in (case.reference, case.customer.account, REPORTED_IP, "victim", "evidence"):
        assert secret not in body
    assert response["Referrer-Policy"] == "no-referrer"


def test_a_valid_link_shows_the_case_with_the_evidence_escaped_and_redacted(client, case):
    sent_notice(case, body="Dear customer, <b>fix</b> 198.51.100.7 please.")
    sent_notice(case, kind=NoticeKind.REPORTER_ACK, subject="Thank you reporter", body="ack for victim@x.example")
    sent_notice(case, kind=NoticeKind.WARNING, status=NoticeStatus.PENDING, subject="Not sent yet")
    response = client.get(link(case))
    assert response.status_code == 200
    body = response.content.decode()
    assert case.reference in body and "Spam" in body
    assert f"<code>{REPORTED_IP}</code>" in body
    # Evidence: escaped, never markup; third parties' addresses gone, the customer's kept.
    assert "&lt;script&gt;alert(" in body and "<script>alert(" not in body
    assert "203.0.113.9" not in body and "victim@victim.example" not in body and "2001:db8::25" not in body
    assert "[redacted]" in body
    # The notice as sent (escaped); never the reporter's acknowledgement or an unsent notice.
    assert "Dear customer, &lt;b&gt;fix&lt;/b&gt;" in body
    assert "Thank you reporter" not in body and "Not sent yet" not in body
    assert 'id="reply-form"' in body


def test_the_page_keeps_its_token_out_of_referers_robots_and_caches(client, case):
    response = client.get(link(case))
    assert response["Referrer-Policy"] == "no-referrer"
    assert "noindex" in response["X-Robots-Tag"]
    assert "no-store" in response["Cache-Control"]
    assert b'<meta name="robots" content="noindex">' in response.content
    # Anonymous: base.html shows no staff navigation.
    assert b"<nav" not in response.content


def test_a_tampered_link_is_refused(client, case):
    token = make_link_token(case)
    tampered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    assert_refused(client.get(reverse("customer_case", args=[tampered])), case, "not valid")
    # A well-formed token for another case, signed without our salt, is no better.
    forged = signing.dumps({"c": case.pk, "v": case.link_version}, compress=True)
    assert_refused(client.get(reverse("customer_case", args=[forged])), case, "not valid")
    assert_refused(client.get(reverse("customer_case", args=["x" * 2000])), case, "not valid")


def test_a_tampered_link_cannot_post_a_reply(client, case):
    token = make_link_token(case)[:-2] + "zz"
    response = client.post(reverse("customer_case", args=[token]), {"text": "fixed"})
    assert response.status_code == 403
    assert not CustomerReply.objects.exists()


def test_a_link_expires(client, case):
    url = link(case)
    max_age = timedelta(days=settings.CUSTOMER_LINK_MAX_AGE_DAYS)
    with time_machine.travel(timezone.now() + max_age - timedelta(hours=1), tick=False):
        assert client.get(url).status_code == 200
    with time_machine.travel(timezone.now() + max_age + timedelta(hours=1), tick=False):
        assert_refused(client.get(url), case, "expired")
        assert client.post(url, {"text": "fixed"}).status_code == 403
    assert not CustomerReply.objects.exists()


def test_a_revoked_link_is_refused_and_a_new_one_works(client, case, noc_user):
    old = link(case)
    case = revoke_links(case, actor=noc_user, note="sent to the wrong person")
    assert_refused(client.get(old), case, "withdrawn")
    assert client.post(old, {"text": "fixed"}).status_code == 403
    assert client.get(link(case)).status_code == 200
    event = CaseEvent.objects.get(kind="links_revoked")
    assert (event.old, event.new, event.actor) == ("1", "2", noc_user)


def test_the_reply_form_records_a_reply_that_holds_escalation(client, case):
    url = link(case)
    response = client.post(url, {"text": "Cleaned the PC <script>alert('reply')</script>"})
    assert response.status_code == 302 and response["Location"] == url
    assert response["Referrer-Policy"] == "no-referrer"
    reply = CustomerReply.objects.get()
    assert (reply.case_id, reply.channel, reply.message) == (case.pk, "link", None)
    case.refresh_from_db()
    assert case.awaiting_review is True
    event = CaseEvent.objects.get(kind="customer_reply")
    assert (event.actor_kind, event.actor, event.new) == (ActorKind.CUSTOMER, None, "link")
    page = client.get(url).content.decode()
    assert "Thank you" in page
    assert "Cleaned the PC &lt;script&gt;alert(" in page and "<script>alert('reply')" not in page
    assert "not read yet" in page


@pytest.mark.parametrize("text", ["", "   \n ", "x" * (replies.REPLY_MAX_CHARS + 1)])
def test_an_empty_or_overlong_reply_is_refused(client, case, text):
    response = client.post(link(case), {"text": text})
    assert response.status_code == 400
    assert not CustomerReply.objects.exists()
    case.refresh_from_db()
    assert case.awaiting_review is False


def test_the_page_changes_nothing_but_adding_a_reply(client, case):
    before = Case.objects.values().get(pk=case.pk)
    client.post(link(case), {"text": "done", "status": "resolved", "rung": "0", "link_version": "9"})
    after = Case.objects.values().get(pk=case.pk)
    changed = {k for k in before if before[k] != after[k]}
    assert changed <= {"awaiting_review", "updated_at"}
    for method in (client.put, client.delete, client.patch):
        assert method(link(case)).status_code == 405


@pytest.mark.parametrize("status", [CaseStatus.RESOLVED, CaseStatus.REJECTED])
def test_a_closed_case_shows_its_state_and_takes_no_reply(client, case, noc_user, status):
    change_case_status(case, status, actor=noc_user)
    url = link(case)
    page = client.get(url)
    assert page.status_code == 200
    assert b'id="case-closed"' in page.content and b'id="reply-form"' not in page.content
    response = client.post(url, {"text": "fixed it"})
    assert response.status_code == 400
    assert b"takes no replies" in response.content
    assert not CustomerReply.objects.exists()


def test_a_reply_cancels_a_suspension_scheduled_unless_fixed(client, case):
    manager = make_user("mgr", "manager")
    approval = Approval.objects.create(
        case=case,
        rung=Rung.SUSPENSION,
        status=ApprovalStatus.SCHEDULED,
        reason="three reports after a warning",
        decided_by=manager,
        decided_at=timezone.now(),
        scheduled_for=timezone.now() + timedelta(days=2),
    )
    client.post(link(case), {"text": "Removed the malware."})
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.CANCELLED
    event = CaseEvent.objects.get(kind="approval_cancelled")
    assert event.actor_kind == ActorKind.CUSTOMER


def test_a_pending_approval_is_left_to_the_manager(client, case):
    approval = Approval.objects.create(case=case, rung=Rung.SUSPENSION, reason="three reports")
    client.post(link(case), {"text": "Removed the malware."})
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING


def test_a_link_to_a_merged_case_opens_the_case_it_was_merged_into(client, case, noc_user):
    record_reports([event(REPORTED_IP, category="phishing", evidence="phish kit")])
    target = Case.objects.get(category="phishing")
    old = link(case)
    ladder.merge_cases(case, target, actor=noc_user, reason="same problem")
    page = client.get(old)
    assert page.status_code == 200 and target.reference.encode() in page.content
    client.post(old, {"text": "fixed"})
    assert CustomerReply.objects.get().case_id == target.pk


def test_a_flood_of_unread_replies_is_stopped(client, case, monkeypatch):
    monkeypatch.setattr(replies, "MAX_WAITING_REPLIES", 2)
    url = link(case)
    assert client.post(url, {"text": "one"}).status_code == 302
    assert client.post(url, {"text": "two"}).status_code == 302
    response = client.post(url, {"text": "three"})
    assert response.status_code == 400
    assert CustomerReply.objects.count() == 2
