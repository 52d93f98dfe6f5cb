"""The duplicate check's advisory locks are taken per bucket of keys, so a big chunk holds a bounded
number of locks (PostgreSQL's lock table is shared and small) and still files every event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from cases.intake.base import ParsedEvent
from cases.models import Report
from cases.services import filing
from tests.cases.helpers import customer_with

pytestmark = [pytest.mark.django_db, pytest.mark.requires_postgres]


def test_a_big_chunk_holds_at_most_one_lock_per_bucket(settings):
    settings.ENRICHMENT_ENABLED = False
    customer_with("10.20.0.0/16", "BIG-1")
    at = datetime(2026, 11, 20, tzinfo=UTC)
    events = [
        ParsedEvent(
            ip=f"10.20.{n // 250}.{n % 250 + 1}",
            occurred_at=at + timedelta(seconds=n),
            category="scanning",
            format="csv",
        )
        for n in range(3000)
    ]
    with transaction.atomic():
        summary = filing.file_chunk([(e, None) for e in events])
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
            (held,) = cursor.fetchone()
    assert summary.created == 3000 and Report.objects.count() == 3000
    assert 0 < held <= filing.DEDUPE_LOCK_BUCKETS
