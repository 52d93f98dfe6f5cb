from __future__ import annotations

from datetime import UTC, datetime

import pytest

from customers import services
from customers.models import Contact, Customer
from tests.e2e.conftest import SCREENSHOT_DIR, login

pytestmark = [pytest.mark.e2e]

T0 = datetime(2025, 1, 1, tzinfo=UTC)
T1 = datetime(2025, 2, 1, 6, 30, tzinfo=UTC)


@pytest.fixture
def two_holders(roles) -> None:
    """198.51.100.7: Bob until 1 February 06:30, Alice since."""
    alice = Customer.objects.create(account="R-1001", name="Alice Example", kind="residential")
    bob = Customer.objects.create(account="R-1002", name="Bob Sample", kind="residential")
    Contact.objects.create(customer=alice, email="alice@example.net")
    services.create_allocation(customer=bob, network="198.51.100.7/32", valid_from=T0, valid_to=T1, source="lease")
    services.create_allocation(customer=alice, network="198.51.100.7/32", valid_from=T1, source="lease")


def test_an_admin_finds_who_held_an_ip_through_the_admin(browser_page, live_server, e2e_user, two_holders):
    page = browser_page
    login(page, live_server, e2e_user("admin"))
    page.click("nav >> text=Admin")
    page.wait_for_url("**/admin/")
    page.click("a[href='/admin/customers/customer/']")
    page.fill("#searchbar", "198.51.100.7")
    page.press("#searchbar", "Enter")
    panel = page.locator("#ip-lookup")
    panel.wait_for()
    current = panel.locator("tr.ip-current").inner_text()
    earlier = panel.locator("tr.ip-earlier").inner_text()
    assert "R-1001 Alice Example" in current and "open" in current
    assert "R-1002 Bob Sample" in earlier
    assert "2025-01-01 00:00" in earlier and "2025-02-01 06:30" in earlier
    results = page.locator("#result_list tbody tr").all_inner_texts()
    assert len(results) == 2
    page.screenshot(path=str(SCREENSHOT_DIR / "abusedesk-admin-ip-search.png"), full_page=True)
    assert page.outside_requests == []


def test_noc_staff_sign_in_and_see_the_queue(browser_page, live_server, e2e_user):
    page = browser_page
    login(page, live_server, e2e_user("noc"))
    assert page.url == f"{live_server.url}/"
    assert page.locator("h1").first.inner_text() == "Queue"
    assert "noc-e2e" in page.locator("nav").inner_text()
    page.screenshot(path=str(SCREENSHOT_DIR / "abusedesk-queue.png"), full_page=True)
    assert page.outside_requests == []


def test_bootstrap_is_served_by_the_app_itself(browser_page, live_server, roles):
    page = browser_page
    responses = []
    page.on("response", lambda r: responses.append((r.url, r.status)))
    page.goto(f"{live_server.url}/accounts/login/")
    button = page.locator("button.btn-primary")
    # Bootstrap 5's primary colour and rounded corners: the stylesheet was loaded and applied.
    assert button.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(13, 110, 253)"
    assert button.evaluate("el => getComputedStyle(el).borderTopLeftRadius") != "0px"
    css = [(u, s) for u, s in responses if u.endswith("bootstrap.min.css")]
    assert css and all(s == 200 for _, s in css)
    assert all(u.startswith(live_server.url) for u, _ in responses)
    assert page.outside_requests == []
