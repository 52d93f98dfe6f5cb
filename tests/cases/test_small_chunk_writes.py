"""A message's few events (mail filed a message at a time) are written in one statement on
PostgreSQL: the case upsert, the reports and the audit rows (filing._write_together), after one
look-up that also says which unheld addresses are ours. It must leave exactly what the
three-statement path (a feed's chunk) leaves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from cases.models import Case, CaseEvent, Report, UnassignedReason
from cases.services import filing
from tests.cases.helpers import T0, customer_with, event

pytestmark = [pytest.mark.django_db, pytest.mark.requires_postgres]


def _events() -> list:
    return [
        event("198.51.100.7", at=T0),
        event("198.51.100.7", at=T0 + timedelta(minutes=2)),  # a twin of the first (same key, in the window)
        event("198.51.100.9", at=T0 + timedelta(hours=2)),
        event("198.51.100.9", at=T0, category="scanning", reporter="scan@feed.example", format="shadowserver"),
        event("203.0.113.5", at=T0),  # ours, but nobody held it then
        event("192.0.2.77", at=T0),  # nobody's
    ]


def _setup() -> None:
    customer_with("198.51.100.0/24", "B-1", kind="business")
    customer_with("203.0.113.0/28", "OLD", valid_from=datetime(2025, 1, 1, tzinfo=UTC), valid_to=T0 - timedelta(days=9))


def _snapshot() -> dict:
    reports = list(
        Report.objects.order_by("pk").values_list(
            "ip", "case__category", "customer__account", "duplicate_count", "unassigned_reason", "allocation__network"
        )
    )
    cases = list(
        Case.objects.order_by("category").values_list("category", "report_count", "first_report_at", "last_report_at")
    )
    events = []
    for case in Case.objects.order_by("category"):
        rows = list(CaseEvent.objects.filter(case=case).order_by("pk"))
        first = Report.objects.filter(case=case).order_by("pk").first()
        events.append([(e.kind, e.new, e.note) for e in rows] + [rows[-1].report_id == first.pk])
    return {"reports": reports, "cases": cases, "events": events}


@pytest.fixture
def filed_in_one_statement():
    _setup()
    with transaction.atomic():
        summary = filing.file_chunk([(e, None) for e in _events()])
    return summary, _snapshot()


def test_cases_reports_and_audit_rows_are_written(filed_in_one_statement):
    summary, snap = filed_in_one_statement
    assert summary.created == 5 and summary.duplicates == 1 and summary.cases_opened == 2
    assert snap["cases"] == [
        ("scanning", 1, T0, T0),
        ("spam", 2, T0, T0 + timedelta(hours=2)),
    ]
    by_ip = {(ip, category): row for ip, category, *row in snap["reports"]}
    assert by_ip[("198.51.100.7", "spam")] == ["B-1", 1, "", "198.51.100.0/24"]  # the twin counted on it
    assert by_ip[("203.0.113.5", None)][2] == UnassignedReason.NOT_HELD
    assert by_ip[("192.0.2.77", None)][2] == UnassignedReason.OUTSIDE
    # Per case: "opened" first, then "reports_added" naming the case's first report.
    assert snap["events"] == [
        [("opened", "open", ""), ("reports_added", "1", "1 report"), True],
        [("opened", "open", ""), ("reports_added", "2", "2 reports"), True],
    ]
    assert set(summary.new_report_ids) == set(Report.objects.values_list("pk", flat=True))


def test_the_same_as_the_three_statement_path(filed_in_one_statement, monkeypatch):
    _, together = filed_in_one_statement
    Report.objects.all().delete()
    CaseEvent.objects.all().delete()
    Case.objects.all().delete()
    monkeypatch.setattr(filing, "GENERIC_PLAN_ROWS", 0)  # a feed's path: upsert, reports, audit rows
    with transaction.atomic():
        filing.file_chunk([(e, None) for e in _events()])
    assert _snapshot() == together


def test_a_second_message_joins_the_case_in_two_statements():
    _setup()
    with transaction.atomic():
        filing.file_chunk([(event("198.51.100.7", at=T0), None)])
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        summary = filing.file_chunk([(event("198.51.100.8", at=T0 + timedelta(hours=1)), None)])
    sent = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("PREPARE", "SAVEPOINT", "RELEASE"))]
    # The look-up (locks, duplicates, holder) and the write (case, report, audit row).
    assert len(sent) == 2, sent
    case = Case.objects.get()
    assert summary.cases_opened == 0 and case.report_count == 2 and case.last_report_at == T0 + timedelta(hours=1)
    assert list(CaseEvent.objects.filter(case=case).order_by("pk").values_list("kind", "new")) == [
        ("opened", "open"),
        ("reports_added", "1"),
        ("reports_added", "1"),
    ]
