"""Intake on real worker processes (PostgreSQL, Redis): two workers never file a message twice,
a feed that outlives the claim timeout keeps its claim while its worker beats, and after a SIGKILL
mid-batch the messages are taken up again as soon as a worker starts, from the last committed chunk."""

from __future__ import annotations

import time
import uuid

import pytest
from django.db.models import Sum

from cases.models import InboundMessage, ParseStatus, Report
from cases.services import intake
from tests import fixtures_services
from tests.cases.helpers import customer_with
from tests.fixtures_services import database_url_for_worker, wait_until
from tests.intake.test_intake_chunks import shadowserver_feed
from tests.notices.workers import route_to_workers, start_worker

pytestmark = [pytest.mark.integration, pytest.mark.requires_postgres]

redis_url = fixtures_services.redis_url


@pytest.fixture
def workers(transactional_db, redis_url, tmp_path, monkeypatch):
    """Start workers on one queue of their own; parse tasks queued by receive() go to them."""
    from celery import Celery

    queue = f"test-intake-{uuid.uuid4().hex[:10]}"
    sender = Celery("abusedesk-intake-test-sender", broker=redis_url, set_as_current=False)
    route_to_workers(monkeypatch, sender, queue, names=("cases.tasks.",))
    started = []

    def start(name: str, **env: str):
        worker = start_worker(
            name=name,
            queue=queue,
            database_url=database_url_for_worker(),
            broker_url=redis_url,
            log_dir=tmp_path,
            env={"INTAKE_CHUNK_EVENTS": "50", **env},
        )
        started.append(worker)
        worker.wait_ready()
        return worker

    start.sender, start.queue = sender, queue
    try:
        yield start
    finally:
        for worker in started:
            worker.stop()
        sender.close()


def all_parsed(count: int):
    def check() -> bool:
        return InboundMessage.objects.filter(status=ParseStatus.PARSED).count() == count

    return check


def test_two_workers_file_every_message_once(workers):
    customer_with("198.51.100.0/24", "W-1")
    workers("w1")
    workers("w2")
    ids = [intake.receive(shadowserver_feed(4, tag=f"m{n}", start=4 * n), "email")[0].pk for n in range(40)]
    wait_until(all_parsed(len(ids)), timeout=120, what="every message parsed")
    assert Report.objects.count() == 160
    assert Report.objects.aggregate(d=Sum("duplicate_count"))["d"] == 0
    assert set(InboundMessage.objects.values_list("event_count", "events_filed")) == {(4, 4)}


def test_a_feed_outliving_the_claim_timeout_is_filed_once_while_its_worker_beats(workers):
    customer_with("198.51.100.0/24", "W-1")
    beat = {"INTAKE_HEARTBEAT_SECONDS": "0.2", "INTAKE_CLAIM_TIMEOUT_SECONDS": "1"}
    workers("slow", **beat)
    sweeper = workers("sweeper", **beat)
    message, _ = intake.receive(shadowserver_feed(3000), "email")
    wait_until(lambda: InboundMessage.objects.get(pk=message.pk).chunks_filed >= 1, timeout=60, what="a first chunk")
    # The periodic pass runs again and again on the other worker while the feed is filed.
    while InboundMessage.objects.get(pk=message.pk).status == ParseStatus.PARSING:
        workers.sender.send_task("cases.tasks.requeue_unparsed_messages", args=[0], queue=workers.queue)
        time.sleep(0.3)
    message.refresh_from_db()
    assert (message.status, message.events_filed) == ("parsed", 3000), sweeper.log_text()[-2000:]
    assert Report.objects.count() == 3000
    assert Report.objects.aggregate(d=Sum("duplicate_count"))["d"] == 0


def test_a_worker_killed_mid_batch_leaves_nothing_stuck_and_nothing_twice(workers):
    customer_with("198.51.100.0/24", "W-1")
    # A claim timeout of an hour: recovery must not wait for it.
    victim = workers("victim", INTAKE_CLAIM_TIMEOUT_SECONDS="3600")
    message, _ = intake.receive(shadowserver_feed(3000), "email")
    small = [intake.receive(shadowserver_feed(2, tag=f"s{n}", start=5000 + 2 * n), "email")[0].pk for n in range(3)]
    wait_until(lambda: InboundMessage.objects.get(pk=message.pk).chunks_filed >= 2, timeout=60, what="two chunks")
    victim.kill()
    message.refresh_from_db()
    assert message.status == ParseStatus.PARSING and message.claimed_by
    filed_before = Report.objects.filter(message=message).count()
    assert filed_before == message.events_filed < 3000

    workers("rescuer", INTAKE_CLAIM_TIMEOUT_SECONDS="3600")
    wait_until(all_parsed(1 + len(small)), timeout=120, what="the killed worker's messages parsed")
    message.refresh_from_db()
    assert (message.event_count, message.events_filed) == (3000, 3000)
    assert Report.objects.filter(message=message).count() == 3000
    assert Report.objects.count() == 3000 + 2 * len(small)
    assert Report.objects.aggregate(d=Sum("duplicate_count"))["d"] == 0
