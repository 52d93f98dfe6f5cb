"""A customer answers from the link in their notice, in a real browser; a NOC member reads it.

The customer's page sends Referrer-Policy: no-referrer, so the browser posts the reply form
with "Origin: null" and no Referer: this is the test that the form still works that way.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cases.models import Case, CustomerReply
from cases.services.filing import record_reports
from cases.services.links import make_link_token
from customers import services
from customers.models import Customer
from tests.cases.helpers import event
from tests.e2e.conftest import SCREENSHOT_DIR, login

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def case(roles) -> Case:
    customer = Customer.objects.create(account="R-3001", name="Home Line", kind="residential")
    services.create_allocation(
        customer=customer, network="198.51.100.0/28", valid_from=datetime(2025, 1, 1, tzinfo=UTC), source="static"
    )
    record_reports([event("198.51.100.9", evidence="from 198.51.100.9 to 203.0.113.5 <img src=x onerror=alert(1)>")])
    return Case.objects.get()


def test_a_customer_replies_from_the_link_and_noc_marks_it_reviewed(browser_page, live_server, e2e_user, case):
    page = browser_page
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{live_server.url}/c/{make_link_token(case)}/")
    assert case.reference in page.locator("h1").inner_text()
    evidence = page.locator("pre.evidence").inner_text()
    assert "198.51.100.9" in evidence and "203.0.113.5" not in evidence and "[redacted]" in evidence
    assert page.locator("pre.evidence img").count() == 0
    page.fill("#id_text", "Found a bot on the old laptop <b>and</b> wiped it.")
    with page.expect_navigation():
        page.click("#reply-form button[type=submit]")
    assert "Thank you" in page.locator(".alert").inner_text()
    assert "Found a bot on the old laptop <b>and</b> wiped it." in page.locator("#customer-replies").inner_text()
    page.screenshot(path=str(SCREENSHOT_DIR / "abusedesk-customer-page.png"), full_page=True)
    reply = CustomerReply.objects.get()
    case.refresh_from_db()
    assert case.awaiting_review is True

    login(page, live_server, e2e_user("noc"))
    page.goto(f"{live_server.url}{case.get_absolute_url()}")
    assert "escalation waits for review" in page.locator("#customer-replies").inner_text()
    page.click(f"#reply-{reply.pk} button:text('Mark reviewed')")
    page.wait_for_selector("#awaiting-review", state="detached")
    assert "reviewed by noc-e2e" in page.locator(f"#reply-{reply.pk}").inner_text()
    case.refresh_from_db()
    assert case.awaiting_review is False
    assert dialogs == [] and page.outside_requests == []
