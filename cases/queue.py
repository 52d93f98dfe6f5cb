"""The one way services hand work to the workers: by task name, after the transaction commits.

Services never import cases.tasks (tasks import services), so there is no import circle:
the task's module is imported here, by name, only when something is queued. A task queued
inside a transaction that rolls back is never sent; outside a transaction it is sent at once.
With no broker (CELERY_TASK_ALWAYS_EAGER) the task runs in-process after the commit.
"""

from __future__ import annotations

import logging
from importlib import import_module

from django.db import transaction

log = logging.getLogger(__name__)


def task(name: str):
    module, _, attr = name.rpartition(".")
    return getattr(import_module(module), attr)


# A broker that is down must not turn a committed decision into an error for the caller: the
# row is safe, and the beat's sweepers (outbox, provisioning, unparsed mail) send what was not
# queued. So publishing retries briefly, and a failure is logged (robust), not raised.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}


def enqueue_on_commit(name: str, *args, **kwargs) -> None:
    """Queue the task `name` (dotted path) with args once the current transaction commits."""
    transaction.on_commit(
        lambda: task(name).apply_async(args, kwargs, retry_policy=PUBLISH_RETRY),
        robust=True,
    )


def run_after_commit(name: str, *args) -> None:
    """Run the task `name` in this process once the current transaction commits, and queue it for
    a worker only if that fails (Celery's retries then take over; the task is safe to run twice).

    For the work a worker's own task leads to at once, such as the ladder after filing: the worker
    that filed a message goes on to its case without a trip through the broker.
    """

    def run() -> None:
        try:
            task(name).run(*args)
        except Exception:
            log.warning("%s failed after the commit; queued for a worker to retry", name, exc_info=True)
            task(name).apply_async(args, retry_policy=PUBLISH_RETRY)

    transaction.on_commit(run, robust=True)
