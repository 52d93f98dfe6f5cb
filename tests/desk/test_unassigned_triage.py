"""Unassigned queue: re-resolve after an allocation is fixed, dismiss with a reason, and the two
reasons ("nobody held it then", "outside our address space") kept apart with correct counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cases.models import Case, CaseEvent, Report, TriageEvent, UnassignedReason
from cases.services import triage
from cases.services.common import TransitionError
from cases.services.filing import record_reports
from customers.models import Allocation
from tests.cases.helpers import T0, customer_with, event

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_enrichment(settings):
    settings.ENRICHMENT_ENABLED = False


def not_held(ip: str = "198.51.100.7", **kw) -> Report:
    """A report about an address of ours that nobody held at its time (the line was given out later)."""
    if not Allocation.objects.filter(network="198.51.100.0/24").exists():
        customer_with("198.51.100.0/24", "LATER", valid_from=T0 + timedelta(days=30))
    record_reports([event(ip, **kw)])
    return Report.objects.get(ip=ip, occurred_at=kw.get("at", T0), reporter=kw.get("reporter", "fbl@mail.example"))


def outside(ip: str = "192.0.2.55", **kw) -> Report:
    record_reports([event(ip, **kw)])
    return Report.objects.get(ip=ip, occurred_at=kw.get("at", T0), reporter=kw.get("reporter", "fbl@mail.example"))


def test_filing_tells_the_two_reasons_apart():
    assert not_held().unassigned_reason == UnassignedReason.NOT_HELD
    assert outside().unassigned_reason == UnassignedReason.OUTSIDE


def test_re_resolving_after_an_allocation_is_added_files_the_reports_on_a_case(noc_user):
    first = not_held("198.51.100.7")
    second = not_held("198.51.100.8", reporter="other@mail.example")
    customer = customer_with("198.51.100.0/25", "FIXED", valid_from=T0 - timedelta(days=1))

    result = triage.reresolve_reports([first.pk, second.pk], actor=noc_user)

    assert (result.filed, result.still_unassigned) == (2, 0)
    case = Case.objects.get(customer=customer)
    assert result.cases == {case.pk}
    assert case.report_count == 2
    assert (case.first_report_at, case.last_report_at) == (T0, T0)
    for report in Report.objects.filter(pk__in=[first.pk, second.pk]):
        assert (report.customer, report.case, report.unassigned_reason) == (customer, case, "")
        assert report.allocation == Allocation.objects.get(customer=customer)
    assert list(CaseEvent.objects.filter(case=case).values_list("kind", "new")) == [
        ("opened", "open"),
        ("reports_added", "2"),
    ]
    assert CaseEvent.objects.filter(case=case, kind="reports_added").get().actor == noc_user
    assert set(TriageEvent.objects.filter(kind="reresolved").values_list("report_id", "new", "actor")) == {
        (first.pk, str(case.pk), noc_user.pk),
        (second.pk, str(case.pk), noc_user.pk),
    }
    assert not Report.objects.unassigned().exists()
    # Twice is harmless: they are no longer unassigned.
    assert triage.reresolve_reports([first.pk], actor=noc_user).filed == 0
    assert Case.objects.get(pk=case.pk).report_count == 2


def test_re_resolved_reports_join_the_customers_open_case(noc_user):
    report = not_held("198.51.100.7")
    customer = customer_with("198.51.100.7/32", "OPEN", valid_from=T0 - timedelta(days=1))
    record_reports([event("198.51.100.7", at=T0 + timedelta(hours=1), reporter="x@mail.example")])
    case = Case.objects.get(customer=customer)
    triage.reresolve_reports([report.pk], actor=noc_user)
    case.refresh_from_db()
    assert case.report_count == 2
    assert case.first_report_at == T0
    assert Case.objects.filter(customer=customer).count() == 1


def test_a_report_still_held_by_nobody_stays_and_its_reason_is_brought_up_to_date(noc_user):
    report = outside("203.0.113.9")
    # The address becomes ours, but only from a later date: ours, yet nobody held it then.
    customer_with("203.0.113.0/24", "LATE", valid_from=T0 + timedelta(days=1))
    result = triage.reresolve_reports([report.pk], actor=noc_user)
    assert (result.filed, result.still_unassigned, result.reason_changed) == (0, 1, 1)
    report.refresh_from_db()
    assert (report.case, report.unassigned_reason) == (None, UnassignedReason.NOT_HELD)
    assert TriageEvent.objects.get(report=report).kind == "reason"


def test_dismissing_takes_reports_out_of_the_queue_with_the_reason(noc_user):
    a, b = outside("192.0.2.1"), not_held("198.51.100.9")
    assert triage.dismiss_reports([a.pk, b.pk], reason="test traffic from a partner", actor=noc_user) == 2
    assert not Report.objects.unassigned().exists()
    a.refresh_from_db()
    assert (a.dismissed_reason, a.dismissed_by) == ("test traffic from a partner", noc_user)
    assert set(TriageEvent.objects.filter(kind="dismissed").values_list("report_id", "old", "note")) == {
        (a.pk, "outside", "test traffic from a partner"),
        (b.pk, "not_held", "test traffic from a partner"),
    }
    # Dismissed reports are not re-resolved, nor dismissed twice.
    assert triage.dismiss_reports([a.pk], reason="again", actor=noc_user) == 0
    with pytest.raises(TransitionError):
        triage.dismiss_reports([b.pk], reason=" ", actor=noc_user)


def test_the_page_keeps_the_two_reasons_apart_with_correct_counts(client, noc_user):
    for n in range(2):
        not_held(f"198.51.100.{n + 1}")
    for n in range(3):
        outside(f"192.0.2.{n + 1}")
    dismissed = outside("192.0.2.200")
    triage.dismiss_reports([dismissed.pk], reason="old", actor=noc_user)
    client.force_login(noc_user)

    page = client.get(reverse("cases:unassigned") + "?reason=not_held")
    tabs = {value: count for value, _label, count, _help in page.context["tabs"]}
    assert tabs == {"not_held": 2, "outside": 3, "no_addr": 0, "bogon": 0, "dismissed": 1}
    assert {r.ip for r in page.context["page"]} == {"198.51.100.1", "198.51.100.2"}
    assert "no customer held at the reported time" in page.text
    assert "Outside our address space</td>" not in page.text

    page = client.get(reverse("cases:unassigned") + "?reason=outside")
    assert {r.ip for r in page.context["page"]} == {"192.0.2.1", "192.0.2.2", "192.0.2.3"}
    assert "Addresses that are not ours" in page.text
    assert "Nobody held the address then</td>" not in page.text
    assert "Tell the reporters where to write" in page.text

    page = client.get(reverse("cases:unassigned") + "?reason=dismissed")
    assert [r.ip for r in page.context["page"]] == ["192.0.2.200"]
    assert "old" in page.text


def test_the_page_re_resolves_and_dismisses_the_ticked_reports(client, noc_user):
    a, b = not_held("198.51.100.1"), not_held("198.51.100.2", reporter="x@mail.example")
    customer_with("198.51.100.1/32", "FIXED", valid_from=T0 - timedelta(days=1))
    client.force_login(noc_user)
    response = client.post(reverse("cases:unassigned_reresolve"), {"ids": [a.pk, b.pk], "tab": "not_held"}, follow=True)
    assert "1 report filed on 1 case. 1 still held by nobody at their time." in response.text
    assert Report.objects.get(pk=a.pk).case is not None
    response = client.post(reverse("cases:unassigned_dismiss"), {"ids": [b.pk], "tab": "not_held"}, follow=True)
    assert "This field is required." in response.text
    response = client.post(
        reverse("cases:unassigned_dismiss"), {"ids": [b.pk], "reason": "lab", "tab": "not_held"}, follow=True
    )
    assert "1 report dismissed." in response.text
    assert Report.objects.get(pk=b.pk).dismissed_reason == "lab"


@pytest.mark.parametrize("name", ["cases:unassigned_reresolve", "cases:unassigned_dismiss", "cases:unassigned_refer"])
def test_unassigned_actions_are_post_only_and_need_the_noc_role(client, noc_user, norole_user, name):
    report = outside()
    client.force_login(noc_user)
    assert client.get(reverse(name)).status_code == 405
    client.force_login(norole_user)
    assert client.post(reverse(name), {"ids": [report.pk], "reason": "x"}).status_code == 403
    assert Report.objects.unassigned().count() == 1


def test_unassigned_actions_check_the_csrf_token(noc_user):
    from django.test import Client

    report = outside()
    client = Client(enforce_csrf_checks=True)
    client.force_login(noc_user)
    response = client.post(reverse("cases:unassigned_dismiss"), {"ids": [report.pk], "reason": "x"})
    assert response.status_code == 403
    assert Report.objects.unassigned().count() == 1


@pytest.mark.parametrize("tab", ["not_held", "outside", "dismissed"])
def test_the_unassigned_list_takes_the_same_queries_for_3_or_40_rows(client, noc_user, tab):
    client.force_login(noc_user)
    counter = iter(range(1, 250))

    def add(rows: int) -> None:
        ids = []
        for _ in range(rows):
            n = next(counter)
            make = not_held if tab == "not_held" else outside
            ids.append(make(f"198.51.100.{n}" if tab == "not_held" else f"192.0.2.{n}").pk)
        if tab == "dismissed":
            triage.dismiss_reports(ids, reason="x", actor=noc_user)

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("cases:unassigned") + f"?reason={tab}").status_code == 200
        return len(ctx.captured_queries)

    add(3)
    few = queries()
    add(37)
    many = queries()
    assert few == many
    assert many <= 7  # session, user, roles, the counts, the page count, the rows, referrals (dismissed tab)


def test_re_resolved_reports_go_up_the_ladder_after_the_commit(noc_user, django_capture_on_commit_callbacks):
    from cases.models import Notice, Rung

    report = not_held("198.51.100.7")
    customer = customer_with("198.51.100.7/32", "FIXED", valid_from=T0 - timedelta(days=1))
    with django_capture_on_commit_callbacks(execute=True):
        triage.reresolve_reports([report.pk], actor=noc_user)
    case = Case.objects.get(customer=customer)
    assert case.rung == Rung.FIRST_NOTICE  # the residential default: a first notice on the first report
    assert Notice.objects.filter(case=case, kind="first_notice").exists()
