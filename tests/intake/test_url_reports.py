"""URL-only reports (phishing, malware, copyright): the host name is resolved at intake through the
configured resolver (a real DNS server on 127.0.0.1 here), the URL is kept on the report, and a
name that does not resolve is an event without an address, saying why (filing: test_unresolved_url_reports).
DMARC rows are filed needing confirmation."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest

from abusedesk.lib import dns as adns
from cases.intake import parse
from cases.models import Case, Policy, Report, ReporterSource, Trust
from cases.services.filing import record_reports
from cases.services.ladder import counting_reports, load_facts
from tests.cases.helpers import customer_with

from . import RECEIVED_AT, fixture

URL = "https://login-secure-bank.example.net/verify/account.php"


def test_a_phishing_url_is_resolved_to_the_addresses_serving_it_now(dns_server):
    dns_server.add("login-secure-bank.example.net", "A", "198.51.100.180")
    dns_server.add("login-secure-bank.example.net", "AAAA", "2001:db8:5::80")
    result = parse(fixture("precision/url_phishing.eml"), received_at=RECEIVED_AT)
    assert result.format == "url"
    assert {e.ip for e in result.events} == {"198.51.100.180", "2001:db8:5::80"}
    assert {e.url for e in result.events} == {URL}  # defanged "hxxps" and "[.]" read back
    assert {e.category for e in result.events} == {"phishing"}
    assert all("resolved at intake" in e.evidence for e in result.events)
    # The reporter's own site (brandprotect.example) is never looked up.
    assert not any("brandprotect" in name for name, _ in dns_server.queries)


def test_a_url_whose_name_does_not_resolve_is_an_event_without_an_address_saying_why(dns_server):
    result = parse(fixture("precision/url_unresolvable.eml"), received_at=RECEIVED_AT)
    assert result.format == "url" and result.error is None
    [event] = result.events
    assert (event.ip, event.url) == ("", "http://gone-dropper.invalid-host.example/payload.exe")
    assert event.unresolved == "the host name gone-dropper.invalid-host.example does not exist (NXDOMAIN)"
    assert "does not exist (NXDOMAIN) at intake" in event.evidence


def test_a_resolver_that_does_not_answer_is_a_reason_too(settings):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # takes queries, never answers
    silent.bind(("127.0.0.1", 0))
    settings.DNS_NAMESERVERS = ["127.0.0.1"]
    settings.DNS_PORT = silent.getsockname()[1]
    settings.DNS_TIMEOUT = 0.3
    adns.clear_cache()
    try:
        result = parse(fixture("precision/url_unresolvable.eml"), received_at=RECEIVED_AT)
    finally:
        silent.close()
        adns.clear_cache()
    [event] = result.events
    assert event.ip == ""
    assert "could not be resolved" in event.unresolved and "no answer within 0.3 s" in event.unresolved


@pytest.mark.django_db
def test_the_url_is_kept_on_the_filed_report(dns_server):
    dns_server.add("login-secure-bank.example.net", "A", "198.51.100.180")
    customer_with("198.51.100.0/24", "URLHOST", valid_from=datetime(2020, 1, 1, tzinfo=UTC))
    result = parse(fixture("precision/url_phishing.eml"), received_at=RECEIVED_AT)
    record_reports(result.events)
    report = Report.objects.get()
    assert (report.ip, report.url, report.customer.account) == ("198.51.100.180", URL, "URLHOST")


@pytest.mark.django_db
def test_dmarc_rows_are_filed_needing_confirmation_even_from_a_trusted_source():
    ReporterSource.objects.create(pattern="mailprovider.example", trust=Trust.COUNTS)
    customer_with("203.0.113.0/24", "DMARC-1", valid_from=datetime(2020, 1, 1, tzinfo=UTC))
    result = parse(fixture("precision/dmarc_zip.eml"), received_at=RECEIVED_AT)
    record_reports(result.events)
    reports = Report.objects.all()
    assert {r.ip for r in reports} == {"203.0.113.90", "198.51.100.91"}
    assert all(r.needs_confirmation and r.format == "dmarc" for r in reports)


@pytest.mark.django_db
def test_dmarc_reports_from_two_providers_never_start_a_notice_alone():
    customer_with("203.0.113.0/24", "DMARC-2", valid_from=datetime(2020, 1, 1, tzinfo=UTC))
    for name in ("precision/dmarc_zip.eml", "precision/dmarc_gz.eml"):
        events = parse(fixture(name), received_at=RECEIVED_AT).events
        for event in events:  # both providers' rows about one address of the customer
            event.ip = "203.0.113.90"
        record_reports(events)
    case = Case.objects.select_related("customer").get()
    assert len({r.reporter for r in case.reports.all()}) == 2
    now = datetime(2024, 1, 25, tzinfo=UTC)
    facts = load_facts([case], now)[case.pk]
    counted, waiting = counting_reports(facts, Policy.cached(case.customer.kind), now)
    assert counted == [] and waiting == 2
