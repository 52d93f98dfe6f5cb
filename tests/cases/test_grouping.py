from __future__ import annotations

from datetime import timedelta

import pytest

from cases.models import Case, CaseEvent, CaseStatus, Report, UnassignedReason
from cases.services.filing import record_reports
from cases.services.workflow import change_case_status
from customers.resolver import resolve, resolve_many
from tests.cases.helpers import T0, customer_with, event

pytestmark = pytest.mark.django_db


def test_a_report_opens_a_case_for_the_customer_who_held_the_ip_then():
    old = customer_with("198.51.100.7/32", "R-1", valid_to=T0 - timedelta(days=1))
    new = customer_with("198.51.100.7/32", "R-2", valid_from=T0 - timedelta(days=1))
    record_reports([event("198.51.100.7", at=T0 - timedelta(days=3))])
    record_reports([event("198.51.100.7", at=T0)])
    assert Case.objects.get(customer=old).report_count == 1
    assert Case.objects.get(customer=new).report_count == 1


def test_reports_join_the_open_case_of_their_category():
    customer = customer_with("198.51.100.0/24", "B-1", kind="business")
    record_reports([event("198.51.100.7", at=T0)])
    record_reports([event("198.51.100.8", at=T0 + timedelta(hours=3))])
    record_reports([event("198.51.100.8", at=T0, category="scanning", reporter="scan@x.example")])
    spam = Case.objects.get(customer=customer, category="spam")
    assert spam.report_count == 2
    assert spam.last_report_at == T0 + timedelta(hours=3)
    assert Case.objects.filter(customer=customer).count() == 2


def test_forty_ips_of_twelve_customers_open_twelve_cases():
    for n in range(12):
        customer_with(f"203.0.113.{n * 16}/28", f"C-{n}")
    events = [event(f"203.0.113.{(i % 12) * 16 + i // 12 + 1}", reporter="feed@shadow.example") for i in range(40)]
    summary = record_reports(events)
    assert summary.created == 40
    assert summary.cases_opened == 12
    assert Case.objects.count() == 12
    assert sorted(Case.objects.values_list("report_count", flat=True)) == sorted([4] * 4 + [3] * 8)
    assert CaseEvent.objects.filter(kind="opened").count() == 12
    assert CaseEvent.objects.filter(kind="reports_added").count() == 12


def test_the_same_event_twice_is_stored_once_and_counted():
    customer_with("198.51.100.0/24", "B-1")
    record_reports([event("198.51.100.7", at=T0)])
    summary = record_reports([event("198.51.100.7", at=T0 + timedelta(minutes=5)), event("198.51.100.7", at=T0)])
    assert summary.duplicates == 2
    assert Report.objects.count() == 1
    assert Report.objects.get().duplicate_count == 2
    assert Case.objects.get().report_count == 1


def test_the_same_ip_outside_the_window_or_from_another_reporter_is_a_new_report():
    customer_with("198.51.100.0/24", "B-1")
    record_reports([event("198.51.100.7", at=T0)])
    record_reports([event("198.51.100.7", at=T0 + timedelta(hours=5))])
    record_reports([event("198.51.100.7", at=T0, reporter="other@elsewhere.example")])
    assert Report.objects.count() == 3


def test_reports_without_a_customer_go_to_the_unassigned_queue_with_the_reason():
    customer_with("198.51.100.7/32", "R-1", valid_to=T0 - timedelta(days=1))
    record_reports([event("198.51.100.7", at=T0), event("192.0.2.55", at=T0)])
    reasons = dict(Report.objects.unassigned().values_list("ip", "unassigned_reason"))
    assert reasons == {"198.51.100.7": UnassignedReason.NOT_HELD, "192.0.2.55": UnassignedReason.OUTSIDE}
    assert Case.objects.count() == 0


def test_a_closed_case_is_not_reopened_by_a_new_report():
    customer = customer_with("198.51.100.0/24", "B-1")
    record_reports([event("198.51.100.7", at=T0)])
    first = Case.objects.get()
    change_case_status(first, CaseStatus.RESOLVED, actor=None)
    record_reports([event("198.51.100.7", at=T0 + timedelta(days=2))])
    assert Case.objects.filter(customer=customer).count() == 2
    assert Case.objects.open().get().pk != first.pk


def test_ipv4_mapped_and_ipv6_events_resolve():
    v4 = customer_with("198.51.100.0/24", "B-1")
    v6 = customer_with("2001:db8:10::/48", "B-6")
    record_reports([event("::ffff:198.51.100.9", at=T0), event("2001:db8:10::25", at=T0)])
    assert set(Report.objects.values_list("ip", "customer__account")) == {
        ("198.51.100.9", v4.account),
        ("2001:db8:10::25", v6.account),
    }


def test_resolve_many_agrees_with_resolve():
    customer_with("198.51.100.0/24", "POOL")
    customer_with("198.51.100.8/29", "BIZ")
    customer_with("198.51.100.7/32", "LEASE", valid_from=T0 - timedelta(hours=1), valid_to=T0 + timedelta(hours=1))
    pairs = [(f"198.51.100.{n}", T0 + timedelta(minutes=m)) for n in range(0, 20) for m in (-90, 0, 59, 60, 61)]
    pairs.append(("192.0.2.1", T0))
    bulk = resolve_many(pairs)
    for ip, at in pairs:
        one = resolve(ip, at)
        assert (bulk[(ip, at)].pk if bulk[(ip, at)] else None) == (one.pk if one else None), (ip, at)


def test_invalid_events_are_dropped_not_stored():
    customer_with("198.51.100.0/24", "B-1")
    good = event("198.51.100.7")
    bad = event("198.51.100.8")
    bad.ip = "148.81.111.11.12"
    summary = record_reports([good, bad])
    assert summary.created == 1
    assert list(Report.objects.values_list("ip", flat=True)) == ["198.51.100.7"]


def test_a_duplicate_in_a_later_chunk_of_the_same_batch_is_caught():
    customer_with("10.0.0.0/16", "BIG")
    events = [event(f"10.0.{n // 256}.{n % 256}", reporter="feed@x.example") for n in range(1200)]
    events.append(event("10.0.0.5", at=T0 + timedelta(minutes=1), reporter="feed@x.example"))
    summary = record_reports(events)
    assert (summary.created, summary.duplicates) == (1200, 1)
    assert Report.objects.get(ip="10.0.0.5").duplicate_count == 1
    case = Case.objects.get()
    assert case.report_count == 1200
    assert CaseEvent.objects.filter(case=case, kind="reports_added").count() == 1
