"""Celery tasks for the ladder. Thin: ids in, a service call, safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError, OperationalError

from cases.services import ladder, notices


@shared_task(
    autoretry_for=(OperationalError, DatabaseError),
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=8,
    acks_late=True,
    ignore_result=True,
)
def evaluate_cases_task(case_ids: list[int], report_ids: list[int] | None = None) -> int:
    """After filing: climb or propose where the policy says so; thank the human reporters."""
    acted = ladder.evaluate_cases(case_ids)
    if report_ids:
        notices.acknowledge_reporters(report_ids)
    return acted


# A tick that overran the schedule is superseded by the next one (the beat entry sets expires).
@shared_task(acks_late=False, ignore_result=True)
def ladder_tick_task() -> int:
    """The beat: holds that ended, grace periods that ran out, scheduled suspensions whose time came."""
    return ladder.reevaluate_open_cases()
