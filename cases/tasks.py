"""Celery tasks for intake. Thin: they take ids, call a service, and are safe to run twice."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.db import DatabaseError, OperationalError
from django.utils import timezone

from cases.models import InboundMessage, ParseStatus
from cases.services import intake


@shared_task(
    autoretry_for=(OperationalError, DatabaseError),
    retry_backoff=5,
    retry_backoff_max=600,
    max_retries=8,
    # Acknowledged after it ran, and given back to the broker if its worker process dies: the
    # message is parsed again at once (its claim is released when a worker starts, see
    # abusedesk/celery.py), going on after the chunks already committed.
    acks_late=True,
    reject_on_worker_lost=True,
)
def parse_message_task(message_id: int) -> None:
    # Takes this message and whatever else is waiting (a batch), unless another worker
    # already took it; either way the message is parsed once.
    intake.process_pending(first=message_id)


@shared_task
def requeue_unparsed_messages(older_than_minutes: int = 10, limit: int = 500) -> int:
    """Queue again what was stored but never parsed (the broker was down, a worker died).

    Claims are given back by their heartbeat (INTAKE_CLAIM_TIMEOUT_SECONDS), not by their age:
    a feed that takes an hour keeps its claim while its worker lives.
    """
    cutoff = timezone.now() - timedelta(minutes=older_than_minutes)
    intake.release_dead_owners()
    intake.release_stale_claims()
    ids = list(
        InboundMessage.objects.filter(status=ParseStatus.NEW, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in ids:
        parse_message_task.delay(pk)
    return len(ids)


# Enrichment and IMAP polling live in their own module (network I/O); importing them here
# registers them with the worker, which only discovers modules named tasks.
from cases.tasks_intake_io import enrich_report_task, poll_imap_task  # noqa: E402, F401
from cases.tasks_ladder import evaluate_cases_task, ladder_tick_task  # noqa: E402, F401
from cases.tasks_notices import send_notice_task, sweep_outbox_task  # noqa: E402, F401
from cases.tasks_provisioning import call_provisioning_task, sweep_provisioning_task  # noqa: E402, F401
from cases.tasks_triage import send_referral_task, sweep_referrals_task  # noqa: E402, F401
