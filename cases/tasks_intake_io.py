"""Celery tasks that talk to the network for intake: enrichment (DNS) and IMAP polling.

Celery's autodiscovery loads only `tasks` modules: cases/tasks.py imports these two, which
registers them under their names here (cases.tasks_intake_io.*), the names the beat
schedule uses.
"""

from __future__ import annotations

import dataclasses
import logging

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError, OperationalError

log = logging.getLogger(__name__)


@shared_task(
    autoretry_for=(OperationalError, DatabaseError),
    retry_backoff=5,
    retry_backoff_max=600,
    max_retries=5,
    acks_late=True,
    ignore_result=True,
)
def enrich_report_task(report_id: int) -> None:
    # DNS failures do not raise (they are recorded on the report); only the database can.
    from cases.enrichment import enrich_report

    enrich_report(report_id)


# A poll that overruns the schedule must not pile up behind itself: the beat entry should
# set expires to the poll interval; a stuck server is cut off by the connection timeout.
@shared_task(acks_late=False, ignore_result=True)
def poll_imap_task() -> dict | None:
    if not getattr(settings, "IMAP_HOST", ""):
        return None  # IMAP intake is off
    from cases.imap import ImapPollError, poll_mailbox

    try:
        return dataclasses.asdict(poll_mailbox())
    except ImapPollError as exc:
        # The next poll tries again; a traceback every minute would say nothing more.
        log.warning("IMAP poll failed: %s", exc)
        return {"error": str(exc)}
