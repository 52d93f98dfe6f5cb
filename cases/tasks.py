"""Celery tasks for intake. Thin: they take ids, call a service, and are safe to run twice."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from celery import shared_task
from django.db import DatabaseError, OperationalError
from django.utils import timezone

from cases import services
from cases.models import InboundMessage, ParseStatus


@shared_task(
    autoretry_for=(OperationalError, DatabaseError),
    retry_backoff=5,
    retry_backoff_max=600,
    max_retries=8,
    acks_late=True,
)
def parse_message_task(message_id: int) -> None:
    # Takes this message and whatever else is waiting (a batch), unless another worker
    # already took it; either way the message is parsed once.
    services.process_pending(first=message_id)


@shared_task
def requeue_unparsed_messages(older_than_minutes: int = 10, limit: int = 500) -> int:
    """Queue again what was stored but never parsed (the broker was down, a worker died)."""
    cutoff = timezone.now() - timedelta(minutes=older_than_minutes)
    # A worker that died mid-batch leaves its claim behind; a claim this old is released.
    InboundMessage.objects.filter(status=ParseStatus.PARSING, claimed_at__lt=cutoff).update(
        status=ParseStatus.NEW, claimed_at=None
    )
    ids = list(
        InboundMessage.objects.filter(status=ParseStatus.NEW, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in ids:
        parse_message_task.delay(pk)
    return len(ids)


with contextlib.suppress(ImportError):  # enrichment and IMAP polling: their own module (network I/O)
    from cases.tasks_intake_io import enrich_report_task, poll_imap_task  # noqa: F401
