"""The managers' numbers page: each figure on a small known history (tests/desk/managers_data.py),
the filters, who may see it, and a query count that does not grow with the data."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from cases import stats
from cases.models import Rung
from cases.views_managers import duration_words, nice_ceiling, stacked_bars
from tests.desk import managers_data
from tests.desk.managers_data import END, HOUR, START

URL = reverse("cases:manager_numbers")
PERIOD = {"start": START, "end": END}


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def history(db):
    return managers_data.build()


@pytest.fixture
def manager(manager_user) -> Client:
    client = Client()
    client.force_login(manager_user)
    return client


def numbers(**extra) -> stats.Numbers:
    f = stats.Filters(start=date(2026, 11, 1), end=date(2026, 11, 10), **extra)
    return stats.compute(f)


def test_reports_and_cases_per_day_are_counted_by_category(history):
    data = numbers()
    assert data.reports_per_day == {
        (date(2026, 11, 2), "spam"): 3,
        (date(2026, 11, 4), "phishing"): 1,
        (date(2026, 11, 4), "spam"): 2,
        (date(2026, 11, 5), "spam"): 1,
        (date(2026, 11, 6), "scanning"): 1,
    }
    assert data.cases_per_day == {
        (date(2026, 11, 2), "spam"): 1,
        (date(2026, 11, 4), "phishing"): 1,
        (date(2026, 11, 4), "spam"): 1,
        (date(2026, 11, 5), "spam"): 1,
        (date(2026, 11, 6), "scanning"): 1,
    }


def test_time_to_first_notice_is_the_median_and_p90_of_the_first_customer_notice(history):
    p = numbers().first_notice
    assert p.count == 4
    assert p.median == pytest.approx(3 * HOUR)
    assert p.p90 == pytest.approx(8.2 * HOUR)


def test_time_to_resolution_counts_cases_resolved_in_the_period(history):
    p = numbers().resolution
    assert p.count == 4  # c5 opened in October counts; the rejected c7 does not
    assert p.median == pytest.approx(36 * HOUR)
    assert p.p90 == pytest.approx(300 * HOUR)


def test_an_empty_period_has_no_percentiles(db):
    p = numbers().first_notice
    assert (p.count, p.median, p.p90) == (0, None, None)


def test_the_python_percentile_is_what_postgresql_computes():
    assert stats.percentile_cont([10, 1, 4, 2], 0.5) == 3
    assert stats.percentile_cont([10, 1, 4, 2], 0.9) == pytest.approx(8.2)
    assert stats.percentile_cont([7], 0.9) == 7
    assert stats.percentile_cont([], 0.5) is None


def test_repeat_offenders_have_more_than_one_case_in_the_period(history):
    rows = numbers().repeat_offenders
    assert [(r["customer"].account, r["cases"], r["top_rung"]) for r in rows] == [
        ("B-1", 2, Rung.TERMINATION),
        ("R-1", 2, Rung.FIRST_NOTICE),
    ]
    assert rows[0]["categories"] == 2 and rows[0]["top_rung_label"] == "Termination"


def test_suspensions_and_terminations_are_counted_per_month_over_a_year(history):
    data = numbers()
    assert data.months[0] == date(2025, 12, 1) and data.months[-1] == date(2026, 11, 1)
    assert data.cut_offs_per_month == {
        (date(2026, 10, 1), "suspension"): 1,
        (date(2026, 11, 1), "suspension"): 1,
        (date(2026, 11, 1), "termination"): 1,
    }


def test_top_reporters_are_ranked_by_reports_in_the_period(history):
    rows = numbers().top_reporters
    assert [(r["reporter"], r["reports"]) for r in rows] == [
        ("fbl@feed.example", 6),
        ("=cmd@evil.example", 1),
        ("x@cert.example", 1),
    ]


def test_the_kind_filter_keeps_business_customers_only(history):
    data = numbers(kind="business")
    assert data.reports_per_day == {(date(2026, 11, 5), "spam"): 1, (date(2026, 11, 6), "scanning"): 1}
    assert data.cases_per_day == {(date(2026, 11, 5), "spam"): 1, (date(2026, 11, 6), "scanning"): 1}
    assert (data.first_notice.count, data.first_notice.median, data.first_notice.p90) == (1, 10 * HOUR, 10 * HOUR)
    assert data.resolution.count == 1 and data.resolution.median == 48 * HOUR
    assert [r["customer"].account for r in data.repeat_offenders] == ["B-1"]
    assert data.cut_offs_per_month == {(date(2026, 11, 1), "termination"): 1}


def test_the_category_and_rung_filters_narrow_every_figure(history):
    phishing = numbers(category="phishing")
    assert phishing.reports_per_day == {(date(2026, 11, 4), "phishing"): 1}
    assert phishing.first_notice.count == 1 and phishing.first_notice.median == 2 * HOUR
    assert phishing.repeat_offenders == [] and phishing.cut_offs_per_month == {}
    suspended = numbers(rung=Rung.SUSPENSION)
    assert suspended.cases_per_day == {(date(2026, 11, 4), "spam"): 1}
    assert suspended.reports_per_day == {(date(2026, 11, 4), "spam"): 2}
    assert suspended.cut_offs_per_month == {(date(2026, 10, 1), "suspension"): 1, (date(2026, 11, 1), "suspension"): 1}


def test_the_page_shows_the_figures_with_their_charts_and_tables(manager, history):
    response = manager.get(URL, PERIOD)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="chart-reports"' in html and 'id="chart-cases"' in html and 'id="chart-cut-offs"' in html
    # Each bar segment carries its numbers for screen readers and hover; the table repeats them.
    assert "<title>2026-11-02 Spam: 3</title>" in html
    assert "<title>2026-11 Terminations: 1</title>" in html
    assert "Reports per day as a table" in html
    assert "<script" not in html.split("</main>")[0].split("<main")[1]
    assert 'style="' not in html
    figures = response.context["durations"]
    assert (figures[0]["median"], figures[0]["p90"], figures[0]["n"]) == ("3 h", "8 h 12 min", 4)
    assert (figures[1]["median"], figures[1]["p90"], figures[1]["n"]) == ("1 d 12 h", "12 d 12 h", 4)
    assert "fbl@feed.example" in html and "R-1" in html


def test_the_filters_come_from_get_parameters(manager, history):
    response = manager.get(URL, {**PERIOD, "kind": "business", "category": "spam", "rung": "40"})
    f = response.context["filters"]
    assert (f.kind, f.category, f.rung) == ("business", "spam", Rung.TERMINATION)
    assert response.context["charts"]["cases"]["total"] == 1


def test_the_default_period_is_the_last_30_days(manager, db):
    response = manager.get(URL)
    f = response.context["filters"]
    today = timezone.now().date()
    assert (f.start, f.end) == (today - timedelta(days=29), today)
    assert len(f.days) == 30


def test_a_backwards_period_says_so_and_shows_the_default(manager, db):
    response = manager.get(URL, {"start": END, "end": START})
    assert response.status_code == 200
    assert "The period ends before it starts." in response.content.decode()
    assert response.context["filters"].end == timezone.now().date()


def test_noc_staff_are_refused(client, noc_user):
    client.force_login(noc_user)
    assert client.get(URL).status_code == 403
    assert client.get(reverse("cases:manager_history")).status_code == 403
    assert client.get(reverse("cases:manager_history_csv")).status_code == 403


def test_admins_see_the_numbers_and_the_nav_link(client, admin_user_role):
    client.force_login(admin_user_role)
    response = client.get(URL)
    assert response.status_code == 200
    assert f'href="{URL}"' in response.content.decode()


def test_noc_staff_do_not_see_the_nav_link(client, noc_user):
    client.force_login(noc_user)
    assert f'href="{URL}"' not in client.get(reverse("cases:home")).content.decode()


def test_anonymous_users_are_sent_to_log_in(client, db):
    response = client.get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_query_count_does_not_grow_with_the_data(manager, history, django_assert_num_queries):
    # Session, user, roles, the nav's pending approvals, then one query per figure, the repeat
    # offenders' customers; on PostgreSQL also the SET LOCAL that turns JIT off, in a transaction
    # (a savepoint and its release inside the test's own).
    figures = 8 + (3 if connection.vendor == "postgresql" else 0)
    with django_assert_num_queries(4 + figures):
        manager.get(URL, PERIOD)
    cache.clear()
    managers_data.build(prefix="X")
    with django_assert_num_queries(4 + figures):
        manager.get(URL, PERIOD)
    # Within the minute the figures come from the cache.
    with django_assert_num_queries(4):
        manager.get(URL, PERIOD)


def test_the_figures_are_cached_for_a_minute(manager, history):
    first = manager.get(URL, PERIOD).context["charts"]["reports"]["total"]
    managers_data.build(prefix="Y")
    assert manager.get(URL, PERIOD).context["charts"]["reports"]["total"] == first
    cache.clear()
    assert manager.get(URL, PERIOD).context["charts"]["reports"]["total"] == 2 * first


def test_chart_geometry_stacks_segments_within_the_plot():
    days = [date(2026, 11, 1), date(2026, 11, 2)]
    series = [("spam", "Spam", "#000"), ("ddos", "DDoS", "#111"), ("other", "Other", "#222")]
    chart = stacked_bars(days, series, {(days[0], "spam"): 3, (days[0], "ddos"): 2, (days[1], "spam"): 1}, x_text=str)
    assert chart["columns"] == ["Spam", "DDoS"]  # a series with no count is left out
    assert chart["rows"] == [["2026-11-01", 3, 2, 5], ["2026-11-02", 1, 0, 1]]
    assert [t["value"] for t in chart["ticks"]] == [0, 2, 5]
    first = chart["bars"][0]["segments"]
    assert first[0]["y"] + first[0]["h"] == pytest.approx(chart["axis_y"])
    assert first[1]["y"] == pytest.approx(8)  # the tallest bar reaches the top of the plot


def test_helpers_read_as_a_person_would():
    assert [nice_ceiling(v) for v in (0, 1, 3, 7, 11, 160, 1000)] == [1, 1, 5, 10, 20, 200, 1000]
    assert duration_words(None) == "–"
    assert duration_words(12) == "12 s"
    assert duration_words(3 * HOUR + 60 * 12 + 5) == "3 h 12 min"
    assert duration_words(2 * 86400 + 7) == "2 d"
