from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

import pytest

from cases.models import Case
from customers import services
from customers.models import Allocation, Contact, Customer
from tests.cases.ladder_builders import make_case
from tests.e2e.conftest import E2E_PASSWORD, login

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


def test_an_admin_finds_who_held_an_ip_through_the_admin(browser_page, live_server, e2e_user, two_holders, tmp_path):
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
    page.screenshot(path=str(tmp_path / "admin-ip-search.png"), full_page=True)
    assert page.outside_requests == []


def test_noc_staff_sign_in_and_see_the_queue(browser_page, live_server, e2e_user, tmp_path):
    page = browser_page
    login(page, live_server, e2e_user("noc"))
    assert page.url == f"{live_server.url}/"
    assert page.locator("h1").first.inner_text() == "Queue"
    assert "noc-e2e" in page.locator("nav").inner_text()
    page.screenshot(path=str(tmp_path / "queue.png"), full_page=True)
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


# --- Content-Security-Policy, phone width, keyboard, the admin's size ---------------------------

# Chromium reports each refusal twice: a console error ("Refused to ...") and a
# securitypolicyviolation event; this script collects the events the page saw.
WATCH_CSP = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(
  e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + e.sourceFile + ':' + e.lineNumber));
"""


def watch_csp(page) -> list[str]:
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    page.add_init_script(WATCH_CSP)
    return refused


def csp_events(page) -> list[str]:
    return page.evaluate("window.__csp || []")


def overflows(page) -> int:
    """How many pixels the page is wider than the window (0: no horizontal scroll)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


@pytest.fixture
def busy_case(roles) -> Case:
    return make_case(reports=3)


def test_the_main_pages_break_no_content_security_policy_rule(browser_page, live_server, e2e_user, busy_case, tmp_path):
    page = browser_page
    refused = watch_csp(page)
    for url in ("/accounts/login/", "/admin/login/"):
        page.goto(f"{live_server.url}{url}")
        page.wait_for_load_state("networkidle")
        assert csp_events(page) == [], url
    login(page, live_server, e2e_user("admin"))
    customer = busy_case.customer
    pages = [
        "/",
        busy_case.get_absolute_url(),
        "/admin/",
        "/admin/cases/case/",
        f"/admin/cases/case/{busy_case.pk}/change/",
        f"/admin/customers/customer/{customer.pk}/change/",
        "/admin/customers/allocation/add/",
        "/admin/customers/customer/?q=198.51.100.7",
    ]
    seen = {}
    for url in pages:
        response = page.goto(f"{live_server.url}{url}")
        assert response.status == 200, url
        assert "default-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_load_state("networkidle")
        seen[url] = csp_events(page)
    # The admin's own widgets work under the policy: the calendar, the clock, the customer autocomplete.
    page.goto(f"{live_server.url}/admin/customers/allocation/add/")
    page.click("#calendarlink0")
    page.locator("#calendarbox0").wait_for(state="visible")
    page.click("#calendarbox0 .calendar-shortcuts a")  # "Today"
    assert page.input_value("#id_valid_from_0")
    page.click("#clocklink0")
    page.click("#clockbox0 .timelist a")  # "Now"
    assert page.input_value("#id_valid_from_1")
    page.click(".field-customer .select2-selection")
    page.keyboard.type(customer.account)
    page.locator(".select2-results__option", has_text=customer.account).wait_for()
    page.screenshot(path=str(tmp_path / "admin-allocation-add.png"), full_page=True)
    seen["widgets"] = csp_events(page)
    assert seen == {url: [] for url in [*pages, "widgets"]}
    assert refused == []
    assert page.outside_requests == []


def test_the_desk_works_at_a_phone_width(browser_page, live_server, e2e_user, busy_case, tmp_path):
    page = browser_page
    page.set_viewport_size({"width": 375, "height": 740})
    # A manager sees every desk page (the approval queue too).
    login(page, live_server, e2e_user("manager"))
    customer = busy_case.customer.pk
    pages = (
        "/",
        busy_case.get_absolute_url(),
        "/messages/",
        "/unassigned/",
        "/approvals/",
        "/numbers/",
        "/numbers/history/",
        f"/customers/{customer}/",
        f"/customers/{customer}/timeline/",
        "/complaints/new/",
        "/upload/",
    )
    loose = "[...document.querySelectorAll('main table')].filter(t => !t.closest('.table-responsive')).length"
    for url in pages:
        assert page.goto(f"{live_server.url}{url}").status == 200, url
        assert overflows(page) == 0, url
        # Tables scroll inside their own box instead of widening the page.
        assert page.evaluate(loose) == 0, url
    page.goto(f"{live_server.url}{busy_case.get_absolute_url()}")
    page.screenshot(path=str(tmp_path / "case-375.png"), full_page=True)
    # The navigation is folded behind the toggler, and opens from it.
    queue_link = page.locator("#main-nav >> text=Queue")
    assert not queue_link.is_visible()
    page.click("button.navbar-toggler")
    queue_link.wait_for(state="visible")
    assert page.locator("button.navbar-toggler").get_attribute("aria-expanded") == "true"
    page.screenshot(path=str(tmp_path / "nav-open-375.png"))
    assert page.outside_requests == []


def test_the_desk_is_reachable_by_keyboard(browser_page, live_server, e2e_user, busy_case):
    page = browser_page
    login(page, live_server, e2e_user("noc"))
    page.goto(f"{live_server.url}/")
    page.keyboard.press("Tab")
    focused = page.evaluate(
        "[document.activeElement.textContent.trim(), getComputedStyle(document.activeElement).position]"
    )
    assert focused == ["Skip to main content", "absolute"]
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    # The next Tab goes into the page's content, past the navigation.
    page.keyboard.press("Tab")
    assert page.evaluate("!!document.activeElement.closest('main')")
    # Focus is visible: a focused link has an outline.
    page.focus("nav a.navbar-brand")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"


def test_the_admin_case_list_fits_a_laptop_screen(browser_page, live_server, e2e_user, roles, tmp_path):
    page = browser_page
    for _ in range(30):
        make_case(reports=1)
    login(page, live_server, e2e_user("admin"))
    page.goto(f"{live_server.url}/admin/cases/case/")
    assert page.locator("#result_list tbody tr").count() == 30
    page.screenshot(path=str(tmp_path / "admin-cases-1280.png"), full_page=True)
    assert overflows(page) == 0
    assert page.evaluate("document.querySelector('#changelist .results').scrollWidth") <= page.evaluate(
        "document.querySelector('#changelist .results').clientWidth"
    )


LEASES = 2_000
TIME_TO_FIRST_BYTE = "(t => t.responseStart - t.requestStart)(performance.getEntriesByType('navigation')[0])"


@pytest.fixture
def busy_line(roles) -> Customer:
    """A residential line with LEASES leases, a session a day."""
    customer = Customer.objects.create(account="R-7000", name="Busy Line", kind="residential")
    start = datetime(2020, 1, 1, tzinfo=UTC)
    Allocation.objects.bulk_create(
        Allocation(
            customer=customer,
            network=f"100.64.{i // 250}.{i % 250 + 1}/32",
            family=4,
            prefixlen=32,
            valid_from=start + timedelta(days=i),
            valid_to=start + timedelta(days=i + 1),
            source="lease",
        )
        for i in range(LEASES)
    )
    return customer


def test_the_customer_page_links_to_its_leases_instead_of_listing_them(
    browser_page, live_server, e2e_user, busy_line, tmp_path
):
    page = browser_page
    login(page, live_server, e2e_user("admin"))
    url = f"{live_server.url}/admin/customers/customer/{busy_line.pk}/change/"
    server_ms = []
    for _ in range(7):
        page.goto(url)
        # Time to first byte of the page itself, measured by the browser: the server's time.
        server_ms.append(page.evaluate(TIME_TO_FIRST_BYTE))
    height = page.evaluate("document.documentElement.scrollHeight")
    median = statistics.median(server_ms)
    print(f"customer change page, {LEASES} leases: height {height} px, server median {median:.0f} ms")
    page.screenshot(path=str(tmp_path / "customer-change.png"), full_page=True)
    assert height < 1_500
    link = page.locator("a.all-allocations")
    assert "2,000" in link.inner_text()
    link.click()
    page.wait_for_url("**/admin/customers/allocation/?customer__id__exact=*")
    assert f"{LEASES} allocations" in page.locator("p.paginator").inner_text()


def test_a_locked_out_sign_in_shows_why_in_the_browser(browser_page, live_server, e2e_user, tmp_path):
    page = browser_page
    refused = watch_csp(page)
    user = e2e_user("noc")
    for _ in range(5):
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", user.get_username())
        page.fill("#id_password", "not-the-password")
        with page.expect_navigation():
            page.click("button[type=submit]")
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", user.get_username())
    page.fill("#id_password", E2E_PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.locator("h1").inner_text() == "Sign-in locked for a while"
    page.screenshot(path=str(tmp_path / "locked-out.png"), full_page=True)
    assert page.goto(f"{live_server.url}/").url.endswith("/accounts/login/?next=/")
    assert csp_events(page) == [] and refused == []
