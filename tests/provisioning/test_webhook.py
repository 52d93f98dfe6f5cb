"""The provisioning webhook against a real HTTP server on 127.0.0.1, with the tests' eager task runner:
what is sent and how it is signed, which answers are tried again, what is recorded on the case."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone

from cases.models import ActorKind, CaseEvent, ProvisioningCall, ProvisioningStatus, Report, Rung
from cases.services import provisioning
from cases.services.common import TransitionError
from cases.services.provisioning import call_provisioning, mark_done_by_hand, request_provisioning
from cases.tasks_provisioning import sweep_provisioning_task
from tests.cases.ladder_builders import make_case
from tests.customers.factories import make_allocation
from tests.fixtures_services import free_port
from tests.provisioning.webhook_server import SECRET

pytestmark = pytest.mark.django_db


@pytest.fixture
def case():
    case = make_case(rung=Rung.SUSPENSION, reports=2)
    Report.objects.create(
        case=case,
        customer=case.customer,
        ip="2001:db8:42::1",
        occurred_at=timezone.now() - timedelta(hours=1),
        category="spam",
        dedupe_key="v6",
    )
    customer = case.customer
    make_allocation("198.51.100.0/24", customer=customer)
    make_allocation("2001:db8:42::/48", customer=customer)
    make_allocation("192.0.2.8/29", customer=customer, valid_to=timezone.now() - timedelta(days=1))  # ended
    return case


def _request(capture, case, action="suspend", **kwargs) -> ProvisioningCall:
    """As the ladder does: inside a transaction, the task queued and (eagerly) run after commit."""
    with capture(execute=True):
        call = request_provisioning(case, action, actor=None, **kwargs)
    call.refresh_from_db()
    return call


def _events(case) -> list[tuple[str, str, str]]:
    return list(CaseEvent.objects.filter(case=case, kind="provisioning").values_list("old", "new", "note"))


def test_the_signature_verifies_with_the_shared_secret(webhook, case, django_capture_on_commit_callbacks):
    _request(django_capture_on_commit_callbacks, case)
    (got,) = webhook.wait_for(1)
    assert got.signed_with(SECRET)
    assert not got.signed_with("another-secret")
    timestamp = got.headers["X-Abusedesk-Timestamp"]
    assert abs(int(timestamp) - timezone.now().timestamp()) < 30
    # The signature covers the timestamp: replayed with another one, it no longer verifies.
    forged = got.headers | {"X-Abusedesk-Timestamp": str(int(timestamp) + 3600)}
    assert not type(got)(got.path, forged, got.body, got.at).signed_with(SECRET)
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + got.body, hashlib.sha256).hexdigest()
    assert got.headers["X-Abusedesk-Signature"] == f"sha256={expected}"
    assert got.headers["Content-Type"] == "application/json"
    assert got.path == "/hooks/abusedesk"


def test_the_body_names_the_customer_action_case_and_addresses(webhook, case, django_capture_on_commit_callbacks):
    call = _request(django_capture_on_commit_callbacks, case, "restrict", detail="port25")
    (got,) = webhook.wait_for(1)
    body = got.json
    assert body == call.payload
    customer = case.customer
    assert body["customer"] == {"account": customer.account, "name": customer.name, "kind": "residential"}
    assert (body["action"], body["detail"], body["key"]) == ("restrict", "port25", call.key)
    assert body["case"] == {"id": case.pk, "reference": case.reference, "category": "spam", "rung": "suspension"}
    assert body["addresses"] == {
        "reported": ["198.51.100.7", "2001:db8:42::1"],
        "reported_total": 2,
        "allocations": ["198.51.100.0/24", "2001:db8:42::/48"],  # current ones only
    }
    requested = datetime.fromisoformat(body["requested_at"])
    assert body["requested_at"].endswith("Z") and requested.tzinfo is not None
    assert abs(requested - call.created_at) < timedelta(seconds=1)


def test_addresses_given_by_the_caller_replace_the_reported_ones(webhook, case, django_capture_on_commit_callbacks):
    call = _request(
        django_capture_on_commit_callbacks, case, addresses=["::ffff:203.0.113.9", "2001:DB8::1", "203.0.113.9"]
    )
    assert call.payload["addresses"]["reported"] == ["203.0.113.9", "2001:db8::1"]


def test_a_500_then_a_200_is_retried_then_done(webhook, case, django_capture_on_commit_callbacks):
    webhook.script = [500, 200]
    call = _request(django_capture_on_commit_callbacks, case)
    first, second = webhook.wait_for(2)
    assert first.body == second.body  # the same key and payload, signed afresh
    assert first.signed_with(SECRET) and second.signed_with(SECRET)
    assert (call.status, call.attempts, call.response_status, call.last_error) == ("done", 2, 200, "")
    assert call.done_at is not None and call.claimed_at is None
    assert _events(case) == [
        ("suspend", "requested", "sent to provisioning: suspend"),
        ("suspend", "retrying", 'suspend: attempt 1 of 8: HTTP 500: {"ok": false}'),
        ("suspend", "done", "suspend: HTTP 200"),
    ]


def test_a_400_fails_at_once(webhook, case, django_capture_on_commit_callbacks):
    webhook.script = [400, 200]
    call = _request(django_capture_on_commit_callbacks, case, "terminate")
    assert len(webhook.received) == 1
    assert (call.status, call.attempts, call.response_status) == ("failed", 1, 400)
    assert call.last_error.startswith("HTTP 400")
    assert _events(case)[-1] == ("terminate", "failed", 'terminate: HTTP 400: {"ok": false}')


@pytest.mark.parametrize(
    ("status", "retried"),
    [(408, True), (429, True), (502, True), (503, True), (401, False), (404, False), (422, False), (301, False)],
)
def test_timeouts_rate_limits_and_server_errors_are_retried_other_refusals_are_not(
    webhook, case, django_capture_on_commit_callbacks, status, retried
):
    webhook.script = [status, 200]
    call = _request(django_capture_on_commit_callbacks, case)
    assert len(webhook.received) == (2 if retried else 1)
    assert call.status == ("done" if retried else "failed")


def test_no_answer_in_time_is_retried(webhook, case, settings, django_capture_on_commit_callbacks):
    settings.PROVISIONING_WEBHOOK_TIMEOUT = 0.3
    webhook.script = [("sleep", 1.0, 200), 200]
    call = _request(django_capture_on_commit_callbacks, case)
    assert len(webhook.wait_for(2)) == 2
    assert (call.status, call.attempts) == ("done", 2)
    retrying = [note for _, new, note in _events(case) if new == "retrying"]
    assert retrying == ["suspend: attempt 1 of 8: no answer within 0.3 s"]


def test_a_refused_connection_is_retried_then_failed_after_the_last_attempt(
    case, settings, django_capture_on_commit_callbacks
):
    settings.PROVISIONING_WEBHOOK_URL = f"http://127.0.0.1:{free_port()}/nobody-listens"
    settings.PROVISIONING_MAX_ATTEMPTS = 3
    call = _request(django_capture_on_commit_callbacks, case)
    assert (call.status, call.attempts, call.response_status) == ("failed", 3, None)
    assert "connection failed" in call.last_error
    events = _events(case)
    assert [new for _, new, _ in events] == ["requested", "retrying", "retrying", "failed"]
    assert events[-1][2].startswith("suspend: gave up after 3 attempts: connection failed")


def test_an_unusable_url_fails_at_once(case, settings, django_capture_on_commit_callbacks):
    settings.PROVISIONING_WEBHOOK_URL = "provisioning.isp.example/hook"  # no scheme
    call = _request(django_capture_on_commit_callbacks, case)
    assert (call.status, call.attempts) == ("failed", 1)
    assert call.last_error.startswith("bad webhook URL")


def test_without_a_url_the_action_is_recorded_to_be_done_by_hand(case, settings, django_capture_on_commit_callbacks):
    settings.PROVISIONING_WEBHOOK_URL = ""
    with django_capture_on_commit_callbacks() as queued:
        call = request_provisioning(case, "restrict", actor=None, detail="walled_garden")
    assert queued == []  # nothing for a worker to do
    assert (call.status, call.attempts) == (ProvisioningStatus.MANUAL, 0)
    assert call.payload["action"] == "restrict"  # kept, for whoever does it by hand
    assert _events(case) == [("restrict", "manual", "to be done by hand: restrict (walled_garden)")]
    assert call_provisioning(call.pk) == provisioning.SKIPPED


def test_staff_record_a_manual_action_as_done(case, settings, noc_user, norole_user):
    settings.PROVISIONING_WEBHOOK_URL = ""
    call = request_provisioning(case, "suspend", actor=None)
    for nobody in (norole_user, None, ActorKind.CUSTOMER):
        with pytest.raises(PermissionDenied):
            mark_done_by_hand(call, actor=nobody, note="done")
    with pytest.raises(TransitionError):
        mark_done_by_hand(call, actor=noc_user, note="  ")
    mark_done_by_hand(call, actor=noc_user, note="port shut on bras-3")
    call.refresh_from_db()
    assert call.status == ProvisioningStatus.DONE and call.done_at is not None
    done = CaseEvent.objects.filter(case=case, kind="provisioning", new="done").get()
    assert (done.actor, done.note) == (noc_user, "done by hand: suspend: port shut on bras-3")
    with pytest.raises(TransitionError):
        mark_done_by_hand(call, actor=noc_user, note="again")


def test_a_pending_call_cannot_be_marked_done_by_hand(webhook, case, noc_user):
    call = request_provisioning(case, "suspend", actor=None)  # queued, not yet run
    with pytest.raises(TransitionError):
        mark_done_by_hand(call, actor=noc_user, note="did it")
    assert ProvisioningCall.objects.get(pk=call.pk).status == ProvisioningStatus.PENDING


def test_a_call_is_written_and_sent_once_per_key(webhook, case, django_capture_on_commit_callbacks):
    first = _request(django_capture_on_commit_callbacks, case, key="approval:7:suspend")
    again = _request(django_capture_on_commit_callbacks, case, key="approval:7:suspend")
    assert again.pk == first.pk and first.key == "approval:7:suspend"
    assert ProvisioningCall.objects.count() == 1
    assert [new for _, new, _ in _events(case)] == ["requested", "done"]
    assert len(webhook.received) == 1


def test_a_repeated_step_is_the_same_call_and_a_later_one_a_new_call(webhook, case, django_capture_on_commit_callbacks):
    restrict = _request(django_capture_on_commit_callbacks, case, "restrict", detail="port25")
    retried = _request(django_capture_on_commit_callbacks, case, "restrict", detail="port25")
    assert retried.pk == restrict.pk and restrict.key == f"case:{case.pk}:restrict:port25:1"
    lift = _request(django_capture_on_commit_callbacks, case, "unrestrict", detail="port25")
    again = _request(django_capture_on_commit_callbacks, case, "restrict", detail="port25")
    assert lift.key == f"case:{case.pk}:unrestrict:port25:1"
    assert again.key == f"case:{case.pk}:restrict:port25:2"
    assert [body.json["key"] for body in webhook.received] == [restrict.key, lift.key, again.key]


def test_a_rolled_back_escalation_writes_and_sends_nothing(webhook, case, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        request_provisioning(case, "suspend", actor=None)
        raise RuntimeError("the ladder's transaction fails after the request")
    assert not ProvisioningCall.objects.exists()
    assert not _events(case)
    assert webhook.received == []


def test_a_call_claimed_by_another_worker_is_left_alone_until_its_claim_expires(webhook, case):
    call = request_provisioning(case, "suspend", actor=None)
    ProvisioningCall.objects.filter(pk=call.pk).update(claimed_at=timezone.now(), attempts=1)
    assert call_provisioning(call.pk) == provisioning.SKIPPED
    assert webhook.received == []
    # The task's own retry holds the claim: it names the attempt it made.
    assert call_provisioning(call.pk, attempt=1) == provisioning.DONE
    assert len(webhook.received) == 1
    assert call_provisioning(call.pk, attempt=2) == provisioning.SKIPPED  # done: never sent twice

    other = request_provisioning(case, "terminate", actor=None)
    stale = timezone.now() - provisioning.claim_timeout() - timedelta(seconds=1)
    ProvisioningCall.objects.filter(pk=other.pk).update(claimed_at=stale, attempts=1)
    assert call_provisioning(other.pk) == provisioning.DONE  # the worker that held it is gone
    assert ProvisioningCall.objects.get(pk=other.pk).attempts == 2


def test_the_sweeper_sends_calls_whose_task_was_lost(webhook, case, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):  # the broker was down: the task never left
        lost = request_provisioning(case, "suspend", actor=None)
    waiting = request_provisioning(case, "restrict", actor=None, detail="port25")
    ProvisioningCall.objects.filter(pk=waiting.pk).update(claimed_at=timezone.now(), attempts=1)  # in its backoff
    assert provisioning.lost_calls() == []  # just queued: its task may still come

    with time_machine.travel(timezone.now() + timedelta(minutes=3)):
        assert provisioning.lost_calls() == [lost.pk]
        assert sweep_provisioning_task() == 1
    assert [got.json["key"] for got in webhook.received] == [lost.key]
    assert ProvisioningCall.objects.get(pk=lost.pk).status == ProvisioningStatus.DONE

    with time_machine.travel(timezone.now() + provisioning.claim_timeout() + timedelta(minutes=1)):
        assert provisioning.lost_calls() == [waiting.pk]  # its retry never came: the claim expired
        assert sweep_provisioning_task() == 1
    assert ProvisioningCall.objects.get(pk=waiting.pk).status == ProvisioningStatus.DONE


@pytest.mark.django_db(transaction=True)
def test_the_claim_is_committed_before_the_request_which_runs_outside_any_transaction(webhook, case, monkeypatch):
    seen = {}

    def look(_received) -> None:
        # Another connection, in the server's thread: it sees only what was committed.
        from django.db import connection as thread_connection

        try:
            row = ProvisioningCall.objects.get(key__startswith=f"case:{case.pk}:")
            seen["row"] = (row.status, row.attempts, row.claimed_at is not None)
        finally:
            thread_connection.close()

    webhook.on_request = look
    real_post = provisioning.post

    def checked_post(*args, **kwargs):
        seen["in_transaction"] = connection.in_atomic_block
        return real_post(*args, **kwargs)

    monkeypatch.setattr(provisioning, "post", checked_post)
    request_provisioning(case, "suspend", actor=None)  # autocommit: the eager task runs on commit
    assert seen == {"row": ("pending", 1, True), "in_transaction": False}
    assert ProvisioningCall.objects.get().status == ProvisioningStatus.DONE


def test_timestamps_and_keys_are_fixed_by_the_request_not_the_send(webhook, case, django_capture_on_commit_callbacks):
    at = datetime(2026, 11, 3, 14, 2, 9, tzinfo=UTC)
    with time_machine.travel(at, tick=False), django_capture_on_commit_callbacks(execute=False):
        call = request_provisioning(case, "reinstate", actor=None)
    assert call.payload["requested_at"] == "2026-11-03T14:02:09Z"
    call_provisioning(call.pk)
    assert webhook.received[0].json["requested_at"] == "2026-11-03T14:02:09Z"
