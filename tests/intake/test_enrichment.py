"""Enrichment against a real DNS server on 127.0.0.1 (dnslib, tests/fixtures_services.py)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from django.utils import timezone

from abusedesk.lib import dns as adns
from cases.enrichment import enrich_report, look_up
from cases.models import Report
from cases.tasks_intake_io import enrich_report_task
from tests import fixtures_services
from tests.fixtures_services import reversed_ip

# Until tests/conftest.py loads tests.fixtures_services as a plugin (harmless after).
dns_server = fixtures_services.dns_server

ZEN = "zen.spamhaus.org"
SPAMCOP = "bl.spamcop.net"


def make_report(ip: str, **fields) -> Report:
    return Report.objects.create(
        ip=ip, occurred_at=timezone.now(), category="spam", dedupe_key=f"k-{ip}-{time.monotonic_ns()}", **fields
    )


@pytest.fixture
def silent_dns_port(settings) -> Iterator[int]:
    """A UDP port on 127.0.0.1 that takes queries and never answers them."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    settings.DNS_NAMESERVERS = ["127.0.0.1"]
    settings.DNS_PORT = sock.getsockname()[1]
    settings.DNS_TIMEOUT = 0.3
    adns.clear_cache()
    yield sock.getsockname()[1]
    sock.close()
    adns.clear_cache()


def test_reverse_name_finds_the_ptr(dns_server):
    dns_server.add_ptr("198.51.100.7", "host-7.dsl.isp.example")
    assert adns.reverse_name("198.51.100.7") == "host-7.dsl.isp.example"
    assert dns_server.query_count("7.100.51.198.in-addr.arpa", "PTR") == 1


def test_an_ip_without_ptr_has_no_name(dns_server):
    assert adns.reverse_name("198.51.100.8") is None


def test_dnsbl_listed_and_not_listed(dns_server):
    dns_server.list_ip("198.51.100.7", ZEN, "127.0.0.2", reason="https://www.spamhaus.org/query/ip/198.51.100.7")
    dns_server.list_ip("198.51.100.7", ZEN, "127.0.0.4")
    listings = adns.dnsbl_listings("198.51.100.7", [ZEN, SPAMCOP])
    assert listings == {
        ZEN: ["127.0.0.2", "127.0.0.4", "https://www.spamhaus.org/query/ip/198.51.100.7"],
        SPAMCOP: [],
    }
    assert dns_server.query_count(f"7.100.51.198.{ZEN}", "A") == 1
    assert dns_server.query_count(f"7.100.51.198.{SPAMCOP}", "A") == 1
    # Not listed: no reason is asked for.
    assert dns_server.query_count(f"7.100.51.198.{SPAMCOP}", "TXT") == 0


def test_ipv6_uses_nibble_names(dns_server):
    ip = "2001:db8::25"
    dns_server.add_ptr(ip, "mail.customer.example")
    dns_server.list_ip(ip, ZEN, "127.0.0.3")
    assert adns.reverse_name(ip) == "mail.customer.example"
    assert adns.dnsbl_listings(ip, [ZEN]) == {ZEN: ["127.0.0.3"]}
    nibbles = "5.2.0.0." + "0.0.0.0." * 5 + "8.b.d.0.1.0.0.2"
    assert reversed_ip(ip) == nibbles
    assert dns_server.query_count(f"{nibbles}.{ZEN}", "A") == 1


def test_an_ipv4_mapped_address_is_looked_up_as_ipv4(dns_server):
    dns_server.list_ip("198.51.100.9", SPAMCOP)
    assert adns.dnsbl_listings("::ffff:198.51.100.9", [SPAMCOP]) == {SPAMCOP: ["127.0.0.2"]}


def test_a_refusal_code_is_not_a_listing(dns_server):
    # What Spamhaus answers to queries through public resolvers.
    dns_server.list_ip("198.51.100.10", ZEN, "127.255.255.254")
    with pytest.raises(adns.DnsblRefused):
        adns.dnsbl_listings("198.51.100.10", [ZEN])


def test_bad_addresses_raise_value_error_and_enrichment_records_them(dns_server):
    with pytest.raises(ValueError):
        adns.reverse_name("300.1.1.1")
    ptr, dnsbl, errors = look_up("not-an-ip", [ZEN])
    assert (ptr, dnsbl) == ("", {})
    assert errors and "not an IP address" in errors[0]
    assert dns_server.queries == []


def test_answers_are_cached_for_their_ttl(dns_server):
    dns_server.add_ptr("198.51.100.7", "host-7.dsl.isp.example", ttl=300)
    dns_server.add_ptr("198.51.100.11", "short.isp.example", ttl=1)
    for _ in range(3):
        assert adns.reverse_name("198.51.100.7") == "host-7.dsl.isp.example"
        assert adns.reverse_name("198.51.100.11") == "short.isp.example"
        # NXDOMAIN is cached too (for the SOA minimum the server sends).
        assert adns.dnsbl_listings("198.51.100.7", [SPAMCOP]) == {SPAMCOP: []}
    assert dns_server.query_count("7.100.51.198.in-addr.arpa", "PTR") == 1
    assert dns_server.query_count("11.100.51.198.in-addr.arpa", "PTR") == 1
    assert dns_server.query_count(f"7.100.51.198.{SPAMCOP}", "A") == 1
    time.sleep(1.2)  # past the 1 s TTL, not the 300 s one
    adns.reverse_name("198.51.100.11")
    adns.reverse_name("198.51.100.7")
    assert dns_server.query_count("11.100.51.198.in-addr.arpa", "PTR") == 2
    assert dns_server.query_count("7.100.51.198.in-addr.arpa", "PTR") == 1


def test_ttl_zero_is_not_cached(dns_server):
    dns_server.add_ptr("198.51.100.12", "volatile.isp.example", ttl=0)
    adns.reverse_name("198.51.100.12")
    adns.reverse_name("198.51.100.12")
    assert dns_server.query_count("12.100.51.198.in-addr.arpa", "PTR") == 2


def test_the_cache_stays_under_its_cap(dns_server, monkeypatch):
    monkeypatch.setattr(adns, "MAX_CACHE_ENTRIES", 20)
    for n in range(60):
        adns.reverse_name(f"203.0.113.{n}")
    assert adns.cache_size() <= 20
    assert len(dns_server.queries) == 60
    # The newest answers survived the trimming.
    adns.reverse_name("203.0.113.59")
    assert len(dns_server.queries) == 60


def test_a_silent_server_raises_dns_timeout(silent_dns_port):
    started = time.monotonic()
    with pytest.raises(adns.DnsTimeout):
        adns.reverse_name("198.51.100.7")
    assert time.monotonic() - started < 2
    # Marked down for a while: the next look-up fails at once instead of waiting again.
    started = time.monotonic()
    with pytest.raises(adns.DnsTimeout):
        adns.dnsbl_listings("198.51.100.7", [ZEN])
    assert time.monotonic() - started < 0.1


@pytest.mark.django_db
def test_enrich_report_stores_ptr_and_listings(dns_server, settings):
    settings.DNSBL_ZONES = [ZEN, SPAMCOP]
    dns_server.add_ptr("198.51.100.7", "host-7.dsl.isp.example")
    dns_server.list_ip("198.51.100.7", SPAMCOP, "127.0.0.2", reason="Listed by SpamCop")
    report = make_report("198.51.100.7")
    enrich_report(report.pk)
    report.refresh_from_db()
    assert report.ptr == "host-7.dsl.isp.example"
    assert report.dnsbl == {ZEN: [], SPAMCOP: ["127.0.0.2", "Listed by SpamCop"]}
    assert report.enrichment_error == ""
    assert report.enriched_at is not None and report.enriched_at <= timezone.now()


@pytest.mark.django_db
def test_enriching_twice_does_not_ask_again(dns_server, settings):
    settings.DNSBL_ZONES = [ZEN]
    dns_server.add_ptr("198.51.100.7", "host-7.dsl.isp.example")
    report = make_report("198.51.100.7")
    enrich_report(report.pk)
    first = Report.objects.get(pk=report.pk).enriched_at
    asked = len(dns_server.queries)
    adns.clear_cache()  # so only the "enriched recently" rule can spare the second look-up
    enrich_report_task.delay(report.pk)
    assert len(dns_server.queries) == asked
    assert Report.objects.get(pk=report.pk).enriched_at == first
    enrich_report(report.pk, force=True)
    assert len(dns_server.queries) > asked


@pytest.mark.django_db
def test_reports_of_the_same_ip_waiting_for_enrichment_get_the_answers(dns_server, settings):
    settings.DNSBL_ZONES = [ZEN]
    dns_server.add_ptr("198.51.100.7", "host-7.dsl.isp.example")
    first, second = make_report("198.51.100.7"), make_report("198.51.100.7")
    other = make_report("198.51.100.99")
    enrich_report(first.pk)
    assert Report.objects.get(pk=second.pk).ptr == "host-7.dsl.isp.example"
    assert Report.objects.get(pk=other.pk).enriched_at is None


@pytest.mark.django_db
def test_a_timeout_is_recorded_not_raised(silent_dns_port, settings):
    settings.DNSBL_ZONES = [ZEN, SPAMCOP]
    report = make_report("198.51.100.7")
    enrich_report_task.delay(report.pk)
    report.refresh_from_db()
    assert report.enriched_at is not None
    assert report.ptr == ""
    assert report.dnsbl == {}
    assert "PTR" in report.enrichment_error and ZEN in report.enrichment_error
    assert len(report.enrichment_error) <= 255


@pytest.mark.django_db
def test_a_report_with_an_error_is_tried_again(dns_server, settings):
    settings.DNSBL_ZONES = [ZEN]
    report = make_report("198.51.100.7", enriched_at=timezone.now(), enrichment_error="PTR: timed out")
    dns_server.add_ptr("198.51.100.7", "host-7.dsl.isp.example")
    enrich_report(report.pk)
    report.refresh_from_db()
    assert report.ptr == "host-7.dsl.isp.example"
    assert report.enrichment_error == ""


@pytest.mark.django_db
def test_a_missing_report_is_ignored(dns_server):
    enrich_report(987654)
    assert dns_server.queries == []
