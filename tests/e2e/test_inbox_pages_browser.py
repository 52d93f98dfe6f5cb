"""Browser: a NOC member sets junk mail aside and dismisses unassigned reports ticked with
"select all", in headless Chromium, at a desk width and a phone width. Screenshots go under
the test's own tmp_path."""

from __future__ import annotations

import hashlib

import pytest

from cases.models import InboundMessage, ParseStatus, Report
from cases.services.filing import record_reports
from tests.cases.helpers import event
from tests.e2e.conftest import login

pytestmark = [pytest.mark.e2e]


def _junk(n: int) -> InboundMessage:
    raw = f"From: shop{n}@example.org\r\nSubject: Big sale {n}\r\n\r\nbuy\r\n".encode()
    return InboundMessage.objects.create(
        raw=raw,
        size=len(raw),
        sha256=hashlib.sha256(raw).hexdigest(),
        channel="email",
        subject=f"Big sale {n}",
        status=ParseStatus.UNPARSED,
        parse_error="no report found in the message",
    )


def test_junk_is_set_aside_from_the_inbox(browser_page, live_server, e2e_user, tmp_path):
    page = browser_page
    junk, keep = _junk(1), _junk(2)
    login(page, live_server, e2e_user("noc"))
    page.goto(f"{live_server.url}/messages/")
    page.check(f"#m{junk.pk}")
    page.fill("#id_reason", "a shop's newsletter")
    with page.expect_navigation():
        page.click("button:has-text('Set aside')")
    assert "1 message set aside." in page.inner_text("body")
    page.goto(f"{live_server.url}/messages/?status=ignored")
    assert "a shop's newsletter" in page.inner_text("table")
    page.screenshot(path=str(tmp_path / "inbox-set-aside.png"), full_page=True)
    assert InboundMessage.objects.get(pk=junk.pk).status == ParseStatus.IGNORED
    assert InboundMessage.objects.get(pk=keep.pk).status == ParseStatus.UNPARSED
    assert page.outside_requests == []


def test_unassigned_reports_are_dismissed_with_select_all_on_a_phone(browser_page, live_server, e2e_user, tmp_path):
    page = browser_page
    page.set_viewport_size({"width": 375, "height": 800})
    record_reports([event(f"192.0.2.{n}") for n in range(1, 4)])
    login(page, live_server, e2e_user("noc"))
    page.goto(f"{live_server.url}/unassigned/?reason=outside")
    assert "Outside our address space 3" in " ".join(page.inner_text(".nav-tabs").split())
    page.check("[data-select-all]")  # shown by static/js/inbox.js
    page.fill("#id_reason", "documentation addresses")
    with page.expect_navigation():
        page.click("button:has-text('Dismiss')")
    assert "3 reports dismissed." in page.inner_text("body")
    page.screenshot(path=str(tmp_path / "unassigned-phone.png"), full_page=True)
    assert not Report.objects.unassigned().exists()
    assert page.outside_requests == []
