"""A real Celery worker (subprocess) on the real broker takes a task queued from this process."""

from __future__ import annotations

import pytest
from django.utils import timezone

from cases.models import Report
from tests import fixtures_services
from tests.fixtures_services import wait_until

# Until tests/conftest.py loads tests.fixtures_services as a plugin (harmless after).
dns_server = fixtures_services.dns_server
redis_url = fixtures_services.redis_url
celery_worker_env = fixtures_services.celery_worker_env
celery_worker_process = fixtures_services.celery_worker_process

pytestmark = pytest.mark.integration


def test_the_worker_enriches_a_report_queued_through_redis(dns_server, celery_worker_process):
    dns_server.add_ptr("198.51.100.7", "host-7.dsl.isp.example")
    dns_server.list_ip("198.51.100.7", "bl.spamcop.net", "127.0.0.2", reason="Listed by SpamCop")
    report = Report.objects.create(
        ip="198.51.100.7", occurred_at=timezone.now(), category="spam", dedupe_key="worker-test"
    )
    celery_worker_process.send("cases.tasks_intake_io.enrich_report_task", report.pk)

    def enriched() -> Report | None:
        row = Report.objects.get(pk=report.pk)
        return row if row.enriched_at else None

    row = wait_until(enriched, timeout=30, what="the worker to enrich the report")
    assert row.ptr == "host-7.dsl.isp.example"
    assert row.dnsbl == {"zen.spamhaus.org": [], "bl.spamcop.net": ["127.0.0.2", "Listed by SpamCop"]}
    assert row.enrichment_error == ""
    # The look-ups came from the worker, not from this process.
    assert dns_server.query_count("7.100.51.198.in-addr.arpa", "PTR") == 1
    assert "Task cases.tasks_intake_io.enrich_report_task[" in celery_worker_process.log_text()
