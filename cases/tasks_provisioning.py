"""Celery tasks for the provisioning webhook. Thin: an id in, a service call, safe to run twice.

Registered through the import at the end of cases/tasks.py (Celery discovers only `tasks` modules).
"""

from __future__ import annotations

from celery import shared_task

from cases.services import provisioning


# max_retries=None: the call's own attempt count (PROVISIONING_MAX_ATTEMPTS, kept on the row) decides
# when to give up, whichever worker or sweep made the earlier attempts. No autoretry on database
# errors: a task that dies leaves the call pending, and the sweeper queues it again.
@shared_task(bind=True, max_retries=None, acks_late=True, ignore_result=True)
def call_provisioning_task(self, call_id: int, attempt: int | None = None) -> str:
    outcome = provisioning.call_provisioning(call_id, attempt=attempt)
    if outcome == provisioning.RETRY:
        attempts, countdown = provisioning.retry_schedule(call_id)
        raise self.retry(countdown=countdown, kwargs={"attempt": attempts})
    return outcome


# A sweep that overran the schedule is superseded by the next one (the beat entry sets expires).
@shared_task(acks_late=False, ignore_result=True)
def sweep_provisioning_task() -> int:
    """Queue again the pending calls whose task was lost (the broker was down, a worker died)."""
    ids = provisioning.lost_calls()
    for pk in ids:
        call_provisioning_task.delay(pk)
    return len(ids)
