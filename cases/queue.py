"""The one way services hand work to the workers: by task name, after the transaction commits.

Services never import cases.tasks (tasks import services), so there is no import circle:
the task's module is imported here, by name, only when something is queued. A task queued
inside a transaction that rolls back is never sent; outside a transaction it is sent at once.
With no broker (CELERY_TASK_ALWAYS_EAGER) the task runs in-process after the commit.
"""

from __future__ import annotations

from importlib import import_module

from django.db import transaction


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
