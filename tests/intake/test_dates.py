"""One date module (abusedesk.lib.dates) for every reader: the strict forms through the standard
library, the lenient rest through python-dateutil, always aware UTC out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from abusedesk.lib import dates

NOW = datetime(2024, 2, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mon, 15 Jan 2024 14:02:03 -0000", datetime(2024, 1, 15, 14, 2, 3, tzinfo=UTC)),
        ("Mon, 15 Jan 2024 15:02:03 +0100 (CET)", datetime(2024, 1, 15, 14, 2, 3, tzinfo=UTC)),
        ("2024-01-15T14:02:03Z", datetime(2024, 1, 15, 14, 2, 3, tzinfo=UTC)),
        ("2024-01-15 14:02:03", datetime(2024, 1, 15, 14, 2, 3, tzinfo=UTC)),
        ("2024-01-15 16:02:03 CEST", datetime(2024, 1, 15, 14, 2, 3, tzinfo=UTC)),
        ("15.01.2024 15:02", datetime(2024, 1, 15, 15, 2, tzinfo=UTC)),
        ("05.01.2024 14:02 UTC", datetime(2024, 1, 5, 14, 2, tzinfo=UTC)),  # day first, not 1 May
        ("Mon Jan 15 14:02:03 2024", datetime(2024, 1, 15, 14, 2, 3, tzinfo=UTC)),
        ("January 15, 2024 2:02 PM EST", datetime(2024, 1, 15, 19, 2, tzinfo=UTC)),
        ("15/Jan/2024:14:02:03 +0000", datetime(2024, 1, 15, 14, 2, 3, tzinfo=UTC)),
        ("1705327323", datetime(2024, 1, 15, 14, 2, 3, tzinfo=UTC)),
    ],
)
def test_the_forms_reports_write_are_read_as_utc(text: str, expected: datetime):
    assert dates.parse_date(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "14:02", "Jan 15", "2099-01-01 00:00:00", "1970-01-01 00:00:00"])
def test_unreadable_partial_future_and_ancient_dates_are_none(text: str):
    # dateutil fills a missing year or day from today; a guess is not a date, so none is made.
    assert dates.parse_date(text, now=NOW) is None


def test_feed_times_skip_the_plausibility_check_so_the_caller_can_say_why():
    value = dates.parse_feed_time("2099-01-01 00:00:00")
    assert value == datetime(2099, 1, 1, tzinfo=UTC)
    assert dates.implausible(value, NOW) == "time in the future"
    assert dates.parse_feed_time("1705327323000") == datetime(2024, 1, 15, 14, 2, 3, tzinfo=UTC)


def test_find_dates_reads_prose_in_order():
    text = "First attempt 2024-01-21 08:15:02 UTC, last one Sun, 21 Jan 2024 10:00:00 +0100."
    assert dates.find_dates(text, now=NOW) == [
        datetime(2024, 1, 21, 8, 15, 2, tzinfo=UTC),
        datetime(2024, 1, 21, 9, 0, tzinfo=UTC),
    ]


def test_parse_iso_is_strict_and_says_why():
    assert dates.parse_iso("2025-03-01T14:02:00") == datetime(2025, 3, 1, 14, 2, tzinfo=UTC)
    with pytest.raises(ValueError, match="is not an ISO 8601 time"):
        dates.parse_iso("01.03.2025 14:02")
    with pytest.raises(ValueError, match="out of range"):
        dates.parse_iso("0001-01-01T00:00:00+01:00")
