"""The admin: dates as the desk writes them, a customer page that stays small, a case list that fits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import formats

from cases.models import Case
from customers import admin as customers_admin
from customers.models import Allocation, Customer
from tests.cases.ladder_builders import make_case
from tests.customers.factories import make_allocation, make_customer

T = datetime(2026, 11, 30, 14, 2, 5, tzinfo=UTC)


@pytest.fixture
def admin_client(admin_user_role) -> Client:
    client = Client()
    client.force_login(admin_user_role)
    return client


def leases(customer: Customer, n: int) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    Allocation.objects.bulk_create(
        Allocation(
            customer=customer,
            # A /16 of its own per customer: two customers' leases never collide.
            network=f"100.{64 + customer.pk % 60}.{i // 250}.{i % 250 + 1}/32",
            family=4,
            prefixlen=32,
            valid_from=start + timedelta(hours=i),
            valid_to=start + timedelta(hours=i + 1),
            source="lease",
        )
        for i in range(n)
    )


# --- one date format ------------------------------------------------------------------------------


def test_the_admin_lists_show_iso_dates_in_utc_with_the_zone(admin_client):
    make_allocation("192.0.2.0/29", valid_from=T)
    page = admin_client.get("/admin/customers/allocation/").content.decode()
    assert "2026-11-30 14:02:05 UTC" in page
    case = make_case()
    Case.objects.filter(pk=case.pk).update(last_report_at=T)
    page = admin_client.get("/admin/cases/case/").content.decode()
    assert "2026-11-30 14:02:05 UTC" in page


def test_the_format_settings_match_the_desk_filter():
    from cases.templatetags.desk_format import isotime

    assert formats.date_format(T, "DATETIME_FORMAT") == isotime(T) == "2026-11-30 14:02:05 UTC"
    assert formats.date_format(T.date(), "DATE_FORMAT") == "2026-11-30"


# --- the customer page ------------------------------------------------------------------------------


def test_the_customer_page_links_to_its_allocations_with_a_count(admin_client):
    customer = make_customer("R-7001")
    leases(customer, 120)
    response = admin_client.get(f"/admin/customers/customer/{customer.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert f'href="/admin/customers/allocation/?customer__id__exact={customer.pk}"' in page
    assert "120 allocations" in page
    assert f"/admin/customers/allocation/add/?customer={customer.pk}" in page
    # No allocation rows on the page itself.
    assert f"100.{64 + customer.pk % 60}.0.1/32" not in page
    assert not [f for f in response.context["inline_admin_formsets"] if f.formset.model is Allocation]


def test_the_count_stops_at_its_limit(admin_client, monkeypatch):
    monkeypatch.setattr(customers_admin, "ALLOCATION_COUNT_LIMIT", 10)
    customer = make_customer("R-7002")
    leases(customer, 25)
    page = admin_client.get(f"/admin/customers/customer/{customer.pk}/change/").content.decode()
    assert "more than 10 allocations" in page


def test_the_customer_page_costs_the_same_with_many_leases(admin_client):
    def queries(customer: Customer) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get(f"/admin/customers/customer/{customer.pk}/change/").status_code == 200
        return len(ctx)

    few, many = make_customer("R-7003"), make_customer("R-7004")
    leases(few, 2)
    leases(many, 600)
    assert queries(few) == queries(many)


def test_the_allocation_add_link_preselects_the_customer(admin_client):
    customer = make_customer("R-7005")
    response = admin_client.get(f"/admin/customers/allocation/add/?customer={customer.pk}")
    assert response.context["adminform"].form.initial["customer"] == str(customer.pk)


# --- the case list ---------------------------------------------------------------------------------


def test_the_case_list_shows_few_columns_without_a_query_per_row(admin_client):
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = admin_client.get("/admin/cases/case/")
            assert response.status_code == 200
        return len(ctx)

    make_case()
    few = queries()
    for _ in range(15):
        make_case()
    assert queries() == few
    response = admin_client.get("/admin/cases/case/")
    headers = [str(h["text"]).lower() for h in response.context["result_headers"]]
    assert headers == ["case · customer", "category", "status", "rung", "reports", "last report at"]


# --- the one relaxed policy ----------------------------------------------------------------------


def test_only_the_notice_preview_allows_style_attributes(admin_client):
    case = make_case()
    response = admin_client.get(f"/admin/cases/noticetemplate/preview/?kind=first_notice&preview_case={case.pk}")
    assert response.status_code == 200
    header = response.headers["Content-Security-Policy"]
    assert "style-src-attr 'unsafe-inline'" in header
    assert "script-src 'self';" in header and "style-src 'self';" in header
    assert 'iframe class="notice-html" sandbox=""' in response.content.decode()
    other = admin_client.get("/admin/cases/noticetemplate/")
    assert "unsafe-inline" not in other.headers["Content-Security-Policy"]
