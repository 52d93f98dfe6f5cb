"""The NOC queue: what needs action comes first with its age against the target, filters, sorting,
pages, the htmx table, and bulk actions through the case page's services with per-case errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cases.models import Case, CaseEvent, CaseStatus, NoticeStatus, Rung
from cases.services import ladder
from tests.cases.ladder_builders import make_case, make_notice, pending_approval
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def refs(response) -> list[str]:
    return [c.reference for c in response.context["page"]]


@pytest.fixture
def queue(db) -> dict[str, Case]:
    """One case for each reason to act, plus a quiet one and a resolved one."""
    quiet = make_case(rung=Rung.FIRST_NOTICE, reports=1)
    failed = make_case()
    make_notice(failed, status=NoticeStatus.FAILED, last_error="550 refused")
    replied = make_case()
    Case.objects.filter(pk=replied.pk).update(awaiting_review=True)
    approval = make_case()
    pending_approval(approval)
    held = make_case()
    Case.objects.filter(pk=held.pk).update(hold_until=timezone.now() - timedelta(hours=1), hold_reason="waiting")
    new = make_case(rung=Rung.NONE, reports=1)
    Case.objects.filter(pk=new.pk).update(opened_at=timezone.now() - timedelta(hours=5))
    closed = make_case(rung=Rung.NONE, reports=1, category="botnet")
    Case.objects.filter(pk=closed.pk).update(status=CaseStatus.RESOLVED)
    return {
        "quiet": quiet,
        "failed": failed,
        "replied": replied,
        "approval": approval,
        "review": held,
        "new": new,
        "closed": closed,
    }


def test_cases_needing_action_come_first_most_urgent_first(client, noc_user, queue):
    client.force_login(noc_user)
    response = client.get(reverse("cases:home"))
    rows = [(c.reference, c.need_key) for c in response.context["page"]]
    assert rows == [
        (queue["failed"].reference, "failed"),
        (queue["replied"].reference, "replied"),
        (queue["review"].reference, "review"),
        (queue["approval"].reference, "approval"),
        (queue["new"].reference, "new"),
        (queue["quiet"].reference, ""),
    ]
    page = response.content.decode()
    for words in ("notice failed", "reply to review", "due for review", "awaiting approval", "new"):
        assert words in page


def test_each_case_shows_its_age_against_the_target_from_settings(client, noc_user, queue, settings):
    settings.QUEUE_TARGET_HOURS = {**settings.QUEUE_TARGET_HOURS, "new": 4, "approval": 24}
    client.force_login(noc_user)
    by_ref = {c.reference: c for c in client.get(reverse("cases:home")).context["page"]}
    new, approval = by_ref[queue["new"].reference], by_ref[queue["approval"].reference]
    assert new.since.age_text == "5 h" and new.since.target_text == "4 h" and new.since.overdue
    assert approval.since.age_text == "3 h" and not approval.since.overdue  # proposed 3 hours ago
    assert by_ref[queue["quiet"].reference].since is None
    settings.QUEUE_TARGET_HOURS = {**settings.QUEUE_TARGET_HOURS, "new": 6}
    response = client.get(reverse("cases:home"))
    assert not {c.reference: c for c in response.context["page"]}[queue["new"].reference].since.overdue


def test_needs_action_leaves_out_the_quiet_cases(client, noc_user, queue):
    client.force_login(noc_user)
    response = client.get(reverse("cases:home"), {"status": "action"})
    assert queue["quiet"].reference not in refs(response)
    assert len(refs(response)) == 5
    assert refs(client.get(reverse("cases:home"), {"need": "replied"})) == [queue["replied"].reference]


def test_the_queue_filters_by_rung_category_kind_assignee_and_age(client, noc_user, manager_user, queue):
    business = make_case(rung=Rung.NONE, reports=1, kind="business", category="phishing")
    Case.objects.filter(pk=queue["quiet"].pk).update(assignee=noc_user)
    Case.objects.filter(pk=queue["failed"].pk).update(assignee=manager_user)
    Case.objects.filter(pk=queue["review"].pk).update(opened_at=timezone.now() - timedelta(days=40))
    client.force_login(noc_user)

    def found(**params) -> set[str]:
        return set(refs(client.get(reverse("cases:home"), params)))

    assert found(rung=Rung.FIRST_NOTICE) == {queue["quiet"].reference}
    assert found(category="phishing") == {business.reference}
    assert found(kind="business") == {business.reference}
    assert found(assignee="me") == {queue["quiet"].reference}
    assert found(assignee=str(manager_user.pk)) == {queue["failed"].reference}
    assert queue["quiet"].reference not in found(assignee="none")
    assert len(found(assignee="none")) == 5
    assert found(age="old") == {queue["review"].reference}
    assert found(status="resolved") == {queue["closed"].reference}
    assert len(found(status="all")) == 8
    # A value that is not on offer is ignored, not an error.
    assert len(found(rung="banana", kind="martian", age="forever")) == 7


@pytest.mark.parametrize("column", ["case", "customer", "category", "status", "rung", "reports", "last", "opened"])
def test_every_column_sorts_both_ways(client, noc_user, queue, column):
    client.force_login(noc_user)
    up = refs(client.get(reverse("cases:home"), {"sort": column, "status": "all"}))
    down = refs(client.get(reverse("cases:home"), {"sort": f"-{column}", "status": "all"}))
    assert sorted(up) == sorted(down) and len(up) == 7
    if column in ("case", "reports", "opened"):  # columns whose values differ on every row here
        assert up == list(reversed(down))


def test_sorting_by_anything_else_is_ignored(client, noc_user, queue):
    client.force_login(noc_user)
    default = refs(client.get(reverse("cases:home")))
    assert refs(client.get(reverse("cases:home"), {"sort": "customer__contacts__email"})) == default
    assert refs(client.get(reverse("cases:home"), {"sort": "-pk"})) == default


def test_the_sort_links_keep_the_filters_and_reverse_the_current_sort(client, noc_user, queue):
    client.force_login(noc_user)
    response = client.get(reverse("cases:home"), {"category": "spam", "sort": "reports", "page": "1"})
    sorts = response.context["sorts"]
    assert sorts["reports"] == {"url": "?category=spam&sort=-reports", "state": "asc"}
    assert sorts["customer"]["url"] == "?category=spam&sort=customer"


def test_the_queue_pages_with_a_chosen_page_size(client, noc_user):
    for _ in range(30):
        make_case(rung=Rung.FIRST_NOTICE, reports=0)
    client.force_login(noc_user)
    first = client.get(reverse("cases:home"), {"size": 25})
    second = client.get(reverse("cases:home"), {"size": 25, "page": 2})
    assert len(first.context["page"]) == 25 and len(second.context["page"]) == 5
    assert not set(refs(first)) & set(refs(second))
    assert len(client.get(reverse("cases:home"), {"size": 7}).context["page"]) == 30  # 50, not 7


def test_htmx_gets_only_the_table(client, noc_user, queue):
    client.force_login(noc_user)
    response = client.get(
        reverse("cases:home"), {"need": "failed"}, headers={"HX-Request": "true", "HX-Target": "queue-results"}
    )
    page = response.content.decode()
    assert 'id="case-queue"' in page and "<html" not in page
    assert refs(response) == [queue["failed"].reference]


def _queue_queries(client, n_rows: int) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("cases:home"), {"size": 50})
    assert len(response.context["page"]) == n_rows
    return len(queries)


def test_the_queue_costs_the_same_queries_for_10_rows_as_for_50(client, noc_user, manager_user):
    client.force_login(manager_user)  # a manager: the nav's approval count is one more query
    client.get(reverse("cases:home"))  # session and roles warmed as on any later request

    def rows(n: int) -> None:
        for i in range(n):
            case = make_case(
                rung=Rung.NONE if i % 2 else Rung.WARNING, reports=1, kind="business" if i % 3 else "residential"
            )
            if i % 5 == 0:
                make_notice(case, status=NoticeStatus.FAILED)
            if i % 5 == 1:
                pending_approval(case)
            if i % 5 == 2:
                Case.objects.filter(pk=case.pk).update(awaiting_review=True, assignee=noc_user)

    rows(10)
    at_10 = _queue_queries(client, 10)
    rows(40)
    at_50 = _queue_queries(client, 50)
    assert at_10 == at_50
    assert at_50 <= 10


# --- bulk actions -----------------------------------------------------------------------------------


def bulk(client: Client, action: str, cases, **extra):
    data = {"action": action, "case": [c.pk for c in cases], "next": reverse("cases:home") + "?status=all", **extra}
    return client.post(reverse("cases:queue_bulk"), data)


def test_bulk_assign_gives_the_cases_to_a_colleague_with_an_audit_row_each(client, noc_user, manager_user, queue):
    client.force_login(noc_user)
    chosen = [queue["new"], queue["quiet"]]
    response = bulk(client, "assign", chosen, assignee=manager_user.pk)
    assert response.status_code == 302 and response["Location"] == "/?status=all"
    assert messages_of(response) == [f"2 cases assigned to manager1: {chosen[0].reference}, {chosen[1].reference}."]
    for case in chosen:
        case.refresh_from_db()
        assert case.assignee == manager_user
        assert CaseEvent.objects.get(case=case, kind="assignee").actor == noc_user


def test_bulk_assign_only_to_someone_with_the_noc_role(client, noc_user, norole_user, queue):
    client.force_login(noc_user)
    response = bulk(client, "assign", [queue["new"]], assignee=norole_user.pk)
    assert messages_of(response)[0].startswith("Nothing was done:")
    queue["new"].refresh_from_db()
    assert queue["new"].assignee is None


def test_bulk_resolve_reports_each_refusal_and_does_the_rest(client, noc_user, queue):
    client.force_login(noc_user)
    response = bulk(client, "resolve", [queue["new"], queue["closed"]], note="cleaned up")
    assert response.status_code == 302
    assert messages_of(response) == [
        f"1 case resolved: {queue['new'].reference}.",
        f"{queue['closed'].reference}: A case cannot go from resolved to resolved.",
    ]
    queue["new"].refresh_from_db()
    assert queue["new"].status == CaseStatus.RESOLVED
    assert CaseEvent.objects.get(case=queue["new"], kind="status").note == "cleaned up"


def test_bulk_reject_and_a_missing_case(client, noc_user, queue):
    client.force_login(noc_user)
    response = client.post(reverse("cases:queue_bulk"), {"action": "reject", "case": [queue["quiet"].pk, 999999]})
    assert response["Location"] == reverse("cases:home")
    assert messages_of(response) == [f"1 case rejected: {queue['quiet'].reference}.", "#999999: no such case."]
    queue["quiet"].refresh_from_db()
    assert queue["quiet"].status == CaseStatus.REJECTED


def test_bulk_send_proposed_climbs_where_a_notice_is_proposed_and_says_where_not(client, noc_user, queue):
    proposed = make_case(rung=Rung.NONE, reports=1, kind="business")
    ladder.evaluate_case(proposed.pk)
    proposed.refresh_from_db()
    assert proposed.proposed_rung == Rung.FIRST_NOTICE
    client.force_login(noc_user)
    response = bulk(client, "send_proposed", [proposed, queue["quiet"]])
    assert messages_of(response) == [
        f"Proposed notices written for 1 case; a worker sends them now: {proposed.reference}.",
        f"{queue['quiet'].reference}: There is no proposed notice on this case.",
    ]
    proposed.refresh_from_db()
    assert proposed.rung == Rung.FIRST_NOTICE and proposed.proposed_rung is None


def test_bulk_actions_are_post_only_and_need_the_noc_role(client, norole_user, queue):
    url = reverse("cases:queue_bulk")
    assert client.post(url, {"action": "resolve", "case": [queue["new"].pk]}).status_code == 302  # to log in
    client.force_login(norole_user)
    assert client.post(url, {"action": "resolve", "case": [queue["new"].pk]}).status_code == 403
    noc = make_user("noc9", "noc")
    client.force_login(noc)
    assert client.get(url).status_code == 405
    queue["new"].refresh_from_db()
    assert queue["new"].status == CaseStatus.OPEN


def test_bulk_actions_need_the_csrf_token(noc_user, queue):
    client = Client(enforce_csrf_checks=True)
    client.force_login(noc_user)
    response = client.post(reverse("cases:queue_bulk"), {"action": "resolve", "case": [queue["new"].pk]})
    assert response.status_code == 403
    queue["new"].refresh_from_db()
    assert queue["new"].status == CaseStatus.OPEN


def test_nothing_selected_or_an_unknown_action_does_nothing(client, noc_user, queue):
    client.force_login(noc_user)
    assert messages_of(bulk(client, "resolve", []))[0].startswith("Nothing was done:")
    assert messages_of(bulk(client, "delete", [queue["new"]]))[0].startswith("Nothing was done:")
    assert Case.objects.filter(status=CaseStatus.RESOLVED).count() == 1
