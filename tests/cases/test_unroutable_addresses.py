"""Reports about addresses nobody can hold (0.0.0.0, broadcast, loopback, multicast, link-local,
private space) are kept with the reason "not a routable address", out of the working unassigned
queue; an address an allocation of ours covers (private space included: the ISP may number its
customers in it) is always resolved as usual."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.urls import reverse

from cases import queue
from cases.models import Case, Report, TriageEvent, UnassignedReason
from cases.services import triage
from cases.services.filing import file_chunk, record_reports
from cases.views_queue import header_counts
from tests.cases.helpers import T0, customer_with, event

pytestmark = pytest.mark.django_db

UNROUTABLE = {
    "0.0.0.0": "unspecified",
    "255.255.255.255": "broadcast",
    "127.0.0.1": "loopback",
    "224.0.0.5": "multicast",
    "169.254.10.1": "link-local",
    "10.9.9.9": "private network",
    "192.168.1.20": "private network",
    "::1": "loopback",
    "ff02::1": "multicast",
    "fe80::1": "link-local",
    "fd00::7": "private network",
}


@pytest.fixture
def queued(monkeypatch, settings) -> list[tuple[str, tuple]]:
    settings.ENRICHMENT_ENABLED = True
    tasks: list[tuple[str, tuple]] = []
    monkeypatch.setattr(queue, "enqueue_on_commit", lambda name, *args: tasks.append((name, args)))
    return tasks


@pytest.mark.parametrize("ip", sorted(UNROUTABLE))
def test_an_unroutable_address_no_allocation_covers_is_kept_out_of_the_queue(ip, queued):
    record_reports([event(ip)])
    report = Report.objects.get()
    assert (report.customer, report.case) == (None, None)
    assert report.unassigned_reason == UnassignedReason.BOGON
    assert report.resolution_note == f"not a routable address ({UNROUTABLE[ip]})"
    assert not Report.objects.unassigned().exists()
    assert list(Report.objects.open_unassigned()) == [report]
    assert header_counts()["unassigned"] == 0
    # Nothing is looked up about it: a PTR or DNSBL answer for 127.0.0.1 says nothing about anybody.
    assert queued == []


def test_the_chunk_path_of_intake_gives_the_same_reasons(settings):
    settings.ENRICHMENT_ENABLED = False
    customer_with("10.1.0.0/16", "LATER", valid_from=T0 + timedelta(days=30))
    file_chunk([(event("127.0.0.1"), None), (event("10.1.2.3"), None), (event("192.0.2.8"), None)])
    reasons = dict(Report.objects.values_list("ip", "unassigned_reason"))
    assert reasons == {
        "127.0.0.1": UnassignedReason.BOGON,
        "10.1.2.3": UnassignedReason.NOT_HELD,  # ours (covered later), so it waits for a person
        "192.0.2.8": UnassignedReason.OUTSIDE,  # a documentation address stands for a public one
    }


def test_private_space_an_allocation_covers_resolves_to_the_customer(queued):
    customer = customer_with("10.0.0.0/16", "INSIDE")
    record_reports([event("10.0.3.4")])
    report = Report.objects.get()
    assert (report.customer, report.unassigned_reason, report.resolution_note) == (customer, "", "")
    assert report.case == Case.objects.get(customer=customer)
    assert ("cases.tasks.enrich_report_task", (report.pk,)) in queued


def test_private_space_covered_only_at_another_time_waits_as_nobody_held_it(settings):
    settings.ENRICHMENT_ENABLED = False
    customer_with("10.0.0.0/16", "GONE", valid_from=T0 - timedelta(days=60), valid_to=T0 - timedelta(days=30))
    record_reports([event("10.0.3.4")])
    report = Report.objects.get()
    assert report.unassigned_reason == UnassignedReason.NOT_HELD
    assert list(Report.objects.unassigned()) == [report]


def test_the_page_shows_them_in_their_own_tab_with_the_kind_and_counts(client, noc_user, settings):
    settings.ENRICHMENT_ENABLED = False
    record_reports([event("127.0.0.1"), event("fe80::1"), event("192.0.2.8")])
    client.force_login(noc_user)
    page = client.get(reverse("cases:unassigned"))
    assert page.context["tab"] == "outside"  # the working queue first
    tabs = {value: count for value, _label, count, _help in page.context["tabs"]}
    assert tabs == {"not_held": 0, "outside": 1, "no_addr": 0, "bogon": 2, "dismissed": 0}

    page = client.get(reverse("cases:unassigned") + "?reason=bogon")
    assert {r.ip for r in page.context["page"]} == {"127.0.0.1", "fe80::1"}
    assert "Not a routable address (loopback)" in page.text
    assert "Not a routable address (link-local)" in page.text
    assert ">Re-resolve</button>" in page.text and ">Dismiss</button>" not in page.text
    for tab in ("not_held", "outside"):
        assert "127.0.0.1" not in client.get(reverse("cases:unassigned") + f"?reason={tab}").text


def test_re_resolve_files_them_once_an_allocation_covers_them(noc_user, settings):
    settings.ENRICHMENT_ENABLED = False
    record_reports([event("10.9.9.9"), event("10.9.9.10", reporter="x@mail.example")])
    first, second = Report.objects.get(ip="10.9.9.9"), Report.objects.get(ip="10.9.9.10")
    customer = customer_with("10.9.9.9/32", "NUMBERED-PRIVATELY", valid_from=T0 - timedelta(days=1))
    customer_with("10.9.9.0/24", "LATER", valid_from=T0 + timedelta(days=1))

    result = triage.reresolve_reports([first.pk, second.pk], actor=noc_user)

    assert (result.filed, result.still_unassigned, result.reason_changed) == (1, 1, 1)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.customer, first.unassigned_reason, first.resolution_note) == (customer, "", "")
    # Covered (later) now: ours, so it joins the working queue as "nobody held it then".
    assert (second.unassigned_reason, second.resolution_note) == (UnassignedReason.NOT_HELD, "")
    assert TriageEvent.objects.filter(kind="reason", report=second, old="bogon", new="not_held").exists()


def test_bogon_reports_are_not_dismissed_from_a_queue_they_are_not_in(noc_user, settings):
    settings.ENRICHMENT_ENABLED = False
    record_reports([event("127.0.0.1")])
    assert triage.dismiss_reports([Report.objects.get().pk], reason="x", actor=noc_user) == 0


def test_the_migration_moves_waiting_reports_at_unroutable_addresses_out_of_the_queue(settings):
    settings.ENRICHMENT_ENABLED = False
    record_reports([event("127.0.0.1"), event("192.0.2.8"), event("10.0.0.9")])
    Report.objects.update(unassigned_reason=UnassignedReason.OUTSIDE)  # as filed before the reason existed
    migration = importlib.import_module("cases.migrations.0014_unassigned_reasons")
    migration.mark_bogons(apps, None)
    assert dict(Report.objects.values_list("ip", "unassigned_reason")) == {
        "127.0.0.1": UnassignedReason.BOGON,
        "10.0.0.9": UnassignedReason.BOGON,
        "192.0.2.8": UnassignedReason.OUTSIDE,
    }
    migration.unmark_bogons(apps, None)
    assert set(Report.objects.values_list("unassigned_reason", flat=True)) == {UnassignedReason.OUTSIDE}
