"""The queue's search box (cases.search): case references, addresses, CIDR networks, customers,
reporters and words in the evidence, on SQLite and on PostgreSQL (inet ranges, full-text index)."""

from __future__ import annotations

import ipaddress

import pytest
from django.db import connection
from django.db.models import Q
from django.urls import reverse

from cases import search
from cases.models import Case, Report
from cases.services.filing import record_reports
from customers.models import Contact, Customer
from tests.cases.helpers import customer_with, event

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("term", "kind", "value"),
    [
        ("AD-123", "case", 123),
        ("ad-7", "case", 7),
        ("#42", "case", 42),
        ("100.64.1.7", "ip", ipaddress.ip_address("100.64.1.7")),
        ("::ffff:100.64.1.7", "ip", ipaddress.ip_address("100.64.1.7")),
        ("100.64.0.0/22", "network", ipaddress.ip_network("100.64.0.0/22")),
        ("100.64.1.9/22", "network", ipaddress.ip_network("100.64.0.0/22")),
        ("2001:db8::/32", "network", ipaddress.ip_network("2001:db8::/32")),
        ("reporter:fbl@mail.example", "reporter", "fbl@mail.example"),
        ("abuse@home.example", "email", "abuse@home.example"),
        ('"failed logins"', "text", "failed logins"),
        ("text: failed logins", "text", "failed logins"),
        ("12345", "words", "12345"),
        ("Customer B", "words", "Customer B"),
        ("", "", None),
    ],
)
def test_a_search_term_is_read_as_what_it_looks_like(term, kind, value):
    parsed = search.parse(term)
    assert (parsed.kind, parsed.value) == (kind, value)


@pytest.fixture
def spread(db) -> dict[str, Case]:
    """Four customers: three inside 100.64.0.0/22, one just outside it, one on IPv6."""
    nets = {"IN-0": "100.64.0.0/24", "IN-2": "100.64.2.0/24", "IN-3": "100.64.3.0/24", "OUT": "100.64.4.0/24"}
    for account, net in nets.items():
        customer_with(net, account)
    customer_with("2001:db8:1::/48", "V6")
    record_reports(
        [
            event("100.64.0.9", reporter="fbl@mail.example", evidence="About 3,000 failed logins on sshd"),
            event("100.64.2.200", reporter="reports@spamcop.example", evidence="Spam run, 40 messages"),
            event("100.64.3.255", reporter="Person@Home.example", evidence="port scan of 22/tcp"),
            event("100.64.4.0", reporter="fbl@mail.example", evidence="phishing page hosted"),
            event("2001:db8:1::5", reporter="cert@cert.example", evidence="botnet sinkhole hit"),
        ]
    )
    Contact.objects.create(customer=Case.objects.get(customer__account="IN-2").customer, email="Ops@Shop.example")
    return {c.customer.account: c for c in Case.objects.select_related("customer")}


def found(term: str) -> list[str]:
    cases = search.filter_cases(Case.objects.all(), search.parse(term))
    return sorted(cases.values_list("customer__account", flat=True))


@pytest.mark.parametrize(
    ("term", "accounts"),
    [
        ("100.64.0.0/22", ["IN-0", "IN-2", "IN-3"]),
        ("100.64.2.0/23", ["IN-2", "IN-3"]),
        ("100.64.0.0/16", ["IN-0", "IN-2", "IN-3", "OUT"]),
        ("100.0.0.0/8", ["IN-0", "IN-2", "IN-3", "OUT"]),
        ("100.64.4.0/30", ["OUT"]),
        ("100.64.3.255", ["IN-3"]),
        ("100.65.0.0/16", []),
        ("2001:db8::/32", ["V6"]),
        ("2001:db8:2::/48", []),
        ("0.0.0.0/0", ["IN-0", "IN-2", "IN-3", "OUT"]),
    ],
)
def test_an_address_or_a_network_finds_the_cases_with_reports_inside_it(spread, term, accounts):
    assert found(term) == accounts


def test_a_case_reference_finds_that_case(spread):
    case = spread["IN-3"]
    assert found(case.reference) == ["IN-3"]
    assert found(f"#{case.pk}") == ["IN-3"]
    assert found("AD-999999") == []


@pytest.mark.parametrize(
    ("term", "accounts"),
    [
        ("reporter:fbl@mail.example", ["IN-0", "OUT"]),
        ("reporter:FBL@MAIL.EXAMPLE", ["IN-0", "OUT"]),
        ("reporter:@spamcop.example", ["IN-2"]),
        ("person@home.example", ["IN-3"]),  # an e-mail address: a reporter's
        ("ops@shop.example", ["IN-2"]),  # or a contact's
        ("IN-3", ["IN-3"]),  # an account
        ("customer out", ["OUT"]),  # a name
    ],
)
def test_customers_and_reporters_are_found_by_address_account_or_name(spread, term, accounts):
    assert found(term) == accounts


@pytest.mark.parametrize(
    ("term", "accounts"),
    [
        ('"failed logins"', ["IN-0"]),
        ("sshd", ["IN-0"]),
        ("text:phishing", ["OUT"]),
        ("sinkhole", ["V6"]),
        ('"nothing like this"', []),
    ],
)
def test_words_in_the_evidence_find_their_cases(spread, term, accounts):
    assert found(term) == accounts


def test_the_queue_page_searches_by_cidr_and_says_what_it_searched(client, noc_user, spread):
    client.force_login(noc_user)
    response = client.get(reverse("cases:home"), {"q": "100.64.0.0/22"})
    assert sorted(c.customer.account for c in response.context["page"]) == ["IN-0", "IN-2", "IN-3"]
    assert "reports from inside the network" in response.content.decode()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans")
def test_on_postgresql_cidr_and_words_are_answered_from_indexes(spread):
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plans = {}
        for name, term in {
            "network": "100.64.0.0/16",
            "text": '"failed logins"',
            "reporter": "reporter:a@b.example",
        }.items():
            reports = Report.objects.filter(
                search.network_q(search.parse(term).value)
                if name == "network"
                else search.evidence_q(search.parse(term).value)
                if name == "text"
                else search.reporter_q(search.parse(term).value)
            ).order_by()  # no default ordering: a backward scan of an ordering index could look as cheap
            plans[name] = reports.explain()
        # Bitmap scans only: on a table this small a full scan of another index can look as cheap.
        cursor.execute("SET LOCAL enable_indexscan = off")
        customers = Customer.objects.filter(Q(account__iexact="in-3") | Q(name__icontains="shop"))
        plans["customer"] = customers.explain()
    assert "report_ip_case_idx" in plans["network"]
    assert "report_evidence_fts_idx" in plans["text"]
    assert "report_reporter_upper_idx" in plans["reporter"]
    assert "customer_account_upper_idx" in plans["customer"] and "customer_name_trgm_idx" in plans["customer"]


def test_a_very_long_search_is_cut_not_ignored(client, noc_user, spread):
    client.force_login(noc_user)
    response = client.get(reverse("cases:home"), {"q": "100.64.3.255" + " " * 300 + "x"})
    assert [c.customer.account for c in response.context["page"]] == ["IN-3"]
