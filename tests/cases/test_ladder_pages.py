"""The pages NOC staff and managers work the ladder from: the case page's ladder panel and its
actions, the managers' approval queue, a customer's escalation timeline, history in words.

Data is built with small builders (a case at a rung with its reports, a pending approval); the
actions go through the views and the real ladder services.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
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
from cases.services import ladder
from cases.templatetags.case_words import event_sentence, in_utc
from cases.timeline import customer_timeline
from customers.models import StandingChange
from customers.services import change_standing
from tests.cases.ladder_builders import make_case, make_notice, pending_approval, scheduled_approval
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db

MANUAL = "to be done by hand: suspend"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture(autouse=True)
def _fresh_policies():
    ladder._forget_policies()
    yield
    ladder._forget_policies()


# --- helpers ---------------------------------------------------------------------------------------


def in_future(days: int = 3) -> str:
    """A datetime-local value, as the browser sends it (meant as UTC)."""
    return (timezone.now() + timedelta(days=days)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def text_of(response) -> str:
    """The page's text, tags dropped (times are <time> elements inside sentences)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", response.content.decode()))


def messages_of(response) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


# --- who may reach what ------------------------------------------------------------------------------

# (url name, role needed, which object the URL takes, POST data that passes the form)
ACTIONS = [
    ("cases:case_send_proposed", "noc", "case", {}),
    ("cases:case_propose", "noc", "case", {"rung": Rung.SUSPENSION, "reason": "keeps spamming"}),
    ("cases:case_cancel_scheduled", "noc", "case", {"reason": "fixed"}),
    ("cases:case_reinstate", "manager", "case", {"reason": "fixed"}),
    ("cases:case_hold", "noc", "case", {"until": "2099-01-01", "reason": "too long"}),
    ("cases:case_release_hold", "noc", "case", {}),
    ("cases:case_de_escalate", "noc", "case", {"reason": "sent in error", "sure": "on"}),
    ("cases:case_merge", "noc", "case", {"target": "999999", "reason": "same thing", "sure": "on"}),
    ("cases:report_confirm", "noc", "report", {}),
    ("cases:report_reject", "noc", "report", {"reason": "not us", "sure": "on"}),
    ("cases:approval_approve", "manager", "approval", {"reason": "three warnings", "sure": "on"}),
    ("cases:approval_refuse", "manager", "approval", {"reason": "give them time"}),
]
PAGES = [("cases:approval_queue", "manager", None), ("cases:customer_timeline", "noc", "customer")]


@pytest.fixture
def objects() -> dict[str, int]:
    case = make_case()
    approval = pending_approval(case)
    return {"case": case.pk, "report": case.reports.first().pk, "approval": approval.pk, "customer": case.customer_id}


def _url(name: str, kind: str | None, objects: dict[str, int]) -> str:
    return reverse(name, args=[objects[kind]] if kind else [])


@pytest.mark.parametrize(("name", "role", "kind", "data"), ACTIONS, ids=[a[0] for a in ACTIONS])
def test_actions_send_anonymous_users_to_log_in(client, objects, name, role, kind, data):
    response = client.post(_url(name, kind, objects), data)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(("name", "role", "kind", "data"), ACTIONS, ids=[a[0] for a in ACTIONS])
def test_actions_refuse_get(client, objects, manager_user, name, role, kind, data):
    client.force_login(manager_user)
    assert client.get(_url(name, kind, objects)).status_code == 405


@pytest.mark.parametrize(("name", "role", "kind", "data"), ACTIONS, ids=[a[0] for a in ACTIONS])
def test_actions_refuse_the_wrong_role(client, objects, norole_user, noc_user, name, role, kind, data):
    events = CaseEvent.objects.count()
    client.force_login(norole_user)
    assert client.post(_url(name, kind, objects), data).status_code == 403
    if role == "manager":
        client.force_login(noc_user)
        assert client.post(_url(name, kind, objects), data).status_code == 403
    assert CaseEvent.objects.count() == events


@pytest.mark.parametrize(("name", "role", "kind", "data"), ACTIONS, ids=[a[0] for a in ACTIONS])
def test_actions_answer_the_right_role_with_a_redirect_never_a_500(
    client, objects, noc_user, manager_user, name, role, kind, data
):
    client.force_login(manager_user if role == "manager" else noc_user)
    response = client.post(_url(name, kind, objects), data)
    assert response.status_code == 302
    # Whatever the ladder said (done, or not possible from here), the user is told.
    assert messages_of(response)


@pytest.mark.parametrize(("name", "role", "kind"), PAGES, ids=[p[0] for p in PAGES])
def test_pages_by_role(client, objects, norole_user, noc_user, manager_user, name, role, kind):
    url = _url(name, kind, objects)
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    client.force_login(norole_user)
    assert client.get(url).status_code == 403
    client.force_login(noc_user)
    assert client.get(url).status_code == (403 if role == "manager" else 200)
    client.force_login(manager_user)
    assert client.get(url).status_code == 200


def test_missing_objects_are_404(client, manager_user):
    client.force_login(manager_user)
    assert client.post(reverse("cases:approval_approve", args=[999999]), {"reason": "x"}).status_code == 404
    assert client.post(reverse("cases:report_confirm", args=[999999])).status_code == 404
    assert client.post(reverse("cases:case_hold", args=[999999]), {"reason": "x"}).status_code == 404
    assert client.get(reverse("cases:customer_timeline", args=[999999])).status_code == 404


# --- approval: managers only, in the view and in the service -----------------------------------------


def test_noc_staff_cannot_approve_through_the_page_or_the_service(client, noc_user):
    approval = pending_approval(make_case())
    client.force_login(noc_user)
    assert client.post(reverse("cases:approval_approve", args=[approval.pk]), {"reason": "go"}).status_code == 403
    assert client.post(reverse("cases:approval_refuse", args=[approval.pk]), {"reason": "no"}).status_code == 403
    for call in (ladder.approve, ladder.refuse):
        with pytest.raises(PermissionDenied):
            call(approval, actor=noc_user, reason="go")
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING and approval.decided_by is None
    assert not CaseEvent.objects.filter(kind__in=["approved", "refused"]).exists()


def test_anonymous_users_cannot_approve_through_the_page_or_the_service(client):
    approval = pending_approval(make_case())
    response = client.post(reverse("cases:approval_approve", args=[approval.pk]), {"reason": "go"})
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    with pytest.raises(PermissionDenied):
        ladder.approve(approval, actor=AnonymousUser(), reason="go")
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING


def test_a_manager_approves_a_suspension_at_once(client, manager_user):
    case = make_case()
    approval = pending_approval(case)
    client.force_login(manager_user)
    response = client.post(
        reverse("cases:approval_approve", args=[approval.pk]),
        {"reason": "three warnings ignored", "next": reverse("cases:approval_queue"), "sure": "on"},
    )
    assert response.status_code == 302 and response["Location"] == reverse("cases:approval_queue")
    assert messages_of(response) == ["Suspension approved and carried out."]
    case.refresh_from_db()
    approval.refresh_from_db()
    assert case.rung == Rung.SUSPENSION
    assert approval.status == ApprovalStatus.DONE and approval.decided_by == manager_user
    approved = CaseEvent.objects.get(case=case, kind="approved")
    assert (approved.actor, approved.note) == (manager_user, "three warnings ignored")
    assert CaseEvent.objects.filter(case=case, kind="rung", new="suspension").exists()
    page = client.get(case.get_absolute_url()).content.decode()
    assert "approved by manager1: three warnings ignored" in page
    assert "suspension carried out" in page


def test_a_manager_schedules_a_suspension_and_noc_cancels_it(client, manager_user, noc_user):
    case = make_case()
    approval = pending_approval(case)
    client.force_login(manager_user)
    when = in_future(2)
    response = client.post(
        reverse("cases:approval_approve", args=[approval.pk]),
        {"reason": "unless fixed", "scheduled_for": when, "sure": "on"},
    )
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.SCHEDULED
    assert approval.scheduled_for == datetime.strptime(when, "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
    assert messages_of(response) == [f"Suspension approved, scheduled for {in_utc(approval.scheduled_for)}."]
    queue = client.get(reverse("cases:approval_queue"))
    assert [a.pk for a in queue.context["scheduled"]] == [approval.pk]
    assert queue.context["page"].paginator.count == 0

    client.force_login(noc_user)
    page = text_of(client.get(case.get_absolute_url()))
    assert f"Suspension scheduled for {in_utc(approval.scheduled_for)} unless fixed" in page
    client.post(reverse("cases:case_cancel_scheduled", args=[case.pk]), {"reason": "customer fixed it"})
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.CANCELLED
    event = CaseEvent.objects.get(case=case, kind="approval_cancelled")
    assert (event.actor, event.note) == (noc_user, "customer fixed it")
    case.refresh_from_db()
    assert case.rung == Rung.WARNING


def test_a_scheduled_time_in_the_past_is_refused_not_carried_out_at_once(client, manager_user):
    case = make_case()
    approval = pending_approval(case)
    client.force_login(manager_user)
    past = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    url = reverse("cases:approval_approve", args=[approval.pk])
    response = client.post(url, {"reason": "x", "scheduled_for": past, "sure": "on"})
    assert response.status_code == 302
    assert "must be in the future" in messages_of(response)[0]
    approval.refresh_from_db()
    case.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING and case.rung == Rung.WARNING


def test_refusing_takes_a_reason(client, manager_user):
    approval = pending_approval(make_case())
    client.force_login(manager_user)
    response = client.post(reverse("cases:approval_refuse", args=[approval.pk]), {"reason": ""})
    assert "Reason: This field is required." in messages_of(response)[0]
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING
    client.post(reverse("cases:approval_refuse", args=[approval.pk]), {"reason": "give them a week"})
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.REFUSED
    event = CaseEvent.objects.get(kind="refused")
    assert (event.actor, event.note) == (manager_user, "give them a week")


def test_deciding_twice_is_a_message_not_a_500(client, manager_user):
    approval = pending_approval(make_case())
    client.force_login(manager_user)
    client.post(reverse("cases:approval_refuse", args=[approval.pk]), {"reason": "no"})
    response = client.post(reverse("cases:approval_approve", args=[approval.pk]), {"reason": "yes", "sure": "on"})
    assert response.status_code == 302
    assert messages_of(response)[-1] == "This proposal is already refused."


# --- NOC actions write their audit -------------------------------------------------------------------


def test_noc_proposes_a_suspension_to_a_manager(client, noc_user):
    case = make_case()
    client.force_login(noc_user)
    response = client.post(
        reverse("cases:case_propose", args=[case.pk]), {"rung": Rung.SUSPENSION, "reason": "ignores every warning"}
    )
    assert messages_of(response) == ["Suspension proposed; it waits for a manager."]
    approval = Approval.objects.get(case=case)
    assert (approval.status, approval.proposed_by, approval.reason) == (
        ApprovalStatus.PENDING,
        noc_user,
        "ignores every warning",
    )
    assert CaseEvent.objects.filter(case=case, kind="approval_requested", new="suspension", actor=noc_user).exists()


def test_hold_and_release(client, noc_user):
    case = make_case()
    client.force_login(noc_user)
    day = (timezone.now() + timedelta(days=10)).date()
    client.post(reverse("cases:case_hold", args=[case.pk]), {"until": day.isoformat(), "reason": "customer on holiday"})
    case.refresh_from_db()
    assert case.hold_until == datetime(day.year, day.month, day.day, tzinfo=UTC)
    hold = CaseEvent.objects.get(case=case, kind="hold")
    sentence = f"held until {day.isoformat()} 00:00 UTC: customer on holiday"
    assert event_sentence(hold) == sentence
    page = client.get(case.get_absolute_url()).content.decode()
    assert "On hold until" in page and sentence in page

    client.post(reverse("cases:case_release_hold", args=[case.pk]))
    case.refresh_from_db()
    assert case.hold_until is None
    assert CaseEvent.objects.filter(case=case, kind="hold_released", actor=noc_user).exists()


def test_a_hold_in_the_past_is_refused(client, noc_user):
    case = make_case()
    client.force_login(noc_user)
    response = client.post(reverse("cases:case_hold", args=[case.pk]), {"until": "2001-01-01", "reason": "x"})
    assert "The hold must end in the future." in messages_of(response)[0]
    assert not CaseEvent.objects.filter(kind="hold").exists()


def test_releasing_a_hold_that_is_not_there_is_a_message(client, noc_user):
    case = make_case()
    client.force_login(noc_user)
    response = client.post(reverse("cases:case_release_hold", args=[case.pk]))
    assert response.status_code == 302
    assert messages_of(response) == ["The case is not on hold."]


def test_noc_confirms_and_rejects_reports(client, noc_user):
    case = make_case(reports=1, unconfirmed=2)
    unconfirmed = list(case.reports.filter(needs_confirmation=True).order_by("pk"))
    client.force_login(noc_user)
    page = client.get(case.get_absolute_url()).content.decode()
    assert page.count("waits for confirmation") == 2
    assert reverse("cases:report_confirm", args=[unconfirmed[0].pk]) in page

    client.post(reverse("cases:report_confirm", args=[unconfirmed[0].pk]))
    client.post(
        reverse("cases:report_reject", args=[unconfirmed[1].pk]), {"reason": "a neighbour's grudge", "sure": "on"}
    )
    for report in unconfirmed:
        report.refresh_from_db()
    assert unconfirmed[0].confirmed_by == noc_user
    assert unconfirmed[1].rejected_reason == "a neighbour's grudge"
    confirmed = CaseEvent.objects.get(kind="report_confirmed")
    rejected = CaseEvent.objects.get(kind="report_rejected")
    assert event_sentence(confirmed) == f"report {unconfirmed[0].pk} confirmed, by noc1"
    assert event_sentence(rejected) == f"report {unconfirmed[1].pk} rejected as false, by noc1: a neighbour's grudge"


def test_noc_merges_a_case_into_another_of_the_same_customer(client, noc_user):
    target = make_case(category="spam")
    source = make_case(customer=target.customer, category="phishing", rung=Rung.NONE, reports=2)
    client.force_login(noc_user)
    response = client.post(
        reverse("cases:case_merge", args=[source.pk]),
        {"target": target.reference, "reason": "one spam run", "sure": "on"},
    )
    assert response["Location"] == target.get_absolute_url()
    source.refresh_from_db()
    assert source.merged_into == target and source.status == CaseStatus.RESOLVED
    assert event_sentence(CaseEvent.objects.get(case=source, kind="merged_into")) == (
        f"merged into {target.reference}, by noc1: one spam run"
    )
    assert CaseEvent.objects.filter(case=target, kind="merged_from", new=str(source.pk)).exists()


def test_merging_into_a_case_that_does_not_exist_is_a_message(client, noc_user):
    case = make_case()
    client.force_login(noc_user)
    response = client.post(
        reverse("cases:case_merge", args=[case.pk]), {"target": "AD-999999", "reason": "x", "sure": "on"}
    )
    assert response["Location"] == case.get_absolute_url()
    assert messages_of(response) == ["Into case: There is no case 'AD-999999'."]


def test_noc_steps_a_warning_down(client, noc_user):
    case = make_case()
    client.force_login(noc_user)
    response = client.post(
        reverse("cases:case_de_escalate", args=[case.pk]), {"reason": "sent to the wrong customer", "sure": "on"}
    )
    assert messages_of(response) == ["Stepped down to first notice."]
    case.refresh_from_db()
    assert case.rung == Rung.FIRST_NOTICE
    event = CaseEvent.objects.get(case=case, kind="de_escalated")
    assert event_sentence(event) == "de-escalated: warning → first notice, by noc1: sent to the wrong customer"


def test_a_manager_reinstates_a_suspended_customer(client, manager_user):
    case = make_case(rung=Rung.SUSPENSION)
    client.force_login(manager_user)
    client.post(reverse("cases:case_reinstate", args=[case.pk]), {"reason": "paid, cleaned up"})
    case.refresh_from_db()
    assert case.rung == Rung.WARNING
    event = CaseEvent.objects.get(case=case, kind="reinstated")
    assert event_sentence(event) == "reinstated by manager1 (back to warning): paid, cleaned up"


def test_a_business_first_notice_waits_for_noc_and_is_sent_from_the_panel(client, noc_user):
    case = make_case(rung=Rung.NONE, reports=1, kind="business")
    ladder.evaluate_case(case.pk)
    case.refresh_from_db()
    assert case.proposed_rung == Rung.FIRST_NOTICE
    client.force_login(noc_user)
    page = client.get(case.get_absolute_url()).content.decode()
    assert "First notice proposed" in page
    assert reverse("cases:case_send_proposed", args=[case.pk]) in page
    response = client.post(reverse("cases:case_send_proposed", args=[case.pk]))
    assert messages_of(response) == ["First notice written; a worker sends it now."]
    case.refresh_from_db()
    assert case.rung == Rung.FIRST_NOTICE and case.proposed_rung is None
    assert CaseEvent.objects.filter(case=case, kind="rung", new="first_notice", actor=noc_user).exists()


# --- the case page -------------------------------------------------------------------------------------


def _action_names(response) -> set[str]:
    return set(response.context["action_forms"])


def test_the_panel_offers_only_what_this_user_may_do(client, noc_user, manager_user):
    case = make_case()
    pending_approval(case)
    client.force_login(noc_user)
    noc_page = client.get(case.get_absolute_url())
    assert _action_names(noc_page) == ladder.allowed_actions(case, noc_user) - {"confirm_report", "reject_report"}
    assert "approve" not in _action_names(noc_page)
    assert b"cases/approvals/" not in noc_page.content and b'data-action="approve"' not in noc_page.content
    client.force_login(manager_user)
    manager_page = client.get(case.get_absolute_url())
    assert {"approve", "refuse"} <= _action_names(manager_page)
    assert b'data-action="approve"' in manager_page.content
    assert b"waits for a manager&#x27;s decision" in manager_page.content


def test_the_panel_says_the_next_step_and_its_reason(client, noc_user):
    case = make_case()
    client.force_login(noc_user)
    response = client.get(case.get_absolute_url())
    step = response.context["step"]
    assert step.rung == Rung.SUSPENSION and step.ready
    page = response.content.decode()
    assert "A manager approves" in page
    assert step.reason in page.replace("&#x27;", "'")


def test_irreversible_actions_ask_for_confirmation_and_work_without_javascript(client, manager_user):
    case = make_case()
    pending_approval(case)
    client.force_login(manager_user)
    page = client.get(case.get_absolute_url()).content.decode()
    approve_url = reverse("cases:approval_approve", args=[case.approvals.get().pk])
    # A plain form that posts without JavaScript; the confirm step is an "I am sure" box the form
    # requires (the browser will not submit it unticked, the server refuses it), not a JS prompt.
    assert f'action="{approve_url}"' in page and 'method="post"' in page
    assert page.count('name="sure"') >= 3  # approve, merge, de-escalate (and each report's reject)
    assert 'hx-confirm="Approve this step?' not in page
    response = client.post(approve_url, {"reason": "three warnings"})
    assert messages_of(response) == ["I am sure: This field is required."]
    assert case.approvals.get().status == ApprovalStatus.PENDING


def test_the_case_page_query_count_does_not_grow_with_its_history(client, manager_user, django_assert_max_num_queries):
    case = make_case(reports=2, unconfirmed=1)
    pending_approval(case)
    client.force_login(manager_user)

    def grow(n: int) -> None:
        for _ in range(n):
            make_notice(case)
            CaseEvent.objects.create(case=case, kind="note", note="n", actor=manager_user, actor_kind=ActorKind.USER)

    grow(1)
    client.get(case.get_absolute_url())
    with django_assert_max_num_queries(22):  # + other cases, colleagues, matched allocations (2), a resolve()
        client.get(case.get_absolute_url())
    grow(20)
    with django_assert_max_num_queries(22):  # + other cases, colleagues, matched allocations (2), a resolve()
        response = client.get(case.get_absolute_url())
    assert len(response.context["notices"]) == 21


def test_the_notice_timeline_shows_every_notice_and_its_content_escaped(client, noc_user):
    case = make_case()
    make_notice(case, kind=NoticeKind.FIRST_NOTICE)
    make_notice(case, status=NoticeStatus.FAILED, last_error="550 5.1.1 <abuse@x.example>: no such user", attempts=5)
    make_notice(case, status=NoticeStatus.PENDING, body=f"Body with {HOSTILE}")
    make_notice(case, status=NoticeStatus.SENDING, claimed_at=timezone.now())
    client.force_login(noc_user)
    page = client.get(case.get_absolute_url()).content.decode()
    timeline = page[page.index('id="notice-timeline"') :]
    for label in ("sent", "failed", "pending", "sending"):
        assert f">{label}</span>" in timeline
    assert "Failed: 550 5.1.1 &lt;abuse@x.example&gt;: no such user" in timeline
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in timeline
    assert HOSTILE not in page
    assert "<details" in timeline and f"[{case.reference}] Warning about your connection" in timeline


def test_hostile_reasons_are_shown_escaped_everywhere(client, noc_user, manager_user):
    case = make_case()
    pending_approval(case, reason=f"proposal {HOSTILE}")
    client.force_login(noc_user)
    client.post(reverse("cases:case_hold", args=[case.pk]), {"until": in_future(5), "reason": f"hold {HOSTILE}"})
    change_standing(case.customer, "warned", actor=noc_user, reason=f"standing {HOSTILE}", case_id=case.pk)
    client.force_login(manager_user)
    pages = [
        client.get(case.get_absolute_url()),
        client.get(reverse("cases:approval_queue")),
        client.get(reverse("cases:customer_timeline", args=[case.customer_id])),
    ]
    for response in pages:
        body = response.content.decode()
        assert response.status_code == 200
        assert HOSTILE not in body and "<script>alert" not in body
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body


def test_a_merge_target_of_absurd_size_is_a_form_error_not_a_500(client, noc_user):
    case = make_case()
    client.force_login(noc_user)
    response = client.post(
        reverse("cases:case_merge", args=[case.pk]), {"target": "9" * 22, "reason": "x", "sure": "on"}
    )
    assert response.status_code == 302 and "There is no case" in messages_of(response)[0]


# --- the approval queue -----------------------------------------------------------------------------------


def test_the_queue_lists_pending_approvals_oldest_first_with_what_a_manager_needs(client, manager_user):
    young = pending_approval(make_case(reports=2, unconfirmed=1), reason="young")
    old = pending_approval(make_case(), reason="old")
    Approval.objects.filter(pk=old.pk).update(proposed_at=timezone.now() - timedelta(days=2))
    client.force_login(manager_user)
    response = client.get(reverse("cases:approval_queue"))
    rows = list(response.context["page"])
    assert [a.pk for a in rows] == [old.pk, young.pk]
    assert (rows[1].unconfirmed, rows[1].rejected) == (1, 0)
    page = response.content.decode()
    assert "2\xa0days ago" in page  # timesince keeps the number and its unit together
    assert young.case.customer.account in page and "residential" in page
    assert page.index("old") < page.index("young")
    assert reverse("cases:customer_timeline", args=[young.case.customer_id]) in page


def _queue_data(n: int, manager) -> None:
    for _ in range(n):
        pending_approval(make_case(reports=1, unconfirmed=1))
        scheduled_approval(make_case(reports=1), manager)


def test_the_queue_query_count_does_not_grow_with_rows(client, manager_user, django_assert_max_num_queries):
    client.force_login(manager_user)
    _queue_data(2, manager_user)
    client.get(reverse("cases:approval_queue"))  # the session and the user's groups, loaded once
    with django_assert_max_num_queries(9):
        assert client.get(reverse("cases:approval_queue")).status_code == 200
    _queue_data(12, manager_user)
    with django_assert_max_num_queries(9):
        response = client.get(reverse("cases:approval_queue"))
    assert len(response.context["page"]) == 14 and len(response.context["scheduled"]) == 14


def test_managers_see_the_approvals_link_with_a_count_and_noc_does_not(client, noc_user, manager_user):
    pending_approval(make_case())
    pending_approval(make_case())
    client.force_login(manager_user)
    page = client.get(reverse("cases:home")).content.decode()
    assert reverse("cases:approval_queue") in page
    assert 'id="pending-approvals"' in page and ">2</span>" in page
    client.force_login(noc_user)
    assert reverse("cases:approval_queue") not in client.get(reverse("cases:home")).content.decode()


def test_the_noc_queue_marks_cases_that_need_action(client, noc_user):
    awaiting = make_case()
    pending_approval(awaiting)
    failed = make_case()
    make_notice(failed, status=NoticeStatus.FAILED, last_error="refused")
    replied = make_case()
    Case.objects.filter(pk=replied.pk).update(awaiting_review=True)
    quiet = make_case(rung=Rung.FIRST_NOTICE, reports=0)
    client.force_login(noc_user)
    response = client.get(reverse("cases:home"))
    page = response.content.decode()
    assert "awaiting approval" in page and "notice failed" in page and "reply to review" in page
    needing = client.get(reverse("cases:home"), {"status": "action"})
    assert {c.pk for c in needing.context["page"]} == {awaiting.pk, failed.pk, replied.pk}
    assert quiet.pk not in {c.pk for c in needing.context["page"]}


# --- the customer's escalation timeline ---------------------------------------------------------------------


def _history(customer, manager) -> None:
    """Two cases of every kind of entry; they are closed after, so the next round can open more."""
    case = make_case(customer=customer)
    CaseEvent.objects.create(case=case, kind="rung", old="first_notice", new="warning", actor_kind=ActorKind.SYSTEM)
    make_notice(case)
    pending_approval(case)
    other = make_case(customer=customer, category="botnet")
    scheduled_approval(other, manager)
    CustomerReply.objects.create(case=case, channel="link", text="fixed the router")
    change_standing(customer, "warned" if customer.standing != "warned" else "good", actor=manager, reason="ladder")
    Case.objects.filter(pk__in=[case.pk, other.pk]).update(status=CaseStatus.RESOLVED)


def test_the_timeline_puts_every_kind_of_entry_in_time_order(manager_user):
    customer = make_customer()
    _history(customer, manager_user)
    timeline = customer_timeline(customer)
    assert {e.what for e in timeline.entries} == {
        "case",
        "event",
        "notice",
        "proposal",
        "decision",
        "standing",
        "reply",
    }
    times = [e.at for e in timeline.entries]
    assert times == sorted(times)
    assert len(timeline.cases) == 2


def test_the_timeline_query_count_does_not_grow_with_history(client, manager_user, django_assert_max_num_queries):
    customer = make_customer()
    client.force_login(manager_user)
    url = reverse("cases:customer_timeline", args=[customer.pk])
    _history(customer, manager_user)
    client.get(url)
    with django_assert_max_num_queries(11):
        assert client.get(url).status_code == 200
    for _ in range(8):
        _history(customer, manager_user)
    with django_assert_max_num_queries(11):
        response = client.get(url)
    assert len(response.context["timeline"].cases) == 18
    assert StandingChange.objects.filter(customer=customer).count() == 9


def test_the_timeline_is_reachable_from_the_case_page(client, noc_user):
    case = make_case()
    client.force_login(noc_user)
    page = client.get(case.get_absolute_url()).content.decode()
    url = reverse("cases:customer_timeline", args=[case.customer_id])
    assert url in page
    assert client.get(url).status_code == 200


# --- history in words ----------------------------------------------------------------------------------------


def _event(kind: str, *, old: str = "", new: str = "", note: str = "", actor=None) -> CaseEvent:
    return CaseEvent(
        kind=kind,
        old=old,
        new=new,
        note=note,
        actor=actor,
        actor_kind=ActorKind.USER if actor else ActorKind.SYSTEM,
    )


@pytest.mark.parametrize(
    ("kind", "old", "new", "note", "by_noc", "words"),
    [
        (
            "reports_added",
            "",
            "3",
            "3 reports from message 12 (arf)",
            False,
            "3 reports added from message 12 (ARF feedback report)",
        ),
        ("reports_added", "", "1", "1 report", False, "1 report added"),
        ("status", "open", "waiting", "", True, "status: open → waiting on customer, by noc1"),
        ("rung", "none", "first_notice", "", False, "first notice sent"),
        ("rung", "first_notice", "warning", "2 further reports", False, "warning sent: 2 further reports"),
        ("approval_requested", "", "suspension", "3 further reports", False, "suspension proposed: 3 further reports"),
        ("approved", "pending", "done", "enough", True, "approved by noc1: enough"),
        ("refused", "pending", "refused", "not yet", True, "refused by noc1: not yet"),
        ("hold", "", "2026-12-03T00:00:00+00:00", "holiday", True, "held until 2026-12-03 00:00 UTC: holiday"),
        ("hold_expired", "2026-12-03T00:00:00+00:00", "", "", False, "hold ended (2026-12-03 00:00 UTC)"),
        ("opened", "", "open", "", False, "case opened"),
        ("note", "", "", "called them", True, "note by noc1: called them"),
        ("proposed", "", "first_notice", "1", False, "first notice proposed, for a NOC member to send: 1"),
        ("customer_reply", "", "", "", False, "customer replied"),
        ("customer_reply", "", "email", "fixed", False, "customer replied (e-mail reply)"),
        ("notice", "", "first_notice", "1 report", False, "first notice written, queued for sending"),
        ("notice_failed", "", "warning", "550 no such user", False, "notice failed (warning): 550 no such user"),
        (
            "provisioning",
            "suspend",
            "manual",
            "to be done by hand: suspend",
            False,
            "provisioning: to be done by hand: suspend",
        ),
        ("provisioning", "restrict", "done", "", True, "provisioning, by noc1: restrict done"),
        ("something_new", "a_b", "c", "why", True, "something new: a b → c, by noc1: why"),
        ("quiet_thing", "", "", "", False, "quiet thing"),
    ],
)
def test_history_in_words(noc_user, kind, old, new, note, by_noc, words):
    assert event_sentence(_event(kind, old=old, new=new, note=note, actor=noc_user if by_noc else None)) == words


def test_history_on_the_page_is_in_words_with_utc_times(client, noc_user):
    case = make_case()
    CaseEvent.objects.create(
        case=case,
        kind="status",
        old="open",
        new="waiting",
        actor=noc_user,
        actor_kind=ActorKind.USER,
        at=datetime(2026, 11, 20, 14, 2, tzinfo=UTC),
    )
    client.force_login(noc_user)
    page = client.get(case.get_absolute_url()).content.decode()
    history = page[page.index('id="case-history"') :]
    assert '<time datetime="2026-11-20T14:02:00Z">2026-11-20 14:02 UTC</time>' in history
    assert "status: open → waiting on customer, by noc1" in history
