"""Local times: US and European zone names, 12-hour clocks, and AbuseHub's local event_date/event_time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cases.intake import mime, parse, tabular

from . import RECEIVED_AT, fixture


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Tue, 09 Jan 2024 10:00AM PST", datetime(2024, 1, 9, 18, 0, tzinfo=UTC)),
        ("Mon, 21 Sep 2015 10:00AM PDT", datetime(2015, 9, 21, 17, 0, tzinfo=UTC)),
        ("Mon, 21 Sep 2015 12:00AM PDT", datetime(2015, 9, 21, 7, 0, tzinfo=UTC)),
        ("Mon, 21 Sep 2015 12:30 p.m. EDT", datetime(2015, 9, 21, 16, 30, tzinfo=UTC)),
        ("Tue, 09 Jan 2024 01:15PM MST", datetime(2024, 1, 9, 20, 15, tzinfo=UTC)),
        ("Tue, 09 Jan 2024 08:00 CST", datetime(2024, 1, 9, 14, 0, tzinfo=UTC)),
        ("Tue, 09 Jan 2024 08:00:00 CET", datetime(2024, 1, 9, 7, 0, tzinfo=UTC)),
        ("Fri, 14 Jul 2023 08:00:00 CEST", datetime(2023, 7, 14, 6, 0, tzinfo=UTC)),
        ("Tue, 09 Jan 2024 08:00:00 GMT", datetime(2024, 1, 9, 8, 0, tzinfo=UTC)),
        ("2024-01-09 08:00:00 MDT", datetime(2024, 1, 9, 14, 0, tzinfo=UTC)),
        ("2024-01-09 08:00 UTC", datetime(2024, 1, 9, 8, 0, tzinfo=UTC)),
        ("09.01.2024 08:00 CET", datetime(2024, 1, 9, 7, 0, tzinfo=UTC)),
        # Not a zone: the word goes on, so the time stays as written (UTC).
        ("2024-01-09 08:00 ESTONIA", datetime(2024, 1, 9, 8, 0, tzinfo=UTC)),
    ],
)
def test_zone_names_and_12_hour_clocks_are_honoured(text: str, expected: datetime):
    assert mime.parse_date(text, now=RECEIVED_AT) == expected


def test_find_dates_reads_the_whole_12_hour_date_with_its_zone():
    assert mime.find_dates("  - Tue, 09 Jan 2024 12:00AM PST\n", now=RECEIVED_AT) == [
        datetime(2024, 1, 9, 8, 0, tzinfo=UTC)
    ]


def test_a_13_oclock_pm_clock_is_not_read_as_12_hour():
    # "13:00PM" is nonsense: unreadable, rather than guessed as 01:00 or 13:00.
    assert mime.parse_date("Tue, 09 Jan 2024 13:00PM PST", now=RECEIVED_AT) is None


def test_feed_times_with_us_zone_names():
    assert tabular.parse_when("2024-01-09 08:00:00 PDT") == datetime(2024, 1, 9, 15, 0, tzinfo=UTC)


def test_honeypot_style_report_times_are_local_and_the_earliest_listing_counts():
    result = parse(fixture("fix_honeypot_pdt.eml"), received_at=RECEIVED_AT)
    by_ip = {e.ip: e.occurred_at for e in result.events}
    assert by_ip["198.51.100.61"] == datetime(2024, 1, 9, 18, 0, tzinfo=UTC)  # 10:00AM PST
    # Listed at 01:15PM PST (comment spam) and 12:00AM PST ("other suspicious"): the earlier one.
    assert by_ip["198.51.100.62"] == datetime(2024, 1, 9, 8, 0, tzinfo=UTC)


def test_abusehub_local_clock_uses_the_offset_its_mail_states_and_the_repeat_is_one_event():
    result = parse(fixture("fix_abusehub_local_time.eml"), received_at=RECEIVED_AT)
    assert result.format == "csv"
    times = sorted(e.occurred_at for e in result.events)
    # 09:30 +01:00 in the AbuseHub CSV is the drone CSV's 08:30 UTC row; the 08:45 row is another event.
    assert times == [datetime(2024, 1, 10, 8, 30, tzinfo=UTC), datetime(2024, 1, 10, 8, 45, tzinfo=UTC)]
    first = next(e for e in result.events if e.occurred_at.minute == 30)
    assert first.external_id.startswith("abusehubcsv")  # the first part's row is the one kept
    assert first.port == 4431


def test_date_and_clock_columns_without_a_stated_offset_stay_utc():
    body = b"event_date,event_time,src_ip\n2024-01-10,09:30:00,192.0.2.77\n"
    [event] = parse(body, received_at=RECEIVED_AT).events
    assert event.occurred_at == datetime(2024, 1, 10, 9, 30, tzinfo=UTC)


def test_identical_rows_within_one_file_are_all_kept():
    body = b"timestamp,ip,type\n2024-01-10 08:30:00,192.0.2.77,botnet\n2024-01-10 08:30:00,192.0.2.77,botnet\n"
    assert len(parse(body, received_at=RECEIVED_AT).events) == 2


def test_a_clock_that_names_its_own_zone_keeps_it():
    table = tabular.Table("event_date,event_time,src_ip\n2024-01-10,09:30:00Z,192.0.2.77\n", tabular.EventList())
    out = tabular.EventList()
    tabular.table_events(
        table,
        out,
        fmt="csv",
        received_at=RECEIVED_AT,
        reporter="",
        reporter_org="",
        category_for=lambda record: None,
        default_category="other",
        confidence=0.5,
        clock_offset="+01:00",
    )
    assert [e.occurred_at for e in out] == [datetime(2024, 1, 10, 9, 30, tzinfo=UTC)]
