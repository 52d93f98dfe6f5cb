"""On PostgreSQL a filed message's case is locked and its ladder facts read in one round trip
(ladder._lock_with_facts_postgresql). Those facts must be exactly what load_facts() reads with
its separate queries, whatever the case's history holds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cases.models import ApprovalStatus, Case, CaseEvent, NoticeKind, NoticeStatus, Report, Rung
from cases.services import ladder
from customers.models import CustomerKind
from tests.cases.ladder_builders import make_case, make_notice, next_number, pending_approval, scheduled_approval

pytestmark = [pytest.mark.django_db, pytest.mark.requires_postgres]


def _both(case):
    now = timezone.now()
    with transaction.atomic():
        locked, fast = ladder._lock_with_facts_postgresql(case.pk, now)
    slow = ladder.load_facts([Case.objects.select_related("customer").get(pk=case.pk)], now)[case.pk]
    return locked, fast, slow


def _report(case, *, hours: float, **kw) -> Report:
    n = next_number()
    defaults = {
        "case": case,
        "customer": case.customer,
        "ip": "198.51.100.9",
        "occurred_at": timezone.now() - timedelta(hours=hours),
        "category": case.category,
        "reporter": f"r{n}@mail.example",
        "format": "arf",
        "evidence": "x",
        "dedupe_key": f"facts{n}",
    }
    defaults.update(kw)
    return Report.objects.create(**defaults)


def test_a_case_with_every_kind_of_history_gives_the_same_facts_both_ways(manager_user):
    case = make_case(rung=Rung.WARNING, reports=3, unconfirmed=2)
    _report(case, hours=1, format="dmarc", reporter="dmarc@agg.example")  # no voice
    _report(case, hours=3, needs_confirmation=True, confirmed_at=timezone.now())  # confirmed: trusted
    _report(case, hours=4, rejected_at=timezone.now(), rejected_reason="not ours")
    original = _report(case, hours=5)
    _report(case, hours=5, duplicate_of=original)  # a duplicate is no fact
    _report(case, hours=24 * 400)  # outside every window
    scheduled_approval(case, manager_user)
    other = make_case(rung=Rung.FIRST_NOTICE, customer=case.customer, category="botnet")
    make_notice(other, kind=NoticeKind.FIRST_NOTICE)
    make_notice(other, kind=NoticeKind.WARNING, status=NoticeStatus.FAILED, created_at=timezone.now())
    make_notice(case, kind=NoticeKind.WARNING)  # this case's own notice is no earlier offence
    make_notice(other, kind=NoticeKind.REPORTER_ACK, created_at=timezone.now())  # not a customer notice
    CaseEvent.objects.create(case=other, kind="reinstated", at=timezone.now() - timedelta(days=2))
    case.hold_until = timezone.now() + timedelta(days=1)
    case.hold_reason = "customer is cleaning up"
    case.save()

    locked, fast, slow = _both(case)

    assert fast == slow
    assert len(fast.reports) == 9  # 5 made + dmarc + confirmed + rejected + original; not the duplicate or the old one
    assert fast.open_approval is not None and fast.open_approval.status == ApprovalStatus.SCHEDULED
    assert fast.earlier_notice_at is not None and fast.reinstated_at is not None
    assert "" in {r.reporter for r in fast.reports}  # the DMARC row has no voice
    assert locked.pk == case.pk and locked.customer.pk == case.customer.pk
    assert locked.hold_reason == "customer is cleaning up"


def test_a_bare_case_gives_the_same_facts_both_ways():
    case = make_case(rung=Rung.NONE, reports=0)

    locked, fast, slow = _both(case)

    assert fast == slow
    assert fast.reports == () and fast.open_approval is None and fast.earlier_notice_at is None


def test_a_pending_approval_is_seen_and_the_case_row_is_locked():
    case = make_case(rung=Rung.WARNING, reports=2)
    pending_approval(case)
    with transaction.atomic():
        _locked, facts = ladder._lock_with_facts_postgresql(case.pk, timezone.now())
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname = 'cases_case' AND l.mode = 'RowShareLock' AND l.pid = pg_backend_pid()"
            )
            (row_share,) = cursor.fetchone()
    assert facts.open_approval is not None and facts.open_approval.status == ApprovalStatus.PENDING
    assert row_share >= 1  # FOR UPDATE took its row lock on the case table


def test_evaluating_a_case_reads_it_in_one_round_trip():
    case = make_case(rung=Rung.NONE, reports=0)
    for kind in CustomerKind.values:
        ladder.policy_for(kind)  # policies are cached a minute per process: not read per case
    ladder.evaluate_case(case.pk)  # the first on a connection also prepares the statement
    with CaptureQueriesContext(connection) as queries:
        ladder.evaluate_case(case.pk)
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]
    assert len(reads) == 1, reads
    assert "FOR UPDATE" in reads[0]


def test_a_missing_case_is_refused():
    with pytest.raises(Case.DoesNotExist), transaction.atomic():
        ladder._lock_with_facts_postgresql(10**12, timezone.now())


def test_a_quiet_case_is_evaluated_with_one_read_and_no_lock():
    case = make_case(rung=Rung.NONE, reports=0)
    for kind in CustomerKind.values:
        ladder.policy_for(kind)
    ladder.evaluate_cases([case.pk])  # the first on a connection also prepares the statement
    with CaptureQueriesContext(connection) as queries:
        ladder.evaluate_cases([case.pk])
    sql = [q["sql"] for q in queries.captured_queries]
    assert len(sql) == 1, sql
    assert "FOR UPDATE" not in sql[0]
    case.refresh_from_db()
    assert case.rung == Rung.NONE


def test_a_case_that_must_climb_is_evaluated_under_its_lock():
    case = make_case(rung=Rung.NONE, reports=1)  # the default policy: a first notice after one report
    with CaptureQueriesContext(connection) as queries:
        acted = ladder.evaluate_cases([case.pk])
    case.refresh_from_db()
    assert acted == 1
    assert case.rung == Rung.FIRST_NOTICE
    assert any("FOR UPDATE" in q["sql"] for q in queries.captured_queries)
    assert case.notices.filter(kind=NoticeKind.FIRST_NOTICE).count() == 1


@pytest.mark.parametrize("few", [ladder.FEW_CASES, 0])
def test_a_few_cases_are_evaluated_alike_one_statement_each_or_in_bulk(few, monkeypatch):
    """A worker that took two or three waiting messages evaluates their cases with the prepared
    statement, one each, instead of the bulk pass's queries; the outcome is the bulk pass's."""
    monkeypatch.setattr(ladder, "FEW_CASES", few)
    climbing = make_case(rung=Rung.NONE, reports=1)  # the default policy: a first notice after one report
    quiet = make_case(rung=Rung.WARNING, reports=0)  # a warning, and nothing since
    waiting = make_case(rung=Rung.NONE, reports=0)  # no report counts yet
    with CaptureQueriesContext(connection) as queries:
        acted = ladder.evaluate_cases([climbing.pk, quiet.pk, waiting.pk])
    assert acted == 1
    for case in (climbing, quiet, waiting):
        case.refresh_from_db()
    assert climbing.rung == Rung.FIRST_NOTICE and climbing.notices.filter(kind=NoticeKind.FIRST_NOTICE).count() == 1
    assert quiet.rung == Rung.WARNING and not quiet.notices.exists()
    assert waiting.rung == Rung.NONE and waiting.escalation_due_at is None
    bulk_read = [q["sql"] for q in queries.captured_queries if '"cases_case"."id" IN (' in q["sql"]]
    assert bool(bulk_read) == (few == 0), bulk_read
