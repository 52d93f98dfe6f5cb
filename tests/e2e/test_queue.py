"""Browser tests of the NOC queue: triage a case from it, bulk-assign, search by CIDR.
Each saves a screenshot under its own tmp_path."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from cases.models import Case, CaseEvent, CaseStatus, Rung
from tests.cases.ladder_builders import make_case
from tests.e2e.conftest import login

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def cases(roles) -> dict[str, Case]:
    new = make_case(rung=Rung.NONE, reports=1)
    quiet = make_case(rung=Rung.FIRST_NOTICE, reports=1)
    other = make_case(rung=Rung.WARNING, reports=2)
    Case.objects.filter(pk=new.pk).update(awaiting_review=True)
    return {"replied": new, "quiet": quiet, "other": other}


def _rows(page) -> list[str]:
    return page.locator("#case-queue tbody tr td:nth-child(2) a").all_inner_texts()


def test_a_noc_member_triages_a_case_from_the_queue(browser_page, live_server, e2e_user, cases, tmp_path):
    page = browser_page
    page.on("dialog", lambda dialog: dialog.accept())
    login(page, live_server, e2e_user("noc"))
    replied = cases["replied"]
    # The case needing action is on top, marked, with its age against the target.
    assert _rows(page)[0] == replied.reference
    row = page.locator(f"#queue-case-{replied.pk}")
    assert "reply to review" in row.inner_text()
    assert re.search(r"\d+ (min|h|d) / 8 h", row.inner_text())
    # Only the cases needing action (htmx swaps the table and the URL keeps the filter).
    page.select_option("#queue-filters select[name=status]", "action")
    page.wait_for_url("**/?*status=action*")
    # Not wait_for_function: Playwright evals its predicate, which the page's CSP refuses.
    expect(page.locator("#case-queue tbody tr")).to_have_count(1)
    assert _rows(page) == [replied.reference]
    # Open it, read it, come back, and resolve it from the queue.
    page.click(f"#case-queue a[href='{replied.get_absolute_url()}']")
    page.wait_for_url(f"**{replied.get_absolute_url()}")
    assert page.locator("#case-queue").count() == 0  # the case page itself, not swapped into the queue
    page.go_back()
    page.wait_for_selector(f"#queue-case-{replied.pk}")
    page.check(f"#queue-case-{replied.pk} input[name=case]")
    page.select_option("#bulk-action", "resolve")
    assert page.locator("#bulk-assignee-box").is_hidden()  # only "Assign to" needs a colleague
    page.fill("#bulk-note", "customer cleaned the machine")
    page.click("#bulk-submit")
    page.wait_for_selector(".alert-success")
    assert f"1 case resolved: {replied.reference}." in page.locator(".alert-success").inner_text()
    page.screenshot(path=str(tmp_path / "queue-triage.png"), full_page=True)
    replied.refresh_from_db()
    assert replied.status == CaseStatus.RESOLVED
    assert CaseEvent.objects.get(case=replied, kind="status").note == "customer cleaned the machine"
    assert replied.reference not in _rows(page)
    assert page.outside_requests == []


def test_bulk_assign_from_the_queue(browser_page, live_server, e2e_user, cases, tmp_path):
    page = browser_page
    colleague = e2e_user("manager")
    login(page, live_server, e2e_user("noc"))
    page.check("#queue-select-all")
    assert page.locator("#case-queue input[name=case]:checked").count() == 3
    page.uncheck(f"#queue-case-{cases['other'].pk} input[name=case]")
    page.select_option("#bulk-action", "assign")
    page.select_option("#bulk-assignee", label="manager-e2e")
    page.click("#bulk-submit")
    page.wait_for_selector(".alert-success")
    assert "2 cases assigned to manager-e2e" in page.locator(".alert-success").inner_text()
    page.screenshot(path=str(tmp_path / "queue-bulk-assign.png"), full_page=True)
    assignees = dict(Case.objects.values_list("pk", "assignee"))
    assert assignees == {cases["replied"].pk: colleague.pk, cases["quiet"].pk: colleague.pk, cases["other"].pk: None}
    # The assignee filter shows them.
    page.select_option("#queue-filters select[name=assignee]", str(colleague.pk))
    expect(page.locator("#case-queue tbody tr")).to_have_count(2)
    assert sorted(_rows(page)) == sorted([cases["replied"].reference, cases["quiet"].reference])
    assert page.outside_requests == []


def test_search_by_cidr(browser_page, live_server, e2e_user, roles, tmp_path):
    from cases.services.filing import record_reports
    from tests.cases.helpers import customer_with, event

    for account, net in {"IN-1": "100.64.1.0/24", "IN-3": "100.64.3.0/24", "OUT": "100.64.4.0/24"}.items():
        customer_with(net, account)
    record_reports([event("100.64.1.20"), event("100.64.3.7"), event("100.64.4.9")])
    page = browser_page
    login(page, live_server, e2e_user("noc"))
    assert len(_rows(page)) == 3
    page.fill("#queue-filters input[name=q]", "100.64.0.0/22")
    page.press("#queue-filters input[name=q]", "Enter")
    page.wait_for_selector("#queue-search")
    page.wait_for_url("**q=100.64.0.0%2F22*")
    assert "reports from inside the network" in page.locator("#queue-search").inner_text()
    accounts = page.locator("#case-queue tbody tr td:nth-child(5)").all_inner_texts()
    assert sorted(a.split()[0] for a in accounts) == ["IN-1", "IN-3"]
    # Sorting keeps the search (htmx swaps the table; the URL says both). Each click waits for the
    # previous swap to settle: a click on a header that htmx is replacing is lost.
    page.wait_for_load_state("networkidle")
    page.click("#case-queue th a[data-sort=customer]")
    page.wait_for_url("**sort=customer*")
    assert "q=100.64.0.0%2F22" in page.url
    page.wait_for_load_state("networkidle")
    page.click("#case-queue th a[data-sort=customer]")
    page.wait_for_url("**sort=-customer*")
    accounts = page.locator("#case-queue tbody tr td:nth-child(5)").all_inner_texts()
    assert [a.split()[0] for a in accounts] == ["IN-3", "IN-1"]
    page.screenshot(path=str(tmp_path / "queue-cidr.png"), full_page=True)
    assert page.outside_requests == []
