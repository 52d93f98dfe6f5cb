"""The managers' numbers and escalation history: read-only queries, aggregated in SQL.

Every figure is one GROUP BY over an indexed range of one table (reports by occurred_at, cases
by opened_at or closed_at, audit rows by at); no function here loops over rows in Python, except
the percentile fallback on SQLite, which has no percentile_cont. The indexes are in
cases/migrations/0012_desk_numbers.py, each naming the function below that reads it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, F, FloatField, Func, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import TruncDate, TruncMonth

from cases.models import Case, CaseEvent, CaseStatus, Notice, NoticeKind, Report, Rung, rung_key
from customers.models import Customer

# The audit rows that make a customer's escalation history: climbs, steps down, reinstatements.
ESCALATION_EVENT_KINDS = ("rung", "de_escalated", "reinstated")
# Notices that reach the customer (not the reporter's acknowledgement, not a reinstatement).
CUSTOMER_NOTICE_KINDS = (
    NoticeKind.FIRST_NOTICE,
    NoticeKind.WARNING,
    NoticeKind.RESTRICTION,
    NoticeKind.SUSPENSION,
    NoticeKind.TERMINATION,
)
CUT_OFF_KEYS = (rung_key(Rung.SUSPENSION), rung_key(Rung.TERMINATION))
TOP = 20
# Heavy aggregates are kept this long in the default cache: a manager clicking through filters
# and back, or several managers on the same default page, cost one computation a minute.
CACHE_SECONDS = 60
CACHE_VERSION = 1


@dataclass(frozen=True)
class Filters:
    """What the manager asked for. `start` and `end` are UTC days, both included."""

    start: date
    end: date
    rung: int | None = None
    kind: str = ""
    category: str = ""

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def until(self) -> datetime:
        """The first instant after the period (exclusive bound, so an index range scan)."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def cache_key(self) -> str:
        return f"numbers:{self.start}:{self.end}:{self.rung}:{self.kind}:{self.category}"


@dataclass
class Percentiles:
    count: int = 0
    median: float | None = None  # seconds
    p90: float | None = None


@dataclass
class Numbers:
    filters: Filters
    reports_per_day: dict[tuple[date, str], int] = field(default_factory=dict)
    cases_per_day: dict[tuple[date, str], int] = field(default_factory=dict)
    first_notice: Percentiles = field(default_factory=Percentiles)
    resolution: Percentiles = field(default_factory=Percentiles)
    repeat_offenders: list[dict] = field(default_factory=list)
    cut_offs_per_month: dict[tuple[date, str], int] = field(default_factory=dict)
    months: list[date] = field(default_factory=list)
    top_reporters: list[dict] = field(default_factory=list)


# -- filtered querysets ---------------------------------------------------------------------------


def _case_filters(f: Filters, prefix: str = "") -> Q:
    q = Q()
    if f.category:
        q &= Q(**{f"{prefix}category": f.category})
    if f.kind:
        q &= Q(**{f"{prefix}customer__kind": f.kind})
    if f.rung is not None:
        q &= Q(**{f"{prefix}rung": f.rung})
    return q


def reports_in(f: Filters) -> QuerySet:
    """Reports of incidents in the period (report_numbers_idx). By the incident's time, not the
    time we received it: an import of last year's reports belongs to last year, not to today.
    The rung and kind filters reach the report through its case; the category is the report's own."""
    qs = Report.objects.filter(occurred_at__gte=f.since, occurred_at__lt=f.until)
    if f.category:
        qs = qs.filter(category=f.category)
    if f.kind:
        qs = qs.filter(customer__kind=f.kind)
    if f.rung is not None:
        qs = qs.filter(case__rung=f.rung)
    return qs


def cases_opened_in(f: Filters) -> QuerySet:
    return Case.objects.filter(_case_filters(f), opened_at__gte=f.since, opened_at__lt=f.until)  # case_opened_idx


def escalations_in(f: Filters, since: datetime | None = None) -> QuerySet:
    """Escalation audit rows in the period (caseevent_escalation_idx). The rung filter is the rung
    the row moved to; kind and category are the case's."""
    qs = CaseEvent.objects.filter(kind__in=ESCALATION_EVENT_KINDS, at__gte=since or f.since, at__lt=f.until)
    if f.rung is not None:
        qs = qs.filter(new=rung_key(f.rung))
    if f.category:
        qs = qs.filter(case__category=f.category)
    if f.kind:
        qs = qs.filter(case__customer__kind=f.kind)
    return qs


# -- percentiles ----------------------------------------------------------------------------------


class EpochSeconds(Func):
    """An interval in seconds (PostgreSQL)."""

    template = "EXTRACT(EPOCH FROM %(expressions)s)"
    output_field = FloatField()


def percentile_cont(values: list[float], fraction: float) -> float | None:
    """What PostgreSQL's percentile_cont gives: linear interpolation between the nearest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    pos = fraction * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _percentiles(qs: QuerySet, start: str, end: str) -> Percentiles:
    """Median and 90th percentile of (end - start) in seconds over qs's rows where end is set."""
    if connection.vendor == "postgresql":
        # The differences in a derived table, aggregated outside it: a subquery annotation (the
        # first notice) is then run once per case, not once per mention in the SELECT and WHERE.
        secs = EpochSeconds(F(end) - F(start))
        inner, params = qs.annotate(secs=secs).order_by().values("secs").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(secs), percentile_cont(0.5) WITHIN GROUP (ORDER BY secs), "
                f"percentile_cont(0.9) WITHIN GROUP (ORDER BY secs) FROM ({inner}) AS durations",
                params,
            )
            count, p50, p90 = cursor.fetchone()
        return Percentiles(count, p50, p90)
    # SQLite: no percentile_cont; the two timestamps of each row, interpolated as above.
    qs = qs.filter(**{f"{end}__isnull": False})
    values = [(b - a).total_seconds() for a, b in qs.values_list(start, end).order_by()]
    return Percentiles(len(values), percentile_cont(values, 0.5), percentile_cont(values, 0.9))


def time_to_first_notice(f: Filters) -> Percentiles:
    """From a case's opening to the first notice sent to the customer, for cases opened in the period."""
    # A look-up per case on notice_case_time_idx; a join would read every notice ever sent.
    first = (
        Notice.objects.filter(case=OuterRef("pk"), kind__in=CUSTOMER_NOTICE_KINDS, sent_at__isnull=False)
        .order_by("sent_at")
        .values("sent_at")[:1]
    )
    return _percentiles(cases_opened_in(f).annotate(first_sent=Subquery(first)), "opened_at", "first_sent")


def time_to_resolution(f: Filters) -> Percentiles:
    """From opening to resolution, for cases resolved in the period (case_resolved_idx)."""
    qs = Case.objects.filter(
        _case_filters(f), status=CaseStatus.RESOLVED, closed_at__gte=f.since, closed_at__lt=f.until
    )
    return _percentiles(qs, "opened_at", "closed_at")


# -- the other figures ----------------------------------------------------------------------------


def per_day(qs: QuerySet, column: str) -> dict[tuple[date, str], int]:
    # COUNT(*), not COUNT(id): reports are then counted from report_numbers_idx alone.
    rows = (
        qs.annotate(day=TruncDate(column, tzinfo=UTC))
        .values("day", "category")
        .annotate(n=Count("*"))
        .order_by()
        .values_list("day", "category", "n")
    )
    return {(day, category): n for day, category, n in rows}


def repeat_offenders(f: Filters) -> list[dict]:
    """Customers with more than one case opened in the period, most cases first."""
    # Grouped by the case's customer_id alone, then the top rows' customers in one look-up:
    # grouping by the customer's columns joined every customer of the period first.
    rows = list(
        cases_opened_in(f)
        .values("customer_id")
        .annotate(cases=Count("*"), categories=Count("category", distinct=True), top_rung=Max("rung"))
        .filter(cases__gt=1)
        .order_by("-cases", "-top_rung", "customer_id")[:TOP]
    )
    customers = Customer.objects.in_bulk([row["customer_id"] for row in rows])
    for row in rows:
        row["customer"] = customers[row["customer_id"]]
        row["top_rung_label"] = Rung(row["top_rung"]).label
    return rows


def months_to(end: date, count: int = 12) -> list[date]:
    """The first days of the `count` months up to and including end's month, oldest first."""
    months = []
    year, month = end.year, end.month
    for _ in range(count):
        months.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months[::-1]


def cut_offs_per_month(f: Filters, months: list[date]) -> dict[tuple[date, str], int]:
    """Suspensions and terminations carried out, per month: the climbs to those rungs (caseevent_cut_off_idx)."""
    since = min(f.since, datetime.combine(months[0], time.min, tzinfo=UTC))
    rows = (
        escalations_in(f, since=since)
        .filter(kind="rung", new__in=CUT_OFF_KEYS)
        .annotate(month=TruncMonth("at", tzinfo=UTC))
        .values("month", "new")
        .annotate(n=Count("*"))
        .order_by()
        .values_list("month", "new", "n")
    )
    # TruncMonth over a DateTimeField gives an aware datetime; the chart keys on dates.
    return {(month.date() if isinstance(month, datetime) else month, key): n for month, key, n in rows}


def top_reporters(f: Filters) -> list[dict]:
    return list(
        reports_in(f)
        .values("reporter")
        .annotate(reports=Count("*"), last=Max("occurred_at"))
        .order_by("-reports", "reporter")[:TOP]
    )


def compute(f: Filters) -> Numbers:
    """Every figure of the numbers page: a fixed number of queries, whatever the data."""
    if connection.vendor != "postgresql":
        return _compute(f)
    with transaction.atomic():
        # These plans cost past jit_above_cost on a year of data, and compiling them took longer
        # (~70 ms) than running them. SET LOCAL: for this transaction only.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
        return _compute(f)


def _compute(f: Filters) -> Numbers:
    months = months_to(f.end)
    return Numbers(
        filters=f,
        reports_per_day=per_day(reports_in(f), "occurred_at"),
        cases_per_day=per_day(cases_opened_in(f), "opened_at"),
        first_notice=time_to_first_notice(f),
        resolution=time_to_resolution(f),
        repeat_offenders=repeat_offenders(f),
        cut_offs_per_month=cut_offs_per_month(f, months),
        months=months,
        top_reporters=top_reporters(f),
    )


def cached_numbers(f: Filters) -> Numbers:
    """compute(f), kept CACHE_SECONDS in the default cache under the filters' key."""
    return cache.get_or_set(f.cache_key(), lambda: compute(f), CACHE_SECONDS, version=CACHE_VERSION)


# -- the history and its CSV ----------------------------------------------------------------------

HISTORY_COLUMNS = (
    ("at", "at"),
    ("case", "case_id"),
    ("account", "case__customer__account"),
    ("customer", "case__customer__name"),
    ("kind", "case__customer__kind"),
    ("category", "case__category"),
    ("change", "kind"),
    ("from_rung", "old"),
    ("to_rung", "new"),
    ("by", "actor__username"),
    ("actor_kind", "actor_kind"),
    ("reason", "note"),
)


def history(f: Filters) -> QuerySet:
    """The escalation history, newest first, as the page and the CSV show it."""
    return escalations_in(f).order_by("-at", "-id")


def history_rows(f: Filters, chunk_size: int = 2000) -> Iterator[tuple]:
    """The history as tuples in HISTORY_COLUMNS order, fetched chunk by chunk (a server-side
    cursor on PostgreSQL), so a year of it never sits in memory at once."""
    fields = [name for _, name in HISTORY_COLUMNS]
    return history(f).values_list(*fields).iterator(chunk_size=chunk_size)
