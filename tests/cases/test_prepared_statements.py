"""The statements filing and the ladder run for every message are prepared once per connection
(services.common.execute_prepared): PREPARE the first time, EXECUTE after, a failed execution
leaves it usable, and plain execution past the per-connection cap."""

from __future__ import annotations

import hashlib
import itertools
import re

import pytest
from django.db import DataError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cases.models import Case, CaseStatus, Rung
from cases.services import common, ladder
from customers.models import Customer
from tests.cases.ladder_builders import make_case

pytestmark = [pytest.mark.django_db, pytest.mark.requires_postgres]


def _run(sql: str, params: list) -> tuple[list, list[str]]:
    with CaptureQueriesContext(connection) as queries, connection.cursor() as cursor:
        common.execute_prepared(cursor, sql, params, head="SELECT %s::int; ", head_params=[1])
        rows = cursor.fetchall()
    return rows, [q["sql"] for q in queries.captured_queries]


def test_prepared_once_then_executed():
    sql = "SELECT x * 2 FROM unnest(%s::int[]) AS x WHERE x > %s ORDER BY x"
    first, sent_first = _run(sql, [[1, 2, 3], 1])
    again, sent_again = _run(sql, [[5, 6], 5])
    assert first == [(4,), (6,)] and again == [(12,)]
    assert sent_first[0].startswith("PREPARE") and "EXECUTE" in sent_first[1]
    assert len(sent_again) == 1 and "EXECUTE" in sent_again[0]


def test_a_failing_execution_leaves_the_statement_usable():
    sql = "SELECT 10 / %s::int"
    with pytest.raises(DataError), transaction.atomic():
        _run(sql, [0])
    rows, sent = _run(sql, [5])
    assert rows == [(2,)] and len(sent) == 1 and "EXECUTE" in sent[0]


def test_past_the_cap_statements_run_unprepared(monkeypatch):
    monkeypatch.setattr(common, "PREPARED_PER_CONNECTION", 0)
    rows, sent = _run("SELECT %s::int + 40", [2])
    assert rows == [(42,)]
    assert "PREPARE" not in sent[0] and "EXECUTE" not in sent[0]


def test_the_ladders_facts_read_prepared_match_the_first_read():
    case = make_case(rung=Rung.WARNING, reports=3, unconfirmed=1)
    now = timezone.now()
    _, first = ladder._case_with_facts_postgresql(case.pk, now, lock=False)
    _, again = ladder._case_with_facts_postgresql(case.pk, now, lock=False)
    assert first == again and len(first.reports) == 4


def _plan_mode(cursor) -> str:
    cursor.execute("SHOW plan_cache_mode")
    return cursor.fetchone()[0]


def test_a_generic_plan_is_asked_for_the_transaction_and_given_back():
    sql = "SELECT count(*) FROM cases_case WHERE id = ANY(%s::bigint[])"
    with transaction.atomic(), connection.cursor() as cursor:
        common.execute_prepared(cursor, sql, [[1, 2]], generic=True)
        assert cursor.fetchone() == (0,) and _plan_mode(cursor) == "force_generic_plan"
        name = "abusedesk_" + hashlib.sha1(sql.encode()).hexdigest()[:20]
        assert name in common._prepared[connection.connection]
        cursor.execute(f"EXPLAIN EXECUTE {name} ('{{1,2}}')")
        assert "$1" in " ".join(row[0] for row in cursor.fetchall())  # the plan kept its parameter
        # A statement to be planned for its own parameters (a feed's chunk) puts the default back.
        common.execute_prepared(cursor, sql, [[3]], generic=False)
        assert cursor.fetchone() == (0,) and _plan_mode(cursor) == "auto"


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def test_the_ladders_facts_read_takes_only_the_cases_customer():
    """The facts read is prepared, and its generic plan must fetch the case's customer by key. As a
    plain join, with statistics from when the cases belonged to a desk's first customers (they lag
    behind the table until the next ANALYZE), it was merge-joined with the customer table read in
    key order up to the case's customer: a read as long as the customer table."""
    customers = Customer.objects.bulk_create(
        [Customer(account=f"PLAN{n:04d}", name=f"Customer {n}", kind="residential") for n in range(3000)]
    )
    now = timezone.now()
    Case.objects.bulk_create(
        [
            Case(customer=c, category="spam", status=CaseStatus.OPEN, first_report_at=now, last_report_at=now)
            for c in customers[:20]
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_customer; ANALYZE cases_case")
    case = Case.objects.create(
        customer=customers[2500], category="spam", status=CaseStatus.OPEN, first_report_at=now, last_report_at=now
    )
    sql, params = ladder._facts_statement(case.pk, now)
    numbers = itertools.count(1)
    with connection.cursor() as cursor:
        cursor.execute("PREPARE facts_plan AS " + re.sub(r"%s", lambda _: f"${next(numbers)}", sql))
        try:
            cursor.execute("SET plan_cache_mode = force_generic_plan")
            cursor.execute(
                "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE facts_plan (" + ", ".join(["%s"] * len(params)) + ")", params
            )
            plan = cursor.fetchone()[0][0]["Plan"]
        finally:
            cursor.execute("RESET plan_cache_mode; DEALLOCATE facts_plan")
    customer_reads = [n for n in _nodes(plan) if n.get("Relation Name") == "customers_customer"]
    assert customer_reads and all(n["Actual Rows"] <= 1 and n["Actual Loops"] <= 1 for n in customer_reads)
