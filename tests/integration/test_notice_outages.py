"""The outbox through outages, with real workers, a real Redis and an SMTP server on 127.0.0.1:

- a worker killed with SIGKILL mid-batch: every notice arrives, none twice, except the one the
  dead worker had handed to the SMTP server before it could mark the row; that copy carries the
  same Message-ID;
- Redis stopped while notices are written, then started: the sweeper (beat) sends them, once.
"""

from __future__ import annotations

import contextlib
import time
import uuid

import pytest
from celery import Celery

from cases.models import Notice, NoticeKind, NoticeStatus
from cases.services import notices
from tests import fixtures_services
from tests.fixtures_services import REDIS_SERVER, database_url_for_worker, free_port, wait_until
from tests.notices import smtp
from tests.notices.builders import customer_on, file_reports, spam
from tests.notices.workers import RedisServer, route_to_workers, start_worker

redis_url = fixtures_services.redis_url
scripted_smtp = smtp.scripted_smtp

pytestmark = pytest.mark.integration

SWEEP = "cases.tasks_notices.sweep_outbox_task"
# Short, so a dead worker's claim and an unqueued notice are taken back within the test.
CLAIM_TIMEOUT = 3


@contextlib.contextmanager
def workers_on(broker_url: str, tmp_path, scripted: smtp.ScriptedSmtp, names: tuple[str, ...]):
    """Workers on one fresh queue of broker_url, sending to `scripted`; and a sender for the queue."""
    queue = f"test-{uuid.uuid4().hex[:12]}"
    env = {**scripted.worker_env(), "NOTICE_CLAIM_TIMEOUT_SECONDS": str(CLAIM_TIMEOUT)}
    database_url = database_url_for_worker()
    started = [
        start_worker(
            name=f"{queue}-{n}",
            queue=queue,
            database_url=database_url,
            broker_url=broker_url,
            log_dir=tmp_path,
            env=env,
        )
        for n in names
    ]
    sender = Celery("notice-test-sender", broker=broker_url, set_as_current=False)
    try:
        for worker in started:
            worker.wait_ready()
        yield started, sender, queue
    finally:
        for worker in started:
            worker.stop()
        sender.close()


def issue_batch(count: int, capture) -> list[Notice]:
    customer = customer_on("198.51.100.0/24")
    file_reports(capture, spam())
    case = customer.cases.get()
    return [notices.issue_notice(case, NoticeKind.WARNING, key=f"batch-{i}", actor=None) for i in range(count)]


def sweep_until_all_sent(sender: Celery, queue: str, batch: list[Notice], timeout: float = 90) -> None:
    """Run the beat's sweep on the workers every few seconds until every notice is marked sent."""
    ids = [n.pk for n in batch]

    def all_sent() -> bool:
        if Notice.objects.filter(pk__in=ids).exclude(status=NoticeStatus.SENT).exists():
            sender.send_task(SWEEP, queue=queue)
            time.sleep(1.5)
            return False
        return True

    wait_until(all_sent, timeout=timeout, interval=0.5, what="the sweeper to see every notice sent")


def test_a_worker_killed_mid_batch_loses_nothing_and_doubles_only_what_the_server_had_accepted(
    transactional_db, redis_url, tmp_path, scripted_smtp, monkeypatch, django_capture_on_commit_callbacks
):
    scripted_smtp.data_delay = 0.05  # the server stores each message, then takes its time to say 250
    with workers_on(redis_url, tmp_path, scripted_smtp, ("a", "b")) as ((victim, survivor), sender, queue):
        route_to_workers(monkeypatch, sender, queue)
        batch = issue_batch(60, django_capture_on_commit_callbacks)
        scripted_smtp.wait_for(15, timeout=60)
        victim.kill()
        received_at_kill = len(scripted_smtp.received())
        assert received_at_kill < len(batch), "the batch was over before the kill"
        sweep_until_all_sent(sender, queue, batch)
        assert "send_notice_task" in victim.log_text() and "send_notice_task" in survivor.log_text()

    counts = scripted_smtp.message_ids()
    assert set(counts) == {n.message_id for n in batch}, "a notice never arrived, or a stranger did"
    doubled = {mid for mid, n in counts.items() if n > 1}
    assert len(doubled) <= 1 and all(counts[mid] == 2 for mid in doubled), counts
    for notice in Notice.objects.filter(message_id__in=doubled):
        # The documented exception: the dead worker's claim, taken back by the sweeper.
        assert notice.attempts == 2
        assert "stopped" in notice.last_error or notice.last_error == ""


def test_redis_stopped_then_started_the_sweeper_sends_what_was_written_meanwhile(
    transactional_db, tmp_path, scripted_smtp, monkeypatch, django_capture_on_commit_callbacks
):
    if not RedisServer.available():
        pytest.skip(f"redis-server is not installed ({REDIS_SERVER}); apt-get install redis-server")
    redis = RedisServer(free_port())
    redis.start()
    try:
        with workers_on(redis.url, tmp_path, scripted_smtp, ("w",)) as ((worker,), sender, queue):
            redis.stop()
            # Fail at once rather than after kombu's retries (6 s a task by default): the outage is short.
            impatient = Celery("impatient-sender", broker=redis.url, set_as_current=False)
            impatient.conf.broker_transport_options = {"max_retries": 0}
            handover_failed = route_to_workers(monkeypatch, impatient, queue)
            batch = issue_batch(10, django_capture_on_commit_callbacks)
            assert len(handover_failed) == 10  # written and committed; the queue never heard of them
            assert Notice.objects.filter(status=NoticeStatus.PENDING).count() == 10
            impatient.close()
            redis.start()
            wait_until(
                lambda: worker.log_text().count("Connected to redis") >= 2,
                timeout=90,
                what="the worker to reconnect to Redis",
            )
            time.sleep(CLAIM_TIMEOUT + 0.5)  # the sweeper's patience with an unqueued notice
            sweep_until_all_sent(sender, queue, batch)
    finally:
        redis.remove()
    assert scripted_smtp.message_ids() == {n.message_id: 1 for n in batch}
