"""Background work for the customers app."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from customers.imports import ImportFileError, execute
from customers.models import ImportRun

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def run_import(import_run_id: int) -> None:
    """Run an uploaded import. Safe to run twice: only a pending run is claimed, and only once."""
    # The conditional UPDATE is the claim: a second delivery (acks_late, a retry, a second
    # worker) finds the run no longer pending and does nothing.
    claimed = ImportRun.objects.filter(pk=import_run_id, status=ImportRun.Status.PENDING).update(
        status=ImportRun.Status.RUNNING
    )
    if not claimed:
        logger.info("import run %s is not pending; nothing to do", import_run_id)
        return
    run = ImportRun.objects.select_related("started_by").get(pk=import_run_id)
    try:
        fh = run.file.open("rb")
    except (OSError, ValueError) as exc:
        ImportRun.objects.filter(pk=run.pk).update(
            status=ImportRun.Status.FAILED, error=f"Cannot open the uploaded file: {exc}", finished_at=timezone.now()
        )
        return
    try:
        execute(run, fh)
    except ImportFileError:
        pass  # execute() recorded why on the run; there is nothing to retry
    finally:
        fh.close()
