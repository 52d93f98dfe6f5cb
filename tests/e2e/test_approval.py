"""Browser test: a manager approves a suspension from the approval queue, and the case page
shows the suspension and the decision in words. Once with JavaScript (htmx posts the form; a
required "I am sure" box is the confirm step), once without (the same forms, plain POST and redirect)."""

from __future__ import annotations

import pytest

from cases.models import Approval, ApprovalStatus, Case, Rung
from tests.cases.ladder_builders import make_case, pending_approval
from tests.e2e.conftest import SCREENSHOT_DIR, login

pytestmark = [pytest.mark.e2e]

REASON = "Three warnings ignored <b>since May</b>"


@pytest.fixture
def waiting(roles) -> Approval:
    """A residential customer at a warning, with a suspension proposed by the ladder."""
    case = make_case(rung=Rung.WARNING, reports=3)
    return pending_approval(case, reason="3 further reports from 3 reporters since the warning 5 days ago.")


def _approve_from_the_queue(page, approval: Approval, *, screenshot: str = "") -> None:
    page.click("nav >> text=Approvals")
    page.wait_for_url("**/approvals/")
    assert page.locator("#pending-approvals").inner_text() == "1"
    card = page.locator(f"#approval-{approval.pk}")
    assert "3 further reports from 3 reporters" in card.inner_text()
    assert approval.case.customer.account in card.inner_text()
    if screenshot:
        page.screenshot(path=str(SCREENSHOT_DIR / screenshot), full_page=True)
    card.locator("[data-action=approve] input[name=reason]").fill(REASON)
    # The confirm step is a required "I am sure" box: unticked, the browser does not submit.
    card.locator("[data-action=approve] [type=submit]").click()
    assert card.locator("[data-action=approve] input[name=reason]").is_visible()
    card.locator("[data-action=approve] input[name=sure]").check()
    card.locator("[data-action=approve] [type=submit]").click()
    page.wait_for_selector(".alert-success")
    assert "Suspension approved and carried out." in page.locator(".alert-success").inner_text()
    assert "Nothing waits for a decision." in page.locator("main").inner_text()


def _case_page_shows_the_suspension(page, case: Case, *, screenshot: str = "") -> None:
    page.click("nav >> text=Queue")
    page.click(f"#case-queue a[href='{case.get_absolute_url()}']")
    page.wait_for_url(f"**{case.get_absolute_url()}")
    assert page.locator("#case-rung").inner_text() == "Suspension"
    history = page.locator("#case-history").inner_text()
    assert f"approved by manager-e2e: {REASON}" in history
    assert "suspension carried out" in history
    # The reason was shown as text, never as markup.
    assert page.locator("#case-history b").count() == 0
    if screenshot:
        page.screenshot(path=str(SCREENSHOT_DIR / screenshot), full_page=True)


def test_a_manager_approves_a_suspension_from_the_queue(browser_page, live_server, e2e_user, waiting):
    page = browser_page
    asked: list[str] = []

    def confirm(dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", confirm)
    login(page, live_server, e2e_user("manager"))
    _approve_from_the_queue(page, waiting, screenshot="abusedesk-approvals.png")
    assert asked == []  # the box confirmed it; no JavaScript prompt on top
    waiting.refresh_from_db()
    assert waiting.status == ApprovalStatus.DONE and waiting.decided_by.get_username() == "manager-e2e"
    _case_page_shows_the_suspension(page, waiting.case, screenshot="abusedesk-case-suspended.png")
    assert page.outside_requests == []


def test_the_queue_works_without_javascript(chromium_browser, live_server, e2e_user, waiting):
    context = chromium_browser.new_context(base_url=live_server.url, java_script_enabled=False)
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        login(page, live_server, e2e_user("manager"))
        _approve_from_the_queue(page, waiting)
        _case_page_shows_the_suspension(page, waiting.case)
    finally:
        context.close()
    waiting.refresh_from_db()
    assert waiting.status == ApprovalStatus.DONE
