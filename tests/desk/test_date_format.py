from datetime import UTC, date, datetime, timedelta, timezone

from cases.templatetags.desk_format import isotime


def test_aware_times_are_shown_in_utc_with_the_zone():
    plus_two = timezone(timedelta(hours=2))
    assert isotime(datetime(2026, 11, 30, 16, 2, 5, tzinfo=plus_two)) == "2026-11-30 14:02:05 UTC"


def test_minutes_precision_and_plain_dates():
    assert isotime(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "minutes") == "2026-01-02 03:04 UTC"
    assert isotime(date(2026, 1, 2)) == "2026-01-02"
    assert isotime(None) == ""
