"""Reading through the API: cases (filters, cursor pages), one case, customers, messages, resolve."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cases.models import Case, CaseEvent, Report, Rung, UnassignedReason
from customers.models import Contact
from tests.cases.ladder_builders import make_case, make_notice
from tests.customers.factories import make_allocation, make_customer

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 3, 14, 2, tzinfo=UTC)


def case_at(account: str, ip: str, *, category="spam", status="open", rung=Rung.NONE, at=T0) -> Case:
    customer = make_customer(account)
    case = Case.objects.create(
        customer=customer, category=category, status=status, rung=rung, first_report_at=at, last_report_at=at
    )
    Report.objects.create(case=case, customer=customer, ip=ip, occurred_at=at, category=category, dedupe_key=ip)
    return case


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [c["id"] for c in response.json()["results"]]


@pytest.fixture
def cases():
    return {
        "a": case_at("R-1", "198.51.100.7", at=datetime(2026, 10, 1, tzinfo=UTC)),
        "b": case_at("R-2", "198.51.100.200", category="phishing", rung=Rung.WARNING),
        "c": case_at("R-3", "2001:db8::1", status="resolved", rung=Rung.FIRST_NOTICE),
    }


def test_cases_filter_by_status_rung_customer_category_ip_cidr_and_dates(api, cases):
    client = api("read")
    a, b, c = cases["a"].pk, cases["b"].pk, cases["c"].pk
    assert ids(client.get("/api/v1/cases/")) == [c, b, a]  # newest first
    assert ids(client.get("/api/v1/cases/?status=open")) == [b, a]
    assert ids(client.get("/api/v1/cases/?status=open,resolved")) == [c, b, a]
    assert ids(client.get("/api/v1/cases/?rung=warning&rung=first_notice")) == [c, b]
    assert ids(client.get("/api/v1/cases/?customer=R-2")) == [b]
    assert ids(client.get("/api/v1/cases/?category=phishing")) == [b]
    assert ids(client.get("/api/v1/cases/?ip=198.51.100.7")) == [a]
    assert ids(client.get("/api/v1/cases/?ip=198.51.100.0/24")) == [b, a]
    assert ids(client.get("/api/v1/cases/?ip=198.51.100.128/25")) == [b]
    assert ids(client.get("/api/v1/cases/?ip=2001:db8::/32")) == [c]
    assert ids(client.get("/api/v1/cases/?ip=::ffff:198.51.100.7")) == [a]
    assert ids(client.get("/api/v1/cases/?since=2026-11-01T00:00:00Z")) == [c, b]
    assert ids(client.get("/api/v1/cases/?until=2026-11-01T00:00:00Z")) == [a]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=closed", "status"),
        ("rung=top", "rung"),
        ("category=rude", "category"),
        ("ip=198.51.100", "ip"),
        ("since=last+week", "since"),
        ("page_size=0", "page_size"),
        ("colour=red", "colour"),
    ],
)
def test_a_bad_filter_is_a_400_naming_it(api, cases, query, field):
    response = api("read").get(f"/api/v1/cases/?{query}")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_cursor_pages_walk_every_case_once(api):
    made = [case_at(f"R-{n}", f"198.51.100.{n}").pk for n in range(1, 8)]
    client = api("read")
    seen, url = [], "/api/v1/cases/?page_size=3"
    while url:
        page = client.get(url).json()
        seen += [c["id"] for c in page["results"]]
        url = page["next"]
    assert seen == sorted(made, reverse=True)
    assert client.get("/api/v1/cases/?cursor=garbage").status_code == 404


def test_the_case_list_costs_the_same_few_queries_for_many_cases(api):
    for n in range(1, 12):
        case_at(f"R-{n}", f"198.51.100.{n}")
    client = api("read")
    client.get("/api/v1/cases/")  # the token's first use is recorded once (last_used_at)
    with CaptureQueriesContext(connection) as few:
        client.get("/api/v1/cases/?page_size=2")
    with CaptureQueriesContext(connection) as many:
        client.get("/api/v1/cases/?page_size=10")
    # The token, the cases with customers and assignees, the call log (in its own transaction on PostgreSQL).
    assert len(many) == len(few) <= 7


def test_one_case_shows_its_reports_events_and_notices(api, noc_user):
    case = make_case(rung=Rung.WARNING, reports=3)
    CaseEvent.objects.create(case=case, kind="note", note="phoned", actor_kind="user", actor=noc_user)
    notice = make_notice(case)
    body = api("read").get(f"/api/v1/cases/{case.pk}/").json()
    assert body["id"] == case.pk and body["rung"] == "warning" and body["customer"]["account"] == case.customer.account
    assert len(body["reports"]) == case.reports.count() >= 3
    assert {"kind": "note", "actor": "noc1", "note": "phoned"}.items() <= body["events"][-1].items()
    assert body["notices"][0]["id"] == notice.pk and "body" not in body["notices"][0]
    assert api("read").get("/api/v1/cases/999999/").json()["error"]["code"] == "not_found"


def test_a_url_report_shows_its_url_and_why_it_has_no_address(api):
    case = case_at("R-9", "198.51.100.9")
    Report.objects.create(
        case=case,
        customer=case.customer,
        ip=None,
        url="http://phish.example/login",
        occurred_at=T0,
        category="phishing",
        dedupe_key="phish",
        unassigned_reason=UnassignedReason.UNRESOLVED,
        resolution_note="Host name did not resolve",
    )
    reports = api("read").get(f"/api/v1/cases/{case.pk}/").json()["reports"]
    by_url = {r["url"]: r for r in reports}
    assert by_url["http://phish.example/login"]["ip"] is None
    assert by_url["http://phish.example/login"]["resolution_note"] == "Host name did not resolve"
    assert by_url[""]["ip"] == "198.51.100.9"


def test_customers_come_with_contacts_and_allocations(api):
    customer = make_customer("B-7", name="Corner Shop", kind="business")
    Contact.objects.create(customer=customer, email="it@shop.example")
    make_allocation("203.0.113.8/29", customer=customer)
    client = api("read")
    listed = client.get("/api/v1/customers/").json()["results"]
    assert [c["account"] for c in listed] == ["B-7"]
    one = client.get("/api/v1/customers/B-7/").json()
    assert one["kind"] == "business" and one["contacts"][0]["email"] == "it@shop.example"
    assert one["allocations"][0]["network"] == "203.0.113.8/29"
    assert client.get("/api/v1/customers/nobody/").status_code == 404


@pytest.mark.parametrize(
    "query",
    ["ip=198.51.100.7&at=2025-03-01T14:02:00Z", "ip=198.51.100.7&at=2019-03-01T14:02:00Z", "ip=2001:db8::9"],
)
def test_resolve_answers_exactly_as_resolve_ip_json(api, query):
    make_allocation("198.51.100.0/24", customer=make_customer("R-9"))
    params = dict(part.split("=") for part in query.split("&"))
    answer = api("read").get(f"/api/v1/resolve?{query}&port=4242")
    assert answer.status_code == 200
    out = io.StringIO()
    args = [params["ip"], "--json", "--port", "4242"] + (["--at", params["at"]] if "at" in params else [])
    call_command("resolve_ip", *args, stdout=out)
    expected = json.loads(out.getvalue())
    got = answer.json()
    if "at" not in params:  # "now" differs by the time between the two calls
        expected.pop("at"), got.pop("at")
    assert got == expected


@pytest.mark.parametrize("query", ["ip=198.51.100.300", "ip=198.51.100.7&at=soon", "ip=1.2.3.4&port=0", "at=now"])
def test_resolve_refuses_bad_input_with_a_400(api, query):
    response = api("read").get(f"/api/v1/resolve?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]
