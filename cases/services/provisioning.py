"""The provisioning webhook: restrictions, suspensions, reinstatements and terminations reach the
network through it.

- request_provisioning() is called by the ladder inside its transaction. It writes the outbox row
  (ProvisioningCall) and its CaseEvent, and queues the call after commit. With no URL configured,
  the row is written as "manual": the action is to be done by hand, and staff record it with
  mark_done_by_hand().
- call_provisioning() runs in a worker. It claims the row with one conditional UPDATE, POSTs the
  signed body outside any transaction, and records the answer on the row and on the case.
- lost_calls() names the pending calls whose task was lost (broker down, worker killed), for the beat.

What the receiver gets: a POST of the JSON payload (build_payload) with
    X-Abusedesk-Timestamp: <Unix seconds>
    X-Abusedesk-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed with the shared secret>
It should refuse a stale timestamp, and treat a repeated `key` as the request it already has: a
call whose answer never came back (a timeout) is sent again, with the same key and payload.

Every outcome is a CaseEvent of kind "provisioning": `old` is the action (machine key), `new` is
what happened: requested, manual, retrying, done or failed; the note says it in words.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.client import HTTPException

from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from abusedesk.roles import NOC, has_role
from cases.models import (
    Case,
    CaseEvent,
    ProvisioningAction,
    ProvisioningCall,
    ProvisioningStatus,
    Report,
    rung_key,
)
from cases.queue import enqueue_on_commit
from cases.services.common import TransitionError, actor_kwargs, storable
from customers.models import Allocation
from customers.resolver import normalize_ip

TASK = "cases.tasks_provisioning.call_provisioning_task"

# What call_provisioning() reports to its task.
DONE = "done"
FAILED = "failed"
RETRY = "retry"
MANUAL = "manual"
SKIPPED = "skipped"  # not claimed: done already, or another worker holds it

# A case with thousands of reports names its addresses in the payload up to this many.
MAX_REPORTED_ADDRESSES = 1000
# A call queued this long ago and never claimed lost its task (the broker was down).
UNCLAIMED_GRACE = timedelta(minutes=2)
# Statuses that, besides 2xx, are worth asking again: timeouts, rate limits and server errors.
RETRY_STATUSES = {408, 425, 429}


def max_attempts() -> int:
    return max(1, int(getattr(settings, "PROVISIONING_MAX_ATTEMPTS", 8)))


def retry_delay(attempts: int) -> float:
    """Seconds before attempt attempts + 1: exponential from the first delay, capped, with 10% jitter
    so that calls failed together by one outage do not come back together."""
    base = float(getattr(settings, "PROVISIONING_RETRY_BACKOFF_SECONDS", 30))
    cap = float(getattr(settings, "PROVISIONING_RETRY_BACKOFF_MAX_SECONDS", 900))
    delay = get_exponential_backoff_interval(base, max(0, attempts - 1), cap, full_jitter=False)
    return delay * random.uniform(1.0, 1.1)


def claim_timeout() -> timedelta:
    """How long a claim holds. It covers the request and the wait before the task's own retry
    (which keeps the claim through the backoff), so only a lost task's claim expires."""
    cap = float(getattr(settings, "PROVISIONING_RETRY_BACKOFF_MAX_SECONDS", 900))
    return timedelta(seconds=cap * 1.1 + 2 * settings.PROVISIONING_WEBHOOK_TIMEOUT + 60)


def _what(action: str, detail: str) -> str:
    """'suspend', 'restrict (port25)': the action in words, for notes."""
    words = str(ProvisioningAction(action).label).lower()
    return f"{words} ({detail})" if detail else words


def _event(call: ProvisioningCall, new: str, note: str, *, actor=None, at: datetime | None = None) -> CaseEvent:
    return CaseEvent.objects.create(
        case_id=call.case_id,
        kind="provisioning",
        old=call.action,
        new=new,
        note=storable(note)[:10000],
        at=at or timezone.now(),
        **actor_kwargs(actor),
    )


# --- requesting: inside the ladder's transaction ---------------------------------------------------


def _address_key(text: str) -> tuple[int, int]:
    addr = ipaddress.ip_address(text)
    return addr.version, int(addr)


def build_payload(
    case: Case, action: str, *, detail: str, key: str, at: datetime, addresses: list[str] | None = None
) -> dict:
    """The JSON body: who, what, which case, which addresses, when, and the idempotency key."""
    customer = case.customer
    if addresses is None:
        # Report.ip is validated, canonical text (GenericIPAddressField, IPv4-mapped unpacked).
        reported = list(Report.objects.filter(case=case).order_by().values_list("ip", flat=True).distinct())
    else:
        reported = list({str(normalize_ip(a)) for a in addresses})
    reported.sort(key=_address_key)
    # The customer's allocations now: what a walled garden or a suspension applies to.
    networks = sorted(
        set(Allocation.objects.filter(customer_id=customer.pk).current().values_list("network", flat=True)),
        key=lambda n: (ipaddress.ip_network(n).version, ipaddress.ip_network(n)),
    )
    return {
        "key": key,
        "action": str(action),
        "detail": detail,
        "requested_at": at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "customer": {"account": customer.account, "name": customer.name, "kind": customer.kind},
        "case": {"id": case.pk, "reference": case.reference, "category": case.category, "rung": rung_key(case.rung)},
        "addresses": {
            "reported": reported[:MAX_REPORTED_ADDRESSES],
            "reported_total": len(reported),
            "allocations": networks,
        },
    }


def _default_key(case: Case, action: str, detail: str) -> tuple[str, ProvisioningCall | None]:
    """The key for this request, or the call it repeats.

    The case's latest call being this same action is the same step asked again (a retried
    escalation), not a new one: a suspension is only asked again after a reinstatement, a
    restriction after it was lifted. Otherwise the key counts this action's calls on the case.
    """
    calls = ProvisioningCall.objects.filter(case=case)
    latest = calls.order_by("-created_at", "-pk").first()
    if latest is not None and latest.action == action and latest.detail == detail:
        return latest.key, latest
    seq = calls.filter(action=action, detail=detail).count() + 1
    return f"case:{case.pk}:{action}{':' + detail if detail else ''}:{seq}", None


@transaction.atomic
def request_provisioning(
    case: Case,
    action: str,
    *,
    actor,
    detail: str = "",
    addresses: list[str] | None = None,
    key: str | None = None,
) -> ProvisioningCall:
    """Write the call for `action` on the case's customer, in the caller's transaction.

    Idempotent: a call with the same key (given, or derived from the case, the action and a per-case
    sequence) is returned as it is, and nothing is written twice. With PROVISIONING_WEBHOOK_URL
    empty, the call is "manual": to be done by hand.
    """
    action = ProvisioningAction(action)
    detail = detail or ""
    if key is None:
        key, existing = _default_key(case, action, detail)
    else:
        existing = ProvisioningCall.objects.filter(key=key).first()
    if existing is not None:
        return existing
    now = timezone.now()
    url = settings.PROVISIONING_WEBHOOK_URL
    payload = build_payload(case, action, detail=detail, key=key, at=now, addresses=addresses)
    try:
        # A savepoint: a twin written concurrently under the same key must not spoil the caller's transaction.
        with transaction.atomic():
            call = ProvisioningCall.objects.create(
                case=case,
                action=action,
                detail=detail,
                key=key,
                payload=payload,
                status=ProvisioningStatus.PENDING if url else ProvisioningStatus.MANUAL,
                created_at=now,
            )
    except IntegrityError:
        return ProvisioningCall.objects.get(key=key)
    if url:
        _event(call, "requested", f"sent to provisioning: {_what(action, detail)}", actor=actor, at=now)
        enqueue_on_commit(TASK, call.pk)
    else:
        _event(call, "manual", f"to be done by hand: {_what(action, detail)}", actor=actor, at=now)
    return call


@transaction.atomic
def mark_done_by_hand(call: ProvisioningCall, *, actor, note: str) -> ProvisioningCall:
    """Staff record that they did by hand what the webhook was not there, or failed, to do."""
    if not getattr(actor, "is_authenticated", False) or not has_role(actor, NOC):
        raise PermissionDenied("Only NOC staff can record a provisioning action as done.")
    note = (note or "").strip()
    if not note:
        raise TransitionError("Say what was done.")
    call = ProvisioningCall.objects.select_for_update().get(pk=call.pk)
    if call.status not in (ProvisioningStatus.MANUAL, ProvisioningStatus.FAILED):
        raise TransitionError(
            "Only an action to be done by hand, or one the webhook failed to do, can be marked done by hand."
        )
    now = timezone.now()
    call.status = ProvisioningStatus.DONE
    call.done_at = now
    call.claimed_at = None
    call.save(update_fields=["status", "done_at", "claimed_at"])
    _event(call, "done", f"done by hand: {_what(call.action, call.detail)}: {note}", actor=actor, at=now)
    return call


# --- calling: in a worker, outside any transaction ----------------------------------------------


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Abusedesk-Signature value for body sent at timestamp."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def body_bytes(payload: dict) -> bytes:
    # Compact and sorted: the bytes signed are exactly the bytes sent, the same on every attempt.
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would follow a 301-303 by turning the signed POST into a GET without a body.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


# No proxy from the environment: the signed payload goes straight to the configured endpoint.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


@dataclass(frozen=True)
class Answer:
    status: int | None  # the HTTP status, None when no answer came
    error: str  # empty on 2xx
    retry: bool  # worth asking again


def post(url: str, payload: dict, *, secret: str, timeout: float) -> Answer:
    body = body_bytes(payload)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "abusedesk-provisioning/1",
        "X-Abusedesk-Timestamp": timestamp,
        "X-Abusedesk-Signature": signature(secret, timestamp, body),
        "Idempotency-Key": payload.get("key", ""),
    }
    try:
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)
        with _opener.open(request, timeout=timeout) as response:
            return Answer(response.status, "", False)
    except urllib.error.HTTPError as exc:
        code = exc.code
        try:
            text = exc.read(300).decode("utf-8", "replace").strip()
        except (OSError, HTTPException):
            text = ""
        if 300 <= code < 400:
            text = f"redirect to {exc.headers.get('Location', '?')} not followed"
        error = f"HTTP {code}" + (f": {text}" if text else "")
        return Answer(code, error, code >= 500 or code in RETRY_STATUSES)
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            return Answer(None, f"no answer within {timeout:g} s", True)
        return Answer(None, f"connection failed: {reason}", True)
    except TimeoutError:
        return Answer(None, f"no answer within {timeout:g} s", True)
    except (HTTPException, OSError) as exc:
        return Answer(None, f"connection failed: {type(exc).__name__}: {exc}", True)
    except ValueError as exc:  # an unusable URL: asking again will not mend it
        return Answer(None, f"bad webhook URL: {exc}", False)


def call_provisioning(call_id: int, *, attempt: int | None = None) -> str:
    """Claim the call, POST it, record the answer. Returns done, failed, retry, manual or skipped.

    `attempt` is given only by the task's own retry: the attempt count it saw when it last held the
    claim, which it kept through the backoff (see claim_timeout).
    """
    now = timezone.now()
    claimable = Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - claim_timeout())
    if attempt is not None:
        claimable |= Q(attempts=attempt)
    claimed = ProvisioningCall.objects.filter(claimable, pk=call_id, status=ProvisioningStatus.PENDING).update(
        claimed_at=now, attempts=F("attempts") + 1
    )
    if not claimed:
        return SKIPPED
    call = ProvisioningCall.objects.get(pk=call_id)
    url = settings.PROVISIONING_WEBHOOK_URL
    if not url:  # the webhook was switched off after the call was written
        return _record(call, MANUAL, None, f"to be done by hand: {_what(call.action, call.detail)}")
    answer = post(url, call.payload, secret=settings.PROVISIONING_WEBHOOK_SECRET, timeout=_timeout())
    what = _what(call.action, call.detail)
    if answer.status is not None and 200 <= answer.status < 300:
        return _record(call, DONE, answer.status, f"{what}: HTTP {answer.status}")
    if not answer.retry:
        return _record(call, FAILED, answer.status, f"{what}: {answer.error}", error=answer.error)
    if call.attempts >= max_attempts():
        note = f"{what}: gave up after {call.attempts} attempts: {answer.error}"
        return _record(call, FAILED, answer.status, note, error=answer.error)
    note = f"{what}: attempt {call.attempts} of {max_attempts()}: {answer.error}"
    return _record(call, RETRY, answer.status, note, error=answer.error)


def _timeout() -> float:
    return float(settings.PROVISIONING_WEBHOOK_TIMEOUT)


@transaction.atomic
def _record(call: ProvisioningCall, outcome: str, status: int | None, note: str, *, error: str = "") -> str:
    row = ProvisioningCall.objects.select_for_update().get(pk=call.pk)
    if row.status != ProvisioningStatus.PENDING or row.attempts != call.attempts:
        # Our claim ran out and another worker took the call over: its answer is the one kept.
        return SKIPPED
    now = timezone.now()
    row.response_status = status
    row.last_error = storable(error)[:2000]
    fields = ["response_status", "last_error", "status", "claimed_at", "done_at"]
    if outcome == RETRY:
        # The claim is kept (renewed) through the backoff: only this task's retry may take the call
        # before it expires, so neither the sweeper nor a duplicate message sends it early.
        row.claimed_at = now
        _event(row, "retrying", note, at=now)
    else:
        row.status = {
            DONE: ProvisioningStatus.DONE,
            FAILED: ProvisioningStatus.FAILED,
            MANUAL: ProvisioningStatus.MANUAL,
        }[outcome]
        row.claimed_at = None
        row.done_at = now if outcome == DONE else None
        _event(row, {DONE: "done", FAILED: "failed", MANUAL: "manual"}[outcome], note, at=now)
    row.save(update_fields=fields)
    return outcome


def retry_schedule(call_id: int) -> tuple[int, float]:
    """For the task's retry: the attempt count to claim with, and the seconds to wait."""
    attempts = ProvisioningCall.objects.values_list("attempts", flat=True).get(pk=call_id)
    return attempts, retry_delay(attempts)


def lost_calls(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Pending calls no task will run: never claimed well after they were queued, or claimed by a
    task that is gone (its claim, kept through any backoff, has expired)."""
    now = now or timezone.now()
    # Served by provisioning_outbox_idx (created_at, partial on status = pending).
    return list(
        ProvisioningCall.objects.filter(status=ProvisioningStatus.PENDING)
        .filter(
            Q(claimed_at__isnull=True, created_at__lt=now - UNCLAIMED_GRACE) | Q(claimed_at__lt=now - claim_timeout())
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
