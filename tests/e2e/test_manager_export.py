"""Browser test: a manager opens the numbers, narrows the period, reads the charts' figures, and
exports the escalation history as CSV (a real download, read back from disk)."""

from __future__ import annotations

import csv

import pytest
from django.core.cache import cache

from tests.desk import managers_data
from tests.desk.managers_data import END, INJECTION, START
from tests.e2e.conftest import login

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def history(roles):
    cache.clear()
    yield managers_data.build()
    cache.clear()


def test_a_manager_exports_the_escalation_history_as_csv(browser_page, live_server, e2e_user, history, tmp_path):
    page = browser_page
    login(page, live_server, e2e_user("manager"))
    page.click("nav >> text=Numbers")
    page.wait_for_url("**/numbers/")
    page.fill("#id_start", START)
    page.fill("#id_end", END)
    with page.expect_navigation():
        page.click("#numbers-filter [type=submit]")
    assert page.locator("#period").inner_text().startswith(f"{START} to {END}")
    # The charts are SVG drawn by the server, each bar segment titled with its numbers.
    assert page.locator("#chart-reports svg rect title").first.inner_html() == "2026-11-02 Spam: 3"
    assert page.locator("#first-notice [data-figure=median]").inner_text() == "3 h"
    assert page.locator("#first-notice [data-figure=p90]").inner_text() == "8 h 12 min"
    assert page.locator("#resolution [data-figure=median]").inner_text() == "1 d 12 h"
    assert "B-1" in page.locator("#repeat-offenders").inner_text()
    page.screenshot(path=str(tmp_path / "numbers.png"), full_page=True)

    page.click("text=Escalation history")
    page.wait_for_url("**/numbers/history/**")
    assert page.locator("#history-count").inner_text() == "7 changes"
    with page.expect_download() as info:
        page.click("#history-csv")
    download = info.value
    assert download.suggested_filename == f"escalations-{START}-to-{END}.csv"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:4] == ["at", "case", "account", "customer"]
    assert len(rows) == 1 + 7
    reasons = [row[-1] for row in rows[1:]]
    assert "'" + INJECTION in reasons and INJECTION not in reasons
    page.screenshot(path=str(tmp_path / "history.png"), full_page=True)
    assert page.outside_requests == []


def test_noc_staff_have_no_numbers(browser_page, live_server, e2e_user):
    page = browser_page
    login(page, live_server, e2e_user("noc"))
    assert page.locator("nav >> text=Numbers").count() == 0
    response = page.goto(f"{live_server.url}/numbers/")
    assert response.status == 403
