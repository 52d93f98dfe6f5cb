"""Reports without an address (a URL-only report whose host name did not resolve): their own tab on
the unassigned page with the URL and the reason, re-resolve asks DNS again (a real server on
127.0.0.1) outside any transaction, and every page and API that lists reports copes with no address."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse

from cases.models import Case, Report, TriageEvent, UnassignedReason
from cases.services import triage
from cases.services.filing import record_reports
from tests.cases.helpers import T0, customer_with, event
from tests.intake.dns_failures import silent_resolver

pytestmark = pytest.mark.django_db

HOST = "gone-phish.example.net"
URL = f"http://{HOST}/login.php"
NXDOMAIN = f"the host name {HOST} does not exist (NXDOMAIN)"


@pytest.fixture(autouse=True)
def _no_enrichment(settings):
    settings.ENRICHMENT_ENABLED = False


def unresolved(url: str = URL, *, reporter: str = "desk@phish-watch.example", **kw) -> Report:
    record_reports(
        [event("", category="phishing", format="url", reporter=reporter, url=url, unresolved=NXDOMAIN, **kw)]
    )
    return Report.objects.get(url=url, reporter=reporter, occurred_at=kw.get("at", T0))


def test_filing_keeps_the_url_and_the_reason_without_an_address():
    report = unresolved()
    assert (report.ip, report.url, report.unassigned_reason) == (None, URL, UnassignedReason.UNRESOLVED)
    assert report.resolution_note == NXDOMAIN
    assert str(report).startswith(f"phishing from {URL} at ")
    # An event with neither an address nor the marker is still refused.
    record_reports([event("", category="phishing", url=URL)])
    assert Report.objects.count() == 1


def test_the_page_shows_them_in_their_own_tab_with_the_url_and_reason(client, noc_user):
    unresolved()
    unresolved("http://other.example.org/x")
    record_reports([event("192.0.2.9")])  # outside our space
    client.force_login(noc_user)

    page = client.get(reverse("cases:unassigned"))  # without a choice: the first tab with work in it
    assert page.context["tab"] == "outside"
    tabs = {value: count for value, _label, count, _help in page.context["tabs"]}
    assert tabs == {"not_held": 0, "outside": 1, "no_addr": 2, "bogon": 0, "dismissed": 0}

    page = client.get(reverse("cases:unassigned") + "?reason=no_addr")
    assert {r.url for r in page.context["page"]} == {URL, "http://other.example.org/x"}
    text = page.text
    assert f'<code class="text-break">{URL}</code>' in text
    assert "Host name did not resolve" in text and NXDOMAIN in text
    assert "re-resolve asks DNS again" in text
    assert ">Re-resolve</button>" in text and ">Dismiss</button>" in text
    assert "None</code>" not in text
    page = client.get(reverse("cases:unassigned") + "?reason=not_held")
    assert URL not in page.text


def test_re_resolve_gives_the_addresses_the_host_has_now_and_files_them(dns_server, noc_user):
    report = unresolved()
    customer = customer_with("198.51.100.0/24", "PHISH-HOST", valid_from=T0 - timedelta(days=1))
    dns_server.add(HOST, "A", "198.51.100.80")
    dns_server.add(HOST, "AAAA", "2001:db8:5::80")

    result = triage.reresolve_reports([report.pk], actor=noc_user)

    assert (result.hosts_resolved, result.hosts_unresolved) == (1, 0)
    report.refresh_from_db()
    assert (report.ip, report.customer, report.unassigned_reason) == ("198.51.100.80", customer, "")
    assert report.case == Case.objects.get(customer=customer)
    assert report.resolution_note.startswith(f"{HOST} resolved on re-resolve (")
    assert report.resolution_note.endswith("to 198.51.100.80, 2001:db8:5::80")
    # The second address is a report of its own (as at intake), outside our space.
    other = Report.objects.exclude(pk=report.pk).get()
    assert (other.ip, other.url, other.message_id, other.occurred_at) == ("2001:db8:5::80", URL, None, T0)
    assert other.unassigned_reason == UnassignedReason.OUTSIDE
    assert (result.filed, result.still_unassigned) == (1, 1)
    assert set(TriageEvent.objects.filter(kind="host_resolved").values_list("report_id", "new")) == {
        (report.pk, "198.51.100.80"),
        (other.pk, "2001:db8:5::80"),
    }
    assert TriageEvent.objects.filter(kind="reason", report=other, old="no_addr", new="outside").exists()
    # Twice is harmless: nothing is left without an address.
    again = triage.reresolve_reports([report.pk, other.pk], actor=noc_user)
    assert (again.hosts_resolved, again.filed) == (0, 0)
    assert Report.objects.count() == 2


def test_a_host_that_still_does_not_resolve_stays_with_the_latest_reason(dns_server, noc_user, settings):
    report = unresolved()
    result = triage.reresolve_reports([report.pk], actor=noc_user)
    assert (result.hosts_resolved, result.hosts_unresolved, result.still_unassigned) == (0, 1, 1)
    report.refresh_from_db()
    assert (report.ip, report.resolution_note) == (None, NXDOMAIN)

    with silent_resolver(settings, timeout=0.3):
        triage.reresolve_reports([report.pk], actor=noc_user)
    report.refresh_from_db()
    assert report.ip is None and report.unassigned_reason == UnassignedReason.UNRESOLVED
    assert report.resolution_note.startswith(f"{HOST} could not be resolved (")
    assert "no answer within 0.3 s" in report.resolution_note


def test_dns_is_asked_outside_any_transaction(noc_user):
    report = unresolved()
    asked = []
    outer = len(connection.atomic_blocks)  # the test's own transaction

    def resolve_host(name: str) -> list[str]:
        asked.append((name, len(connection.atomic_blocks) - outer))
        return ["192.0.2.70"]

    triage.reresolve_reports([report.pk], actor=noc_user, resolve_host=resolve_host)
    assert asked == [(HOST, 0)]
    report.refresh_from_db()
    assert (report.ip, report.unassigned_reason) == ("192.0.2.70", UnassignedReason.OUTSIDE)


def test_the_page_re_resolves_and_says_what_dns_answered(client, dns_server, noc_user):
    gone = unresolved()
    live = unresolved("http://live-phish.example.net/x")
    dns_server.add("live-phish.example.net", "A", "192.0.2.71")
    client.force_login(noc_user)
    response = client.post(
        reverse("cases:unassigned_reresolve"), {"ids": [gone.pk, live.pk], "tab": "no_addr"}, follow=True
    )
    assert response.request["QUERY_STRING"] == "reason=no_addr"
    assert "0 reports filed on 0 cases. 1 host name resolved now. 1 host name still did not resolve." in response.text
    assert "1 still held by nobody at their time." in response.text
    assert Report.objects.get(pk=live.pk).ip == "192.0.2.71"


def test_reports_without_an_address_can_be_dismissed(noc_user):
    report = unresolved()
    assert triage.dismiss_reports([report.pk], reason="taken down", actor=noc_user) == 1
    assert not Report.objects.unassigned().exists()


def test_the_message_page_the_search_the_admin_and_the_api_cope_with_no_address(client, noc_user, admin_user_role):
    from cases.services import intake

    message, _ = intake.receive(b"From: desk@phish-watch.example\r\nSubject: phish\r\n\r\nsee " + URL.encode(), "web")
    record_reports([event("", format="url", url=URL, unresolved=NXDOMAIN)], message=message)
    record_reports([event("198.51.100.9")], message=message)
    customer_with("198.51.100.0/24", "SEARCH-1", valid_from=T0 - timedelta(days=1))
    record_reports([event("198.51.100.10", reporter="x@mail.example")])
    client.force_login(noc_user)

    page = client.get(reverse("cases:message_detail", args=[message.pk]))
    assert page.status_code == 200
    assert f'<code class="text-break">{URL}</code>' in page.text and "None</code>" not in page.text
    for q in ("198.51.100.0/24", "198.51.100.10", "2001:db8::/32", "phish", HOST):
        assert client.get(reverse("cases:home"), {"q": q}).status_code == 200, q

    client.force_login(admin_user_role)
    changelist = client.get(reverse("admin:cases_report_changelist"))
    assert changelist.status_code == 200
    no_address = Report.objects.get(ip__isnull=True)
    assert client.get(reverse("admin:cases_report_change", args=[no_address.pk])).status_code == 200


def test_the_api_lists_a_report_without_an_address_as_null():
    from api.models import ApiKey
    from cases.services import intake
    from tests.api.conftest import client_for

    message, _ = intake.receive(b"From: desk@phish-watch.example\r\nSubject: phish\r\n\r\nsee " + URL.encode(), "web")
    record_reports([event("", format="url", url=URL, unresolved=NXDOMAIN)], message=message)
    _, key = ApiKey.objects.create_key(name="read", scopes=["read"])
    response = client_for(key).get(reverse("api:message_detail", args=[message.pk]))
    assert response.status_code == 200
    assert [r["ip"] for r in response.json()["reports"]] == [None]


def test_the_new_addresses_are_looked_up_once_each_after_re_resolve(noc_user, settings, monkeypatch):
    from cases import queue

    settings.ENRICHMENT_ENABLED = True
    tasks: list[tuple[str, tuple]] = []
    monkeypatch.setattr(queue, "enqueue_on_commit", lambda name, *args: tasks.append((name, args)))
    report = unresolved()
    loopback = unresolved("http://localhost.example.org/x")
    answers = {HOST: ["192.0.2.70", "2001:db8::70"], "localhost.example.org": ["127.0.0.1"]}

    triage.reresolve_reports([report.pk, loopback.pk], actor=noc_user, resolve_host=answers.get)

    other = Report.objects.get(ip="2001:db8::70")
    assert sorted(args for name, args in tasks if name == "cases.tasks.enrich_report_task") == sorted(
        [(report.pk,), (other.pk,)]
    )
    loopback.refresh_from_db()
    assert (loopback.ip, loopback.unassigned_reason) == ("127.0.0.1", UnassignedReason.BOGON)
    assert loopback.resolution_note == "not a routable address (loopback)"
