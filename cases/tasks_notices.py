"""Celery tasks for the notices outbox. Thin: an id in, a service call; safe to run twice.

Registered through an import at the end of cases/tasks.py (autodiscovery loads only `tasks`
modules), under the names here (cases.tasks_notices.*), which services queue by name.
"""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError, OperationalError

from cases.services import notices


@shared_task(
    bind=True,
    # The database being away is not the notice's fault: retried, and the attempt is not counted
    # (the claim never happened, or the sweeper takes it back).
    autoretry_for=(OperationalError, DatabaseError),
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=8,
    acks_late=True,
    ignore_result=True,
)
def send_notice_task(self, notice_id: int) -> str:
    """Claim and send one notice. A second run finds it claimed or sent and does nothing."""
    outcome = notices.send_notice(notice_id)
    if outcome == notices.RETRY:
        # send_notice() has put the row back to pending with next_attempt_at (the backoff) and
        # counts the attempts itself; the retry only wakes it up then. If this message is lost,
        # the sweeper queues the notice again.
        raise self.retry(countdown=notices.seconds_until_due(notice_id), max_retries=None)
    return outcome


# A sweep that waited longer than the schedule is superseded by the next one (the beat entry
# sets expires); two sweeps at once only queue a notice twice, and the claim sends it once.
@shared_task(acks_late=False, ignore_result=True)
def sweep_outbox_task() -> int:
    """The beat: queue what is still pending (a Redis outage, a lost task) and take back the
    claims of workers that died mid-send."""
    return notices.sweep_outbox()
