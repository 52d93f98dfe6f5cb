"""Browser test: the desk's customer page on a phone (375 px wide). Nothing may stick out sideways
except inside a .table-responsive wrapper, which scrolls on its own; the allocation pages swap in
place with htmx; the look-up at a given time answers from the page's own form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from cases.models import Case, CaseStatus
from customers.models import Allocation, Contact, Customer
from tests.e2e.conftest import login

pytestmark = [pytest.mark.e2e]

PHONE = {"width": 375, "height": 812}
TUESDAY_1402 = datetime(2026, 11, 24, 14, 2, tzinfo=UTC)

# Elements wider than the viewport, or reaching past its right edge, outside a .table-responsive.
OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    if (el.closest(".table-responsive")) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    if (box.right > width + 1 || box.left < -1) {
      const name = `${el.tagName.toLowerCase()}#${el.id}.${[...el.classList].join(".")}`;
      out.push(`${name} ${Math.round(box.left)}..${Math.round(box.right)}`);
    }
  }
  return {width, scrollWidth: document.documentElement.scrollWidth, out};
}"""


@pytest.fixture
def line(roles) -> Customer:
    """A residential line with a long lease history, two cases and a long contact address."""
    customer = Customer.objects.create(account="R-900001", name="Jan de Vries-van der Berg", kind="residential")
    Contact.objects.create(customer=customer, email="jan.de.vries-van.der.berg.household@very-long-isp-domain.example")
    now = timezone.now()
    rows = []
    for i in range(120):
        start = now - timedelta(hours=6 * (i + 1))
        a = Allocation(
            customer=customer,
            network=f"2001:db8:ffff:{i:x}:1234:5678:9abc:def0/128" if i % 2 else f"100.64.{i // 200}.{i % 200}/32",
            valid_from=start,
            valid_to=start + timedelta(hours=5),
            source="lease",
            note="RADIUS session 0123456789abcdef0123456789abcdef",
        )
        a.set_network_fields()
        rows.append(a)
    tuesday = Allocation(
        customer=customer,
        network="203.0.113.50/32",
        valid_from=TUESDAY_1402 - timedelta(hours=2),
        valid_to=TUESDAY_1402 + timedelta(hours=2),
        source="lease",
    )
    tuesday.set_network_fields()
    rows.append(tuesday)
    Allocation.objects.bulk_create(rows)
    for category, status in (("spam", CaseStatus.OPEN), ("scanning", CaseStatus.RESOLVED)):
        Case.objects.create(
            customer=customer, category=category, status=status, first_report_at=now, last_report_at=now
        )
    return customer


def test_the_customer_page_fits_a_phone_and_pages_its_leases_in_place(
    browser_page, live_server, e2e_user, line, tmp_path
):
    page = browser_page
    login(page, live_server, e2e_user("noc"))
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/customers/{line.pk}/")
    # The escalation timeline is the cases app's page, loaded into this one by htmx.
    page.wait_for_selector("#customer-timeline-section #customer-timeline")
    assert "R-900001" in page.locator("h1").inner_text()
    assert page.locator("#allocation-rows tbody tr").count() == 50
    page.screenshot(path=str(tmp_path / "customer-page-375.png"), full_page=True)
    layout = page.evaluate(OVERFLOWING)
    assert layout["width"] == 375
    assert layout["out"] == [], layout["out"]
    assert layout["scrollWidth"] <= layout["width"], layout

    # The next page of leases swaps in place (htmx), and the address bar follows it.
    first_row = page.locator("#allocation-rows tbody tr").first.inner_text()
    page.click("#customer-allocations a[rel=next]")
    page.wait_for_url("**ap=2**")
    # Not wait_for_function: Playwright evals its predicate, which the page's CSP refuses.
    expect(page.locator("#allocation-rows tbody tr").first).not_to_have_text(first_row)
    assert page.locator("#customer-allocations .page-item.disabled").inner_text() == "Page 2"
    assert page.locator("#customer-timeline").count() == 1  # the rest of the page stayed
    assert page.evaluate(OVERFLOWING)["out"] == []

    # Who held 203.0.113.50 at 14:02 last Tuesday, from the page's own form.
    page.fill("#lookup_ip", "203.0.113.50")
    page.fill("#lookup_at", "2026-11-24T14:02")
    page.click("#customer-lookup [type=submit]")
    page.wait_for_selector("#lookup-result")
    assert "R-900001" in page.locator("#lookup-result").inner_text()
    page.screenshot(path=str(tmp_path / "lookup-375.png"), full_page=True)
    assert page.evaluate(OVERFLOWING)["out"] == []
    assert page.outside_requests == []


def test_from_the_case_page_assign_without_a_reload_then_open_the_customer_page(
    browser_page, live_server, e2e_user, line, tmp_path
):
    page = browser_page
    colleague = e2e_user("manager")  # managers hold the noc role too
    login(page, live_server, e2e_user("noc"))
    case = Case.objects.get(customer=line, category="spam")
    page.goto(f"{live_server.url}{case.get_absolute_url()}")
    # A mark on the window survives an htmx swap and dies with a full page load.
    page.evaluate("window.__kept = true")
    page.select_option("#assign_assignee", label=colleague.get_username())
    page.click("#case-assign [type=submit][value=Assign]")
    page.wait_for_selector(".alert-success")
    assert page.locator("#case-assignee").inner_text() == colleague.get_username()
    assert page.evaluate("window.__kept === true")
    assert f"assigned to {colleague.get_username()}, by noc-e2e" in page.locator("#case-history").inner_text()
    # Resolving needs the "I am sure" box: unticked, the server refuses it and says why.
    page.select_option("#status_status", "resolved")
    page.click("#case-status [type=submit]")
    page.wait_for_selector(".alert-danger >> text=I am sure")
    case.refresh_from_db()
    assert case.status == CaseStatus.OPEN
    page.select_option("#status_status", "resolved")
    page.check("#status_sure")
    page.click("#case-status [type=submit]")
    page.wait_for_selector(".alert-success >> text=Status changed.")
    assert page.locator("h1 + .badge").inner_text() == "Resolved"
    assert page.evaluate("window.__kept === true")
    page.screenshot(path=str(tmp_path / "case-resolved.png"), full_page=True)
    page.click("#case-customer-link")
    page.wait_for_url(f"**/customers/{line.pk}/")
    assert "R-900001" in page.locator("h1").inner_text()
    assert page.outside_requests == []
