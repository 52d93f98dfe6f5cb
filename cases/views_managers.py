"""Managers' pages: the numbers with their charts, and the escalation history with its CSV.

Managers and admins only. The figures come from cases.stats (SQL aggregates, cached a minute);
the charts are SVG drawn by the server (no script, nothing the Content-Security-Policy refuses),
each with its numbers in <title>s and in a table beside it.
"""

from __future__ import annotations

import csv
import html
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Layout, Row, Submit
from django import forms
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from abusedesk.roles import MANAGER, role_required
from cases import stats
from cases.models import Category, Rung
from cases.templatetags.case_words import rung_words
from customers.models import CustomerKind

DEFAULT_DAYS = 30
# A per-day chart of more than two years says nothing; the CSV has no such limit.
MAX_DAYS = 2 * 366
HISTORY_PAGE_SIZE = 50


class NumbersFilterForm(forms.Form):
    start = forms.DateField(label="From (UTC)", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To (UTC)", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    rung = forms.TypedChoiceField(
        label="Rung", choices=[("", "Any rung"), *Rung.choices], coerce=int, empty_value=None, required=False
    )
    kind = forms.ChoiceField(label="Customer kind", choices=[("", "Any kind"), *CustomerKind.choices], required=False)
    category = forms.ChoiceField(label="Category", choices=[("", "Any category"), *Category.choices], required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_method = "get"
        self.helper.form_id = "numbers-filter"
        self.helper.layout = Layout(
            Row(
                Column("start", css_class="col-6 col-md-2"),
                Column("end", css_class="col-6 col-md-2"),
                Column("rung", css_class="col-6 col-md-2"),
                Column("kind", css_class="col-6 col-md-2"),
                Column("category", css_class="col-6 col-md-2"),
                Column(Submit("apply", "Show", css_class="mt-md-4"), css_class="col-12 col-md-2"),
            )
        )

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            raise forms.ValidationError("The period ends before it starts.")
        if start and end and (end - start).days >= MAX_DAYS:
            raise forms.ValidationError(f"At most {MAX_DAYS} days at once.")
        return data

    def filters(self) -> stats.Filters:
        """The filters asked for; the default period (the last 30 days) where none or a wrong one was given."""
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        today = timezone.now().astimezone(UTC).date()
        end = data.get("end") or (
            min(today, data["start"] + timedelta(days=DEFAULT_DAYS - 1)) if data.get("start") else today
        )
        start = data.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        return stats.Filters(
            start=start,
            end=end,
            rung=data.get("rung"),
            kind=data.get("kind") or "",
            category=data.get("category") or "",
        )


def _filters(request: HttpRequest) -> tuple[NumbersFilterForm, stats.Filters]:
    form = NumbersFilterForm(request.GET or None)
    return form, form.filters()


# -- charts ---------------------------------------------------------------------------------------

CATEGORY_COLOURS = dict(
    zip(
        Category.values,
        ["#0d6efd", "#d63384", "#dc3545", "#6f42c1", "#fd7e14", "#198754", "#20c997", "#0dcaf0", "#6c757d", "#adb5bd"],
        strict=True,
    )
)
CUT_OFF_SERIES = [
    (stats.CUT_OFF_KEYS[0], "Suspensions", "#dc3545"),
    (stats.CUT_OFF_KEYS[1], "Terminations", "#212529"),
]


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 × 10^n at or above value: a y axis a person reads at a glance."""
    if value <= 1:
        return 1
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def stacked_bars(
    xs: list,
    series: list[tuple[str, str, str]],
    values: dict[tuple, int],
    *,
    x_text: Callable[[object], str],
    width: int = 900,
    height: int = 220,
) -> dict:
    """Geometry for a stacked bar chart drawn in SVG by templates/cases/managers/bar_chart.html.

    series: (key, label, colour); values: (x, key) -> count. Series with no count are left out.
    Returns the bars with their segments, the y ticks, sparse x labels, the legend and a table.
    """
    series = [s for s in series if any(values.get((x, s[0])) for x in xs)]
    totals = [sum(values.get((x, key), 0) for key, _, _ in series) for x in xs]
    top = nice_ceiling(max(totals, default=0))
    left, bottom, right, head = 44, 22, 8, 8
    plot_w, plot_h = width - left - right, height - bottom - head
    slot = plot_w / max(len(xs), 1)
    bar_w = max(slot * 0.8, 1.0)
    every = max(1, round(len(xs) / 10))  # about ten x labels, whatever the period
    bars, xlabels, rows = [], [], []
    for i, x in enumerate(xs):
        bx = left + i * slot + (slot - bar_w) / 2
        y = head + plot_h
        segments = []
        for key, label, colour in series:
            n = values.get((x, key), 0)
            if not n:
                continue
            h = plot_h * n / top
            y -= h
            segments.append({"y": round(y, 2), "h": round(h, 2), "fill": colour, "title": f"{x_text(x)} {label}: {n}"})
        bars.append({"x": round(bx, 2), "w": round(bar_w, 2), "segments": segments})
        if i % every == 0:
            xlabels.append({"x": round(bx + bar_w / 2, 2), "text": x_text(x)})
        rows.append([x_text(x), *[values.get((x, key), 0) for key, _, _ in series], totals[i]])
    ticks = [{"y": round(head + plot_h - plot_h * v / top, 2), "value": v} for v in (0, top // 2, top) if v or top]
    return {
        "width": width,
        "height": height,
        "left": left,
        "plot_right": width - right,
        "axis_y": head + plot_h,
        "label_y": height - 6,
        "bars": bars,
        "ticks": ticks,
        "xlabels": xlabels,
        "legend": [{"label": label, "fill": colour} for _, label, colour in series],
        "columns": [label for _, label, _ in series],
        "rows": rows,
        "total": sum(totals),
    }


def chart_html(chart: dict, *, id: str, title: str, x_title: str) -> SafeString:
    """The chart as SVG, its legend, and its numbers as a table, written here rather than in a
    template: a year of days is thousands of elements, and the template engine took ~30 ms a chart.
    Numbers are written as they are; every text goes through html.escape."""
    if not chart["total"]:
        return format_html(
            '<figure class="mb-2" id="{}"><p class="text-muted small mb-0">None in this period.</p></figure>', id
        )
    esc = html.escape
    left, right, axis = chart["left"], chart["plot_right"], chart["axis_y"]
    out = [
        f'<figure class="mb-2" id="{esc(id)}">',
        f'<svg class="w-100 h-auto" viewBox="0 0 {chart["width"]} {chart["height"]}" role="img" '
        f'aria-labelledby="{esc(id)}-title" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{esc(id)}-title">{esc(title)}: {chart["total"]} in all</title>',
    ]
    for t in chart["ticks"]:
        out.append(
            f'<line x1="{left}" x2="{right}" y1="{t["y"]}" y2="{t["y"]}" stroke="#dee2e6"/>'
            f'<text x="{left - 4}" y="{t["y"]}" text-anchor="end" dominant-baseline="middle" '
            f'font-size="11" fill="#6c757d">{t["value"]}</text>'
        )
    for bar in chart["bars"]:
        x, w = bar["x"], bar["w"]
        out.append("<g>")
        out.extend(
            f'<rect x="{x}" y="{s["y"]}" width="{w}" height="{s["h"]}" fill="{esc(s["fill"])}">'
            f"<title>{esc(s['title'])}</title></rect>"
            for s in bar["segments"]
        )
        out.append("</g>")
    out.append(f'<line x1="{left}" x2="{right}" y1="{axis}" y2="{axis}" stroke="#6c757d"/>')
    out.extend(
        f'<text x="{label["x"]}" y="{chart["label_y"]}" text-anchor="middle" font-size="11" '
        f'fill="#495057">{esc(label["text"])}</text>'
        for label in chart["xlabels"]
    )
    out.append('</svg><figcaption class="small">')
    out.extend(
        '<span class="me-3 text-nowrap"><svg width="10" height="10" aria-hidden="true">'
        f'<rect width="10" height="10" fill="{esc(item["fill"])}"/></svg> {esc(item["label"])}</span>'
        for item in chart["legend"]
    )
    out.append(
        f'</figcaption><details class="mt-1"><summary class="small">{esc(title)} as a table</summary>'
        '<div class="table-responsive"><table class="table table-sm table-striped small mb-0 chart-table">'
        f'<thead><tr><th scope="col">{esc(x_title)}</th>'
    )
    out.extend(f'<th scope="col" class="text-end">{esc(c)}</th>' for c in chart["columns"])
    out.append('<th scope="col" class="text-end">Total</th></tr></thead><tbody>')
    for first, *counts in chart["rows"]:
        cells = "".join(f'<td class="text-end">{n}</td>' for n in counts)
        out.append(f'<tr><th scope="row" class="fw-normal text-nowrap">{esc(first)}</th>{cells}</tr>')
    out.append("</tbody></table></div></details></figure>")
    return mark_safe("".join(out))  # noqa: S308 - numbers as computed here, every text through html.escape


def _category_series() -> list[tuple[str, str, str]]:
    return [(key, label, CATEGORY_COLOURS[key]) for key, label in Category.choices]


def duration_words(seconds: float | None) -> str:
    """3 d 4 h, 5 h 12 min, 40 min, 12 s: the largest unit and the next, for a person reading a figure."""
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    units = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))
    i = next((i for i, (_, size) in enumerate(units) if seconds >= size), len(units) - 1)
    name, size = units[i]
    words = f"{seconds // size} {name}"
    if i + 1 < len(units):
        next_name, next_size = units[i + 1]
        if seconds % size // next_size:
            words += f" {seconds % size // next_size} {next_name}"
    return words


def _share(rows: list[dict], key: str) -> list[dict]:
    """Each row's bar width (0-100) relative to the first (largest) row."""
    most = max((row[key] for row in rows), default=0) or 1
    for row in rows:
        row["share"] = round(100 * row[key] / most, 1)
    return rows


# -- views ----------------------------------------------------------------------------------------


@role_required(MANAGER)
def numbers(request: HttpRequest) -> HttpResponse:
    form, f = _filters(request)
    data = stats.cached_numbers(f)
    day_text = date.isoformat
    charts = {
        "reports": stacked_bars(f.days, _category_series(), data.reports_per_day, x_text=day_text),
        "cases": stacked_bars(f.days, _category_series(), data.cases_per_day, x_text=day_text),
        "cut_offs": stacked_bars(
            data.months, CUT_OFF_SERIES, data.cut_offs_per_month, x_text=lambda m: m.strftime("%Y-%m"), height=180
        ),
    }
    charts["reports"]["html"] = chart_html(
        charts["reports"], id="chart-reports", title="Reports per day", x_title="Day"
    )
    charts["cases"]["html"] = chart_html(charts["cases"], id="chart-cases", title="Cases opened per day", x_title="Day")
    charts["cut_offs"]["html"] = chart_html(
        charts["cut_offs"], id="chart-cut-offs", title="Suspensions and terminations per month", x_title="Month"
    )
    durations = [
        ("first-notice", "Time to first notice", "cases opened in the period with a notice sent", data.first_notice),
        ("resolution", "Time to resolution", "cases resolved in the period", data.resolution),
    ]
    return render(
        request,
        "cases/managers/numbers.html",
        {
            "form": form,
            "filters": f,
            "query": request.GET.urlencode(),
            "charts": charts,
            "durations": [
                {
                    "id": i,
                    "title": t,
                    "scope": s,
                    "n": p.count,
                    "median": duration_words(p.median),
                    "p90": duration_words(p.p90),
                }
                for i, t, s, p in durations
            ],
            "repeat_offenders": _share(data.repeat_offenders, "cases"),
            "top_reporters": _share(data.top_reporters, "reports"),
            "cache_seconds": stats.CACHE_SECONDS,
        },
    )


@role_required(MANAGER)
def history(request: HttpRequest) -> HttpResponse:
    form, f = _filters(request)
    events = stats.history(f).select_related("case__customer", "actor")
    page = Paginator(events, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    for event in page:
        event.old_words, event.new_words = rung_words(event.old), rung_words(event.new)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "cases/managers/history.html",
        {"form": form, "filters": f, "page": page, "query": query.urlencode()},
    )


class _Echo:
    """csv.writer writes into this and gets the line back, so rows stream one by one."""

    def write(self, value: str) -> str:
        return value


# OWASP's list: a spreadsheet runs a cell starting with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value) -> str:
    """A cell a spreadsheet shows as text: formulas are quoted with a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_lines(header: Iterable[str], rows: Iterable[Iterable]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([csv_safe(cell) for cell in row])


def _history_cells(rows: Iterable[tuple]) -> Iterator[tuple]:
    """The case id as its reference (AD-12), as the desk shows it."""
    for row in rows:
        yield (row[0], f"AD-{row[1]}", *row[2:])


@role_required(MANAGER)
def history_csv(request: HttpRequest) -> StreamingHttpResponse:
    _, f = _filters(request)
    header = [name for name, _ in stats.HISTORY_COLUMNS]
    response = StreamingHttpResponse(
        csv_lines(header, _history_cells(stats.history_rows(f))), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="escalations-{f.start}-to-{f.end}.csv"'
    return response
