from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cases.models import Case, InboundMessage, ParseStatus
from customers import services
from customers.models import Contact, Customer
from tests.e2e.conftest import SCREENSHOT_DIR, login

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def business(roles) -> Customer:
    customer = Customer.objects.create(account="B-2001", name="Copper Print Shop", kind="business")
    Contact.objects.create(customer=customer, email="it@copper-print.example")
    services.create_allocation(
        customer=customer, network="198.51.100.0/28", valid_from=datetime(2025, 1, 1, tzinfo=UTC), source="static"
    )
    return customer


def test_noc_files_a_phone_complaint_and_lands_on_the_case(browser_page, live_server, e2e_user, business):
    page = browser_page
    login(page, live_server, e2e_user("noc"))
    page.click("nav >> text=New complaint")
    page.fill("#id_ip", "198.51.100.9")
    page.fill("#id_occurred_at", "2026-11-20T14:02")
    page.select_option("#id_category", "scanning")
    page.fill("#id_reporter_org", "Example GmbH")
    page.fill("#id_text", "Port scans all night <img src=x onerror=alert(1)>")
    page.click("input[type=submit], button[type=submit] >> nth=-1")
    page.wait_for_url("**/cases/*/")
    assert "Filed on the customer's case." in page.locator(".alert").inner_text()
    assert "B-2001" in page.locator("main").inner_text()
    page.click("summary:text('show')")
    assert "<img src=x onerror=alert(1)>" in page.locator("pre.evidence").inner_text()
    assert page.locator("pre.evidence img").count() == 0
    page.screenshot(path=str(SCREENSHOT_DIR / "abusedesk-case.png"), full_page=True)
    case = Case.objects.get()
    assert case.customer == business and case.category == "scanning"
    assert page.outside_requests == []


def test_noc_uploads_a_message_that_cannot_be_parsed_and_files_it_by_hand(
    browser_page, live_server, e2e_user, business, tmp_path
):
    eml = tmp_path / "odd.eml"
    eml.write_bytes(b"From: someone@else.example\r\nSubject: they hack me\r\n\r\nStop it now!!!\r\n")
    page = browser_page
    login(page, live_server, e2e_user("noc"))
    page.click("nav >> text=Upload")
    page.set_input_files("#id_files", str(eml))
    page.click("input[type=submit], button[type=submit] >> nth=-1")
    page.wait_for_url("**/messages/**")
    page.click("text=they hack me")
    assert "could not parse" in page.locator("main").inner_text()
    page.fill("#id_ip", "198.51.100.3")
    page.fill("#id_occurred_at", "2026-11-21T08:15")
    page.select_option("#id_category", "login_attack")
    page.click("input[value='File this event']")
    page.wait_for_url("**/messages/*/")
    assert "Filed on the customer's case." in page.locator(".alert").inner_text()
    message = InboundMessage.objects.get()
    assert message.status == ParseStatus.PARSED and message.channel == "upload"
    assert Case.objects.get().customer == business
    page.screenshot(path=str(SCREENSHOT_DIR / "abusedesk-message.png"), full_page=True)
    assert page.outside_requests == []
