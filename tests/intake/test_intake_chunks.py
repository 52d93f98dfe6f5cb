"""Big feeds in bounded pieces: events are filed in chunks, each committed with the message's
progress; a restart goes on after the last committed chunk and files nothing twice; a cap on the
events per message, with the rest counted on the message and shown on its page; a batch files
only what its worker still holds."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from cases.models import Case, CaseEvent, InboundMessage, ParseStatus, Report
from cases.services import intake
from tests.cases.helpers import customer_with

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 11, 20, tzinfo=UTC)


def shadowserver_feed(rows: int, *, net: str = "198.51.100", tag: str = "1", start: int = 0) -> bytes:
    """A Shadowserver scan report with `rows` distinct events (one address per row, a second apart)."""
    lines = ['"timestamp","ip","protocol","port","hostname","tag","asn","geo","region","city"']
    for n in range(start, start + rows):
        # 250 addresses; the same one again two hours later, outside the duplicate window.
        at = DAY + timedelta(hours=2 * (n // 250), seconds=n % 250)
        lines.append(f'"{at:%Y-%m-%d %H:%M:%S}","{net}.{n % 250 + 1}","tcp",22,"","ssh",64500,"NL","X","Y"')
    payload = base64.encodebytes(("\n".join(lines) + "\n").encode()).decode()
    return (
        "From: autoreports@shadowserver.org\r\nTo: abuse@isp.example\r\n"
        "Subject: [64500] Shadowserver NL Accessible SSH Report: 2026-11-20\r\n"
        f"Message-ID: <shadow-{tag}@shadowserver.org>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nReport attached.\r\n"
        '--b\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename="2026-11-20-scan_ssh-nl.csv"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{payload}--b--\r\n"
    ).encode()


class Crash(BaseException):
    """Stands for the worker dying: not an Exception, so nothing in intake catches it."""


@pytest.fixture
def small_chunks(settings):
    settings.INTAKE_CHUNK_EVENTS = 10
    settings.INTAKE_MAX_EVENTS_PER_MESSAGE = 1_000_000
    settings.ENRICHMENT_ENABLED = False
    return settings


def test_a_feed_is_filed_in_chunks_with_its_progress_on_the_message(small_chunks):
    customer_with("198.51.100.0/24", "F-1")
    message, _ = intake.receive(shadowserver_feed(25), "email")
    summary = intake.process_pending(first=message.pk)
    message.refresh_from_db()
    assert summary.created == 25 and summary.duplicates == 0
    assert (message.status, message.event_count, message.events_filed, message.chunks_filed) == ("parsed", 25, 25, 3)
    assert (message.claimed_by, message.heartbeat_at) == ("", None)
    assert Case.objects.get().report_count == 25
    # One audit row per chunk for the case, each with its count.
    assert sorted(CaseEvent.objects.filter(kind="reports_added").values_list("new", flat=True)) == ["10", "10", "5"]


def test_a_restart_after_a_crash_goes_on_from_the_last_committed_chunk_and_files_nothing_twice(
    small_chunks, monkeypatch
):
    customer_with("198.51.100.0/24", "F-1")
    message, _ = intake.receive(shadowserver_feed(35), "email")
    real = intake.file_chunk
    calls = []

    def dies_on_the_third_chunk(pairs, **kwargs):
        calls.append(len(pairs))
        if len(calls) == 3:
            raise Crash
        return real(pairs, **kwargs)

    monkeypatch.setattr(intake, "file_chunk", dies_on_the_third_chunk)
    with pytest.raises(Crash):
        intake.process_pending(first=message.pk)
    message.refresh_from_db()
    assert (message.status, message.events_filed, message.chunks_filed) == ("parsing", 20, 2)
    assert Report.objects.count() == 20

    # The worker is gone: its claim is given back by its heartbeat, and the next worker goes on.
    monkeypatch.setattr(intake, "file_chunk", real)
    assert intake.release_stale_claims(older_than=timezone.now() + timedelta(seconds=1)) == 1
    summary = intake.process_pending(first=message.pk)
    message.refresh_from_db()
    assert summary.created == 15 and summary.duplicates == 0
    assert (message.status, message.event_count, message.events_filed, message.chunks_filed) == ("parsed", 35, 35, 4)
    assert Report.objects.count() == 35
    assert Report.objects.aggregate(d=Sum("duplicate_count"))["d"] == 0
    assert Report.objects.values("ip", "occurred_at").distinct().count() == 35
    assert Case.objects.get().report_count == 35


def test_events_over_the_cap_are_counted_not_filed_and_the_page_says_so(small_chunks, client, noc_user):
    small_chunks.INTAKE_MAX_EVENTS_PER_MESSAGE = 12
    customer_with("198.51.100.0/24", "F-1")
    message, _ = intake.receive(shadowserver_feed(30), "email")
    intake.process_pending(first=message.pk)
    message.refresh_from_db()
    assert (message.status, message.event_count, message.events_over_cap) == ("parsed", 12, 18)
    assert Report.objects.count() == 12
    client.force_login(noc_user)
    page = client.get(reverse("cases:message_detail", args=[message.pk])).content.decode()
    assert "18 further events" in page and "12" in page


def test_a_batch_files_only_what_its_worker_still_holds(small_chunks, monkeypatch):
    customer_with("198.51.100.0/24", "F-1")
    message, _ = intake.receive(shadowserver_feed(30), "email")
    other, _ = intake.receive(shadowserver_feed(5, tag="2", start=100), "email")
    real = intake.file_chunk
    calls = []

    def taken_away_after_the_first_chunk(pairs, **kwargs):
        calls.append(len(pairs))
        result = real(pairs, **kwargs)
        if len(calls) == 1:
            # Meanwhile the claim was given back and another worker took the message.
            InboundMessage.objects.filter(pk=message.pk).update(claimed_by="elsewhere:1:feedbeef")
        return result

    monkeypatch.setattr(intake, "file_chunk", taken_away_after_the_first_chunk)
    intake.process_pending(first=message.pk)
    message.refresh_from_db()
    assert (message.status, message.claimed_by, message.events_filed) == ("parsing", "elsewhere:1:feedbeef", 10)
    assert Report.objects.count() == 10  # the second chunk was rolled back with its progress
    # The rest of the batch is given back for another worker, not left claimed.
    assert InboundMessage.objects.get(pk=other.pk).status == ParseStatus.NEW


def test_small_mail_one_at_a_time_shares_one_chunk_per_batch(small_chunks):
    customer_with("198.51.100.0/24", "F-1")
    ids = [intake.receive(shadowserver_feed(3, tag=f"s{n}", start=10 * n), "email")[0].pk for n in range(3)]
    intake.process_pending(first=ids[0])
    assert set(InboundMessage.objects.values_list("status", "events_filed")) == {("parsed", 3)}
    # 9 events, one chunk: one audit row for the case.
    assert CaseEvent.objects.get(kind="reports_added").new == "9"
