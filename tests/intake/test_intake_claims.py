"""Claims carry an owner and a heartbeat: they are given back when the heartbeat stops (not by
their age), and at once when their owner is a process of this host that is gone."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from cases.models import InboundMessage, ParseStatus
from cases.services import intake
from tests.intake.test_intake_chunks import shadowserver_feed

pytestmark = pytest.mark.django_db


def claimed(tag: str, *, owner: str, beat_ago: timedelta, claimed_ago: timedelta = timedelta(hours=3)) -> int:
    message, _ = intake.receive(shadowserver_feed(1, tag=tag), "email")
    now = timezone.now()
    InboundMessage.objects.filter(pk=message.pk).update(
        status=ParseStatus.PARSING, claimed_by=owner, claimed_at=now - claimed_ago, heartbeat_at=now - beat_ago
    )
    return message.pk


def status(pk: int) -> str:
    return InboundMessage.objects.get(pk=pk).status


def test_a_claim_is_released_by_its_heartbeat_not_by_its_age(settings):
    settings.INTAKE_CLAIM_TIMEOUT_SECONDS = 120
    beating = claimed("a", owner="other-host:1:aaaa", beat_ago=timedelta(seconds=10), claimed_ago=timedelta(hours=2))
    silent = claimed("b", owner="other-host:2:bbbb", beat_ago=timedelta(minutes=5), claimed_ago=timedelta(minutes=6))
    assert intake.release_stale_claims() == 1
    assert (status(beating), status(silent)) == ("parsing", "new")
    released = InboundMessage.objects.get(pk=silent)
    assert (released.claimed_by, released.heartbeat_at) == ("", None)


def test_claims_of_dead_processes_of_this_host_are_released_at_once():
    host = socket.gethostname()[:60]
    dead = claimed("d", owner=f"{host}:999999999:dead", beat_ago=timedelta(0))
    mine = claimed("m", owner=intake.worker_identity(), beat_ago=timedelta(0))
    elsewhere = claimed("e", owner="other-host:999999999:dead", beat_ago=timedelta(0))
    assert intake.release_dead_owners() == 1
    assert (status(dead), status(mine), status(elsewhere)) == ("new", "parsing", "parsing")


def test_a_claim_returns_only_what_it_took_and_marks_the_owner():
    ids = [intake.receive(shadowserver_feed(1, tag=f"c{n}", start=n), "email")[0].pk for n in range(3)]
    taken = intake.claim_messages(first=ids[2], limit=2)
    assert [c.pk for c in taken] == [ids[2], ids[0]]
    assert taken[0].raw is not None  # a small message comes back with its claim
    rows = dict(InboundMessage.objects.values_list("pk", "claimed_by"))
    assert rows[ids[2]] == rows[ids[0]] == intake.worker_identity() and rows[ids[1]] == ""
    assert intake.claim_messages(only=ids[2]) == []
