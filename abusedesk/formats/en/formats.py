"""Date formats for English (the admin and Django's |date filter): the desk's isotime format.

"2026-11-30 14:02:05 UTC": ISO 8601 order, 24-hour clock, the zone named (T is the zone of the
value after conversion to the current time zone, UTC unless TIME_ZONE says otherwise). Formats
not set here fall back to Django's own English ones (input formats accept ISO 8601 already).
"""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
YEAR_MONTH_FORMAT = "Y-m"
MONTH_DAY_FORMAT = "m-d"
