"""A URL-only report whose host name gives no address at intake (NXDOMAIN, no A/AAAA record,
SERVFAIL, no answer) is kept as a report without an address: the URL and the reason are on it,
and it waits in the unassigned queue ("Host name did not resolve") instead of ending "could not
parse". Real resolvers on 127.0.0.1 throughout; the whole intake path (receive, parse, file)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cases.intake import parse
from cases.models import InboundMessage, ParseStatus, Report, UnassignedReason
from cases.services import intake
from tests.cases.helpers import customer_with

from . import RECEIVED_AT
from .dns_failures import servfail_resolver, silent_resolver

URL = "http://gone-phish.example.net/login/verify.php"


def url_mail(url: str = URL, *, msgid: str = "<p-1@phish-watch.example>", extra: str = "") -> bytes:
    return (
        'From: "Phish Watch" <desk@phish-watch.example>\r\nTo: abuse@isp.example\r\n'
        "Subject: Phishing site on your network\r\nDate: Thu, 25 Jan 2024 10:00:00 +0000\r\n"
        f"Message-ID: {msgid}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"A phishing page imitating a bank:\r\n\r\nPhishing URL: {url}\r\n{extra}\r\nPhish Watch\r\n"
    ).encode()


@pytest.fixture(autouse=True)
def _no_enrichment(settings):
    settings.ENRICHMENT_ENABLED = False


def file_mail(raw: bytes) -> tuple[InboundMessage, list[Report]]:
    message, _ = intake.receive(raw, "email")
    intake.process_pending(first=message.pk)
    message.refresh_from_db()
    return message, list(Report.objects.filter(message=message))


@pytest.mark.django_db
def test_a_host_name_that_does_not_exist_files_a_report_without_an_address(dns_server):
    message, [report] = file_mail(url_mail())
    assert message.status == ParseStatus.PARSED and message.format == "url"
    assert (report.ip, report.url, report.category) == (None, URL, "phishing")
    assert report.unassigned_reason == UnassignedReason.UNRESOLVED
    assert report.resolution_note == "the host name gone-phish.example.net does not exist (NXDOMAIN)"
    assert (report.customer, report.case) == (None, None)
    assert "does not exist (NXDOMAIN) at intake" in report.evidence
    assert list(Report.objects.unassigned()) == [report]  # the working queue
    assert dns_server.query_count("gone-phish.example.net") >= 1


@pytest.mark.django_db
def test_a_name_without_address_records_says_so(dns_server):
    dns_server.add("gone-phish.example.net", "TXT", "v=spf1 -all")
    _, [report] = file_mail(url_mail())
    assert report.ip is None
    assert report.resolution_note == "the host name gone-phish.example.net has no A or AAAA record"


@pytest.mark.django_db
def test_a_resolver_answering_servfail_files_the_report_saying_so(settings):
    with servfail_resolver(settings):
        message, [report] = file_mail(url_mail())
    assert message.status == ParseStatus.PARSED
    assert report.ip is None and report.unassigned_reason == UnassignedReason.UNRESOLVED
    assert report.resolution_note.startswith("gone-phish.example.net could not be resolved")
    assert "SERVFAIL" in report.resolution_note


@pytest.mark.django_db
def test_a_resolver_that_does_not_answer_files_the_report_saying_so(settings):
    with silent_resolver(settings, timeout=0.3):
        message, [report] = file_mail(url_mail())
    assert message.status == ParseStatus.PARSED
    assert report.ip is None and report.unassigned_reason == UnassignedReason.UNRESOLVED
    assert "no answer within 0.3 s" in report.resolution_note


@pytest.mark.django_db
def test_the_same_unresolvable_url_from_the_same_reporter_is_a_duplicate(dns_server):
    _, [first] = file_mail(url_mail())
    _, again = file_mail(url_mail(msgid="<p-2@phish-watch.example>"))
    assert again == []
    first.refresh_from_db()
    assert first.duplicate_count == 1
    # Another URL is another report.
    _, [other] = file_mail(url_mail("http://other-phish.example.net/x", msgid="<p-3@phish-watch.example>"))
    assert other.ip is None and other.url == "http://other-phish.example.net/x"


@pytest.mark.django_db
def test_a_host_that_resolves_wins_over_one_that_does_not(dns_server):
    dns_server.add("live-phish.example.net", "A", "198.51.100.44")
    customer_with("198.51.100.0/24", "PHISH-1", valid_from=datetime(2020, 1, 1, tzinfo=UTC))
    extra = "Also: http://live-phish.example.net/bank/\r\n"
    _, reports = file_mail(url_mail(extra=extra))
    # Only labelled lines count when there are any; the unlabelled second URL is not read.
    assert [r.ip for r in reports] == [None]
    _, reports = file_mail(
        url_mail(extra="Phishing URL: http://live-phish.example.net/bank/\r\n", msgid="<p-4@phish-watch.example>")
    )
    assert [(r.ip, r.customer.account) for r in reports] == [("198.51.100.44", "PHISH-1")]


def test_the_parser_marks_the_event_and_keeps_one_per_host(dns_server):
    twice = url_mail(extra=f"Phishing URL: {URL}?again=1\r\n")
    [event] = parse(twice, received_at=RECEIVED_AT).events
    assert (event.ip, event.url) == ("", URL)
    assert event.unresolved.endswith("does not exist (NXDOMAIN)")
    assert event.as_dict()["unresolved"] == event.unresolved
