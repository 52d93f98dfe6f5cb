"""A real Celery worker (subprocess) on the real broker calls the webhook, and retries a 500 through
Celery's retry machinery (a countdown on the broker, not the eager runner's loop)."""

from __future__ import annotations

import pytest
from django.db import transaction

from cases.models import CaseEvent, ProvisioningCall, ProvisioningStatus, Rung
from cases.services import provisioning
from tests.cases.ladder_builders import make_case
from tests.fixtures_services import wait_until
from tests.provisioning.webhook_server import SECRET, start_webhook_server

pytestmark = pytest.mark.integration


@pytest.fixture
def endpoint(settings):
    server, httpd = start_webhook_server([500, 200])
    settings.PROVISIONING_WEBHOOK_URL = server.url
    settings.PROVISIONING_WEBHOOK_SECRET = SECRET
    yield server
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def celery_worker_env(endpoint) -> dict[str, str]:
    return {
        "PROVISIONING_WEBHOOK_URL": endpoint.url,
        "PROVISIONING_WEBHOOK_SECRET": SECRET,
        "PROVISIONING_WEBHOOK_TIMEOUT": "5",
        "PROVISIONING_RETRY_BACKOFF_SECONDS": "1",
    }


def test_the_worker_retries_a_500_then_records_the_call_done(endpoint, celery_worker_process, monkeypatch):
    # In this process tasks run eagerly; here the queued task goes through Redis to the worker, after commit.
    monkeypatch.setattr(
        provisioning,
        "enqueue_on_commit",
        lambda name, *args: transaction.on_commit(lambda: celery_worker_process.send(name, *args)),
    )
    case = make_case(rung=Rung.SUSPENSION)
    call = provisioning.request_provisioning(case, "suspend", actor=None)

    def finished() -> ProvisioningCall | None:
        row = ProvisioningCall.objects.get(pk=call.pk)
        return row if row.status != ProvisioningStatus.PENDING else None

    row = wait_until(finished, timeout=30, what="the worker to finish the call")
    first, second = endpoint.wait_for(2)
    assert (row.status, row.attempts, row.response_status) == ("done", 2, 200)
    assert first.signed_with(SECRET) and second.signed_with(SECRET)
    assert first.body == second.body
    # Celery's countdown, not an immediate loop: the second request came about a second later.
    assert 0.9 <= second.at - first.at < 10
    events = CaseEvent.objects.filter(case=case, kind="provisioning").values_list("new", flat=True)
    assert list(events) == ["requested", "retrying", "done"]
    # Both attempts were messages the worker took from the broker: the retry was re-published.
    assert celery_worker_process.log_text().count("Task cases.tasks_provisioning.call_provisioning_task[") == 2
