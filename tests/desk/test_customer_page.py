"""The desk's customer page (contacts, standing, allocations now and past, cases, the escalation
timeline) and the IP look-up at a given time, for every role; the allocations list pages in SQL with
no COUNT and a query count that does not grow; the look-up refuses bad input with a message."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cases.models import CaseStatus
from customers.models import Allocation, Contact, Customer, StandingChange
from customers.views import ALLOCATIONS_PER_PAGE
from tests.cases.ladder_builders import make_case
from tests.conftest import make_user
from tests.customers.factories import make_allocation, make_customer

pytestmark = pytest.mark.django_db

# "Who held this address at 14:02 last Tuesday": one line, two leases either side of 14:00.
TUESDAY = datetime(2026, 11, 24, tzinfo=UTC)


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def _leases(customer: Customer, n: int, *, network: str = "100.64.{}.{}/32", now=None) -> None:
    """n past hour-long leases (newest first by valid_from), written in one statement."""
    now = now or timezone.now()
    rows = []
    for i in range(n):
        start = now - timedelta(hours=2 * (i + 1))
        a = Allocation(
            customer=customer,
            network=network.format(i // 250, i % 250),
            valid_from=start,
            valid_to=start + timedelta(hours=1),
            source="lease",
        )
        a.set_network_fields()
        rows.append(a)
    Allocation.objects.bulk_create(rows)


@pytest.fixture
def line() -> Customer:
    """A residential line: a contact, one current lease, a warned standing, an old resolved case."""
    customer = make_customer("R-8001", name="Jan de Vries")
    Contact.objects.create(customer=customer, email="jan@home.example", name="Jan")
    Contact.objects.create(customer=customer, email="billing@home.example", receives_notices=False)
    make_allocation("198.51.100.77/32", customer=customer, valid_from=TUESDAY - timedelta(days=30), source="lease")
    StandingChange.objects.create(customer=customer, old="good", new="warned", actor_label="the ladder", reason="spam")
    Customer.objects.filter(pk=customer.pk).update(standing="warned")
    customer.refresh_from_db()
    return customer


# --- who may open it --------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["noc", "manager", "admin"])
def test_each_desk_role_opens_the_customer_page_and_the_lookup(client, line, role):
    client.force_login(make_user(f"{role}-c", role))
    assert client.get(reverse("customers:customer_detail", args=[line.pk])).status_code == 200
    assert client.get(reverse("customers:customer_lookup")).status_code == 200
    response = client.get(reverse("customers:customer_lookup"), {"ip": "198.51.100.77", "at": ""})
    assert response.status_code == 200 and response.context["held"].customer == line


def test_anonymous_users_are_sent_to_log_in(client, line):
    for url in (reverse("customers:customer_detail", args=[line.pk]), reverse("customers:customer_lookup")):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_user_without_a_role_is_refused(client, line, norole_user):
    client.force_login(norole_user)
    assert client.get(reverse("customers:customer_detail", args=[line.pk])).status_code == 403
    assert client.get(reverse("customers:customer_lookup"), {"ip": "198.51.100.77"}).status_code == 403


def test_a_missing_customer_is_404(client, noc_user):
    client.force_login(noc_user)
    assert client.get(reverse("customers:customer_detail", args=[999999])).status_code == 404


# --- what it shows ----------------------------------------------------------------------------


def test_it_shows_contacts_standing_cases_and_embeds_the_timeline(client, noc_user, line):
    open_case = make_case(customer=line, category="spam")
    old_case = make_case(customer=line, category="scanning")
    old_case.status = CaseStatus.RESOLVED
    old_case.assignee = noc_user
    old_case.save()
    client.force_login(noc_user)
    response = client.get(reverse("customers:customer_detail", args=[line.pk]))
    page = response.content.decode()
    text = text_of(response)
    assert "jan@home.example (Jan)" in text and "billing@home.example no notices" in text
    assert "standing: warned" in text and "good → warned, by the ladder: spam" in text
    assert {c.pk for c in response.context["cases"]} == {open_case.pk, old_case.pk}
    assert open_case.reference in text and old_case.reference in text and "Resolved" in text
    timeline = reverse("cases:customer_timeline", args=[line.pk])
    assert f'hx-get="{timeline}"' in page and 'hx-select="#customer-timeline"' in page
    assert f'href="{timeline}"' in page  # without JavaScript, the link
    assert "198.51.100.77/32" in text and "now" in text


def test_the_admin_link_is_for_staff_only(client, line, noc_user, admin_user_role):
    client.force_login(noc_user)
    url = reverse("customers:customer_detail", args=[line.pk])
    assert "edit in the admin" not in client.get(url).content.decode()
    client.force_login(admin_user_role)
    assert "edit in the admin" in client.get(url).content.decode()


# --- allocations: now and past, paginated in SQL ----------------------------------------------


def test_allocations_page_through_thousands_of_leases_without_counting(client, noc_user, line):
    _leases(line, 2 * ALLOCATIONS_PER_PAGE + 20)
    client.force_login(noc_user)
    url = reverse("customers:customer_detail", args=[line.pk])
    with CaptureQueriesContext(connection) as queries:
        first = client.get(url)
    allocation_sql = [q["sql"] for q in queries.captured_queries if "customers_allocation" in q["sql"]]
    assert allocation_sql and not any("COUNT(" in sql.upper() for sql in allocation_sql)
    rows = first.context["allocations"].rows
    assert len(rows) == ALLOCATIONS_PER_PAGE and first.context["allocations"].has_next
    assert rows[0].network == "100.64.0.0/32" and not rows[0].is_current  # the latest lease first
    assert [r.valid_from for r in rows] == sorted((r.valid_from for r in rows), reverse=True)
    last = client.get(url, {"ap": 3})
    assert len(last.context["allocations"].rows) == 21 and not last.context["allocations"].has_next
    assert 'rel="prev"' in last.content.decode() and 'rel="next"' not in last.content.decode()
    seen = {r.pk for p in (1, 2, 3) for r in client.get(url, {"ap": p}).context["allocations"].rows}
    assert len(seen) == 2 * ALLOCATIONS_PER_PAGE + 21


def test_now_and_past_filter_the_allocations(client, noc_user, line):
    _leases(line, 3)
    client.force_login(noc_user)
    url = reverse("customers:customer_detail", args=[line.pk])
    now = client.get(url, {"alloc": "now"}).context["allocations"].rows
    assert [r.network for r in now] == ["198.51.100.77/32"]
    past = client.get(url, {"alloc": "past"}).context["allocations"].rows
    assert len(past) == 3 and not any(r.is_current for r in past)
    assert client.get(url, {"alloc": "nonsense", "ap": "x"}).status_code == 200


def test_the_customer_page_query_count_does_not_grow_with_allocations_or_cases(
    client, noc_user, line, django_assert_num_queries
):
    _leases(line, 5)
    make_case(customer=line)
    client.force_login(noc_user)
    url = reverse("customers:customer_detail", args=[line.pk])
    client.get(url)
    with CaptureQueriesContext(connection) as small:
        client.get(url)
    _leases(line, 3 * ALLOCATIONS_PER_PAGE, network="100.65.{}.{}/32", now=timezone.now() - timedelta(days=30))
    for category in ("malware", "botnet", "phishing", "ddos"):
        make_case(customer=line, category=category)
    with django_assert_num_queries(len(small)):
        response = client.get(url)
    assert len(response.context["allocations"].rows) == ALLOCATIONS_PER_PAGE
    assert len(small) <= 12, [q["sql"] for q in small.captured_queries]


# --- the look-up ------------------------------------------------------------------------------


@pytest.fixture
def tuesday_leases() -> tuple[Customer, Customer]:
    before = make_customer("R-8101", name="Morning")
    after = make_customer("R-8102", name="Afternoon")
    make_allocation(
        "203.0.113.50/32",
        customer=before,
        valid_from=TUESDAY + timedelta(hours=6),
        valid_to=TUESDAY + timedelta(hours=14),
        source="lease",
    )
    make_allocation(
        "203.0.113.50/32",
        customer=after,
        valid_from=TUESDAY + timedelta(hours=14),
        valid_to=TUESDAY + timedelta(hours=20),
        source="lease",
    )
    return before, after


def lookup(client, **params):
    return client.get(reverse("customers:customer_lookup"), params)


def test_it_says_who_held_an_address_at_1402_last_tuesday(client, noc_user, tuesday_leases):
    before, after = tuesday_leases
    client.force_login(noc_user)
    response = lookup(client, ip="203.0.113.50", at="2026-11-24T14:02")
    assert response.status_code == 200
    assert response.context["held"].customer == after
    assert response.context["at"] == TUESDAY + timedelta(hours=14, minutes=2)
    page = response.content.decode()
    assert reverse("customers:customer_detail", args=[after.pk]) in page
    assert [a.customer for a in response.context["history"]] == [after, before]
    assert lookup(client, ip="203.0.113.50", at="2026-11-24T13:59:59").context["held"].customer == before
    # The same instant written with its zone, and an IPv4-mapped IPv6 address.
    assert lookup(client, ip="::ffff:203.0.113.50", at="2026-11-24T15:02+01:00").context["held"].customer == after


def test_nobody_then_and_outside_our_space_are_told_apart(client, noc_user, tuesday_leases):
    client.force_login(noc_user)
    nobody = lookup(client, ip="203.0.113.50", at="2026-11-24T22:00")
    assert nobody.context["held"] is None and "Nobody held it then." in text_of(nobody)
    assert "outside our address space" not in text_of(nobody)
    outside = lookup(client, ip="192.0.2.200", at="2026-11-24T22:00")
    assert "outside our address space" in text_of(outside)


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"ip": "not-an-ip"}, "is not a valid IPv4 or IPv6 address"),
        ({"ip": "999.1.1.1"}, "is not a valid IPv4 or IPv6 address"),
        ({"ip": "fe80::1%eth0"}, "zone id"),
        ({"ip": "203.0.113.0/24"}, "one address, not a network"),
        ({"ip": ""}, "This field is required"),
        ({"ip": "203.0.113.50", "at": "0001-01-01T00:00"}, "before 1990"),
        ({"ip": "203.0.113.50", "at": "0001-01-01T00:00+05:00"}, "out of range"),
        ({"ip": "203.0.113.50", "at": "2026-13-45T99:99"}, "YYYY-MM-DD HH:MM"),
        ({"ip": "203.0.113.50", "at": "last tuesday"}, "YYYY-MM-DD HH:MM"),
        ({"ip": "203.0.113.50", "at": "9999-12-31T23:59"}, "in the future"),
        ({"ip": "203.0.113.50", "port": "70000"}, "less than or equal to 65535"),
    ],
)
def test_bad_input_is_refused_with_a_message_never_a_500(client, noc_user, params, error):
    client.force_login(noc_user)
    response = lookup(client, **params)
    assert response.status_code == 400
    assert error in text_of(response)
    assert "held" not in response.context


def test_the_lookup_form_is_on_the_customer_page_and_sends_a_get(client, noc_user, line):
    client.force_login(noc_user)
    page = client.get(reverse("customers:customer_detail", args=[line.pk])).content.decode()
    form = page[page.index('class="customer-lookup') - 200 :]
    assert 'method="get"' in form[: form.index(">") + 200]
    assert f'action="{reverse("customers:customer_lookup")}"' in page


def test_the_case_page_links_the_customer_page(client, noc_user, line):
    case = make_case(customer=line)
    client.force_login(noc_user)
    page = client.get(case.get_absolute_url()).content.decode()
    assert f'href="{reverse("customers:customer_detail", args=[line.pk])}"' in page
