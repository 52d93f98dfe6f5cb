import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_process_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "abusedesk.settings")

app = Celery("abusedesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def close_old_connections(task=None, **kwargs) -> None:
    """What Django does around each request: drop a database connection that is broken or older
    than CONN_MAX_AGE (the worker otherwise keeps it, CELERY_DB_REUSE_MAX). Not for eager tasks,
    which run inside their caller's connection and transaction."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections as close

    close()


@worker_ready.connect
@worker_process_init.connect
def release_dead_intake_claims(**kwargs) -> None:
    """A worker (or a pool process replacing one that died) gives back, at once, the messages that
    processes of this host which are gone had claimed: after a SIGKILL mid-batch they would
    otherwise wait for their heartbeat to run out (INTAKE_CLAIM_TIMEOUT_SECONDS)."""
    import logging

    try:
        from cases.services.intake import release_dead_owners

        release_dead_owners()
    except Exception:  # a database that is not there yet must not stop the worker starting
        logging.getLogger(__name__).warning("could not release dead workers' intake claims", exc_info=True)
    finally:
        from django.db import connections

        connections.close_all()
