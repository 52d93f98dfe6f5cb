"""Duplicates under contention: two complaints about the same event, filed at the same moment on
two real database connections, are one report and one duplicate (the duplicate check holds a lock
per event key until its transaction commits)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from django.db import connection, transaction

from cases.models import Case, Report
from cases.services import filing
from tests.cases.helpers import customer_with, event

pytestmark = pytest.mark.requires_postgres

T0 = datetime(2026, 11, 20, 14, 2, tzinfo=UTC)


def file_at_once(monkeypatch, events_for: list[list]) -> list:
    """File each list of events in its own thread (its own connection), all starting together; the
    duplicate look-up is slowed down so that, without a lock, each would miss the other's report."""
    real = filing._known_originals

    def slow_lookup(*args, **kwargs):
        found = real(*args, **kwargs)
        time.sleep(0.5)
        return found

    monkeypatch.setattr(filing, "_known_originals", slow_lookup)
    barrier = threading.Barrier(len(events_for))
    results: list = [None] * len(events_for)
    errors: list = []

    def run(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            with transaction.atomic():
                results[n] = filing.file_chunk([(e, None) for e in events_for[n]])
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(events_for))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def test_two_complaints_about_one_event_racing_on_two_connections_are_filed_once(transactional_db, monkeypatch):
    customer_with("198.51.100.0/24", "R-1")
    results = file_at_once(monkeypatch, [[event("198.51.100.7", T0)], [event("198.51.100.7", T0)]])
    assert sorted((r.created, r.duplicates) for r in results) == [(0, 1), (1, 0)]
    report = Report.objects.get()
    assert report.duplicate_count == 1
    assert Case.objects.get().report_count == 1


def test_racing_chunks_open_one_case_per_customer_and_category(transactional_db, monkeypatch):
    customer_with("198.51.100.0/24", "R-1")
    results = file_at_once(
        monkeypatch,
        [[event("198.51.100.1", T0, reporter="a@x.example")], [event("198.51.100.2", T0, reporter="b@y.example")]],
    )
    assert sum(r.created for r in results) == 2
    assert sum(r.cases_opened for r in results) == 1
    case = Case.objects.get()
    assert case.report_count == 2
    assert set(Report.objects.values_list("case_id", flat=True)) == {case.pk}
