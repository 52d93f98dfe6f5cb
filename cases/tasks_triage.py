"""Celery task for the referral outbox (answers to reporters about addresses that are not ours).
Thin: an id in, a service call; safe to run twice (the claim sends it once).

Registered through an import at the end of cases/tasks.py, under the name services queue it by.
"""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError, OperationalError

from cases.services import notices, triage


@shared_task(
    bind=True,
    autoretry_for=(OperationalError, DatabaseError),
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=8,
    acks_late=True,
    ignore_result=True,
)
def send_referral_task(self, referral_id: int) -> str:
    outcome = triage.send_referral(referral_id)
    if outcome == notices.RETRY:
        # The row is back to pending and counts its attempts; the retry only wakes it up.
        raise self.retry(countdown=notices.retry_delay(1), max_retries=None)
    return outcome


@shared_task(acks_late=False, ignore_result=True)
def sweep_referrals_task() -> int:
    """The beat: send the referrals whose task was lost, take back claims of dead workers."""
    return triage.sweep_referrals()
