"""One date format across the desk: ISO 8601 in UTC, with the zone shown.

`{{ value|isotime }}` gives "2026-11-30 14:02:05 UTC"; `{{ value|isotime:"minutes" }}` drops the seconds.
The desk is read by people comparing times with reporters' logs, which are nearly always UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from django import template

register = template.Library()


@register.filter
def isotime(value, precision: str = "seconds") -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        pattern = "%Y-%m-%d %H:%M" if precision == "minutes" else "%Y-%m-%d %H:%M:%S"
        return f"{value.strftime(pattern)} UTC"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
