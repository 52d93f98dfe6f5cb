"""The escalation history across customers and its CSV export (streamed, safe to open in a spreadsheet)."""

from __future__ import annotations

import csv
import io

import pytest
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse

from cases.views_managers import csv_safe
from tests.desk import managers_data
from tests.desk.managers_data import END, INJECTION, START

PERIOD = {"start": START, "end": END}
HEADER = [
    "at",
    "case",
    "account",
    "customer",
    "kind",
    "category",
    "change",
    "from_rung",
    "to_rung",
    "by",
    "actor_kind",
    "reason",
]


@pytest.fixture
def history(db):
    return managers_data.build()


@pytest.fixture
def manager(manager_user) -> Client:
    client = Client()
    client.force_login(manager_user)
    return client


def export(client: Client, **params) -> tuple[StreamingHttpResponse, list[list[str]]]:
    response = client.get(reverse("cases:manager_history_csv"), {**PERIOD, **params})
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    return response, list(csv.reader(io.StringIO(text)))


def test_the_csv_is_streamed_with_a_header_and_one_row_per_escalation(manager, history):
    response, rows = export(manager)
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="escalations-2026-11-01-to-2026-11-10.csv"'
    assert rows[0] == HEADER
    body = rows[1:]
    # Seven escalation rows in the period, newest first; the note and the October climb are left out.
    assert [(r[0], r[1], r[6], r[7], r[8]) for r in body] == [
        ("2026-11-09T15:00:00Z", f"AD-{history['c4'].pk}", "rung", "suspension", "termination"),
        ("2026-11-09T09:00:00Z", f"AD-{history['c3'].pk}", "reinstated", "suspension", "warning"),
        ("2026-11-08T09:00:00Z", f"AD-{history['c3'].pk}", "rung", "warning", "suspension"),
        ("2026-11-06T12:00:00Z", f"AD-{history['c4'].pk}", "rung", "first_notice", "warning"),
        ("2026-11-05T12:00:00Z", f"AD-{history['c3'].pk}", "rung", "first_notice", "warning"),
        ("2026-11-04T16:00:00Z", f"AD-{history['c3'].pk}", "rung", "none", "first_notice"),
        ("2026-11-02T11:00:00Z", f"AD-{history['c1'].pk}", "rung", "none", "first_notice"),
    ]
    assert body[2][2:6] == ["R-2", "Home Two", "residential", "spam"]
    assert body[2][9:] == ["", "system", "three warnings ignored"]


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(manager, history):
    _, rows = export(manager, kind="business")
    assert len(rows) == 3
    termination, warning = rows[1], rows[2]
    assert termination[3] == "'-Evil Corp"
    assert termination[11] == "'+ terminated for good"
    assert warning[11] == "'" + INJECTION
    for row in rows[1:]:
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row)


def test_csv_safe_quotes_formulas_only():
    assert [csv_safe(v) for v in ("=1+1", "+1", "-2", "@SUM(A1)", "\tx", "plain", "a=b", None, 7)] == [
        "'=1+1",
        "'+1",
        "'-2",
        "'@SUM(A1)",
        "'\tx",
        "plain",
        "a=b",
        "",
        "7",
    ]


def test_the_csv_follows_the_filters(manager, history):
    _, suspensions = export(manager, rung="30")
    assert [(r[1], r[8]) for r in suspensions[1:]] == [(f"AD-{history['c3'].pk}", "suspension")]
    _, phishing = export(manager, category="phishing")
    assert phishing == [HEADER]
    _, october = export(manager, start="2026-10-01", end="2026-10-31")
    assert [(r[0], r[8]) for r in october[1:]] == [("2026-10-25T00:00:00Z", "suspension")]


def test_the_csv_reads_the_rows_in_chunks(manager, history, django_assert_max_num_queries):
    # Session, user, roles and one SELECT for the rows: no query per row.
    with django_assert_max_num_queries(4):
        _, rows = export(manager)
    assert len(rows) == 8


def test_the_history_page_lists_changes_in_words_with_the_export_link(manager, history):
    response = manager.get(reverse("cases:manager_history"), {**PERIOD, "kind": "business"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="history-count">2 changes<' in html
    assert "suspension → termination" in html and "first notice → warning" in html
    assert f'href="{reverse("cases:manager_history_csv")}?start={START}&amp;end={END}&amp;kind=business"' in html
    # The reason is shown as text, never run.
    assert "=HYPERLINK(&quot;http://evil.example&quot;,&quot;click&quot;)" in html


def test_the_history_page_query_count_does_not_grow_with_rows(manager, history, django_assert_num_queries):
    # Session, user, roles, the nav's pending approvals, the count and the page (joined, not per row).
    with django_assert_num_queries(6):
        manager.get(reverse("cases:manager_history"), PERIOD)
    managers_data.build(prefix="X")
    with django_assert_num_queries(6):
        response = manager.get(reverse("cases:manager_history"), PERIOD)
    assert response.context["page"].paginator.count == 14


def test_noc_staff_cannot_export(client, noc_user, history):
    client.force_login(noc_user)
    assert client.get(reverse("cases:manager_history_csv"), PERIOD).status_code == 403
