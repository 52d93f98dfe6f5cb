"""The NOC queue (the home page): cases needing action first, filters, search, sorting, bulk actions.

Everything that shapes the list is in the GET parameters, so a queue URL can be shared. Bulk
actions POST the selected cases; each case goes through the same service, with the same role
check, as the button on its case page, and each refusal is reported for its case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Case as CaseWhen
from django.db.models import IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from abusedesk.roles import ADMIN, MANAGER, NOC, role_required
from cases import search as case_search
from cases.models import (
    Approval,
    Case,
    CaseEvent,
    CaseStatus,
    Category,
    CustomerReply,
    InboundMessage,
    Notice,
    NoticeStatus,
    Report,
    Rung,
)
from cases.services import ladder, workflow
from cases.services.common import TransitionError, storable
from customers.models import CustomerKind

PAGE_SIZES = (25, 50, 100)
DEFAULT_PAGE_SIZE = 50
BULK_MAX = max(PAGE_SIZES)

# Why a case needs a person, most urgent first; the number is the queue's sort key.
NEEDS = {
    "failed": (1, "notice failed", "A notice could not be sent"),
    "replied": (2, "reply to review", "The customer replied"),
    "review": (3, "due for review", "A step waits for a NOC member, or a hold has run out"),
    "approval": (4, "awaiting approval", "A suspension or termination waits for a manager"),
    "new": (5, "new", "Nobody has looked at it yet"),
}
NOTHING = 9

# Sortable columns: the GET value -> the ordering (a whitelist: nothing else reaches order_by).
SORTS = {
    "case": "pk",
    "customer": "customer__account",
    "category": "category",
    "status": "status",
    "rung": "rung",
    "reports": "report_count",
    "last": "last_report_at",
    "opened": "opened_at",
    "assignee": "assignee__username",
}
AGES = {
    "1d": ("Opened in the last day", timedelta(0), timedelta(days=1)),
    "7d": ("Opened 1 to 7 days ago", timedelta(days=1), timedelta(days=7)),
    "30d": ("Opened 7 to 30 days ago", timedelta(days=7), timedelta(days=30)),
    "old": ("Opened over 30 days ago", timedelta(days=30), None),
}
STATUS_CHOICES = [
    ("active", "Open and waiting"),
    ("action", "Needs action"),
    *CaseStatus.choices,
    ("all", "All"),
]


def colleagues() -> QuerySet:
    """Active users with the noc role (managers and admins have it too): who a case may go to."""
    return (
        get_user_model()
        .objects.filter(Q(groups__name__in=[NOC, MANAGER, ADMIN]) | Q(is_superuser=True), is_active=True)
        .distinct()
        .order_by("username")
    )


class QueueFilterForm(forms.Form):
    """The queue's GET parameters; anything invalid is dropped, never an error page."""

    q = forms.CharField(required=False)  # cut to case_search.MAX_TERM when parsed, never refused
    status = forms.ChoiceField(required=False, choices=STATUS_CHOICES)
    need = forms.ChoiceField(required=False, choices=[("", "Any")] + [(k, v[1]) for k, v in NEEDS.items()])
    rung = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, choices=[("", "Any")] + Rung.choices)
    category = forms.ChoiceField(required=False, choices=[("", "Every category")] + Category.choices)
    kind = forms.ChoiceField(required=False, choices=[("", "Every customer")] + CustomerKind.choices)
    assignee = forms.CharField(required=False, max_length=20)  # "me", "none" or a user id
    age = forms.ChoiceField(required=False, choices=[("", "Any age")] + [(k, v[0]) for k, v in AGES.items()])
    sort = forms.CharField(required=False, max_length=20)
    size = forms.TypedChoiceField(required=False, coerce=int, choices=[(n, n) for n in PAGE_SIZES])

    def values(self) -> dict:
        """The valid parameters only (an invalid one is as if absent), with defaults."""
        self.is_valid()
        data = {name: self.cleaned_data.get(name) for name in self.fields if name not in self.errors}
        data["q"] = storable(data.get("q") or "").strip()
        data["status"] = data.get("status") or "active"
        sort = data.get("sort") or ""
        data["sort"] = sort if sort.lstrip("-") in SORTS else ""
        data["size"] = data.get("size") or DEFAULT_PAGE_SIZE
        return data


@dataclass(frozen=True)
class Since:
    """When a case started needing action, how long ago that is, and whether past its target."""

    need: str
    at: datetime
    age_text: str
    target_text: str
    overdue: bool

    @classmethod
    def of(cls, need: str, at: datetime, now: datetime) -> Since:
        target, age = _target(need), now - at
        return cls(
            need=need,
            at=at,
            age_text=_duration(age),
            target_text=_duration(target) if target is not None else "",
            overdue=target is not None and age > target,
        )


def _duration(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} d"


def _target(need: str) -> timedelta | None:
    hours = settings.QUEUE_TARGET_HOURS.get(need)
    return timedelta(hours=hours) if hours is not None else None


def annotate_needs(cases: QuerySet[Case], now: datetime) -> QuerySet[Case]:
    """`need` (1..5, NOTHING for a quiet case) on each case, as NEEDS orders them.

    The notice and approval tests are uncorrelated IN subqueries: PostgreSQL hashes the few failed
    notices (notice_failed_idx) and pending approvals (approval_queue_idx) once, not per case.
    """
    failed = Notice.objects.filter(status=NoticeStatus.FAILED).order_by().values("case_id")
    pending = Approval.objects.pending().order_by().values("case_id")
    is_open = Q(status__in=[CaseStatus.OPEN, CaseStatus.WAITING])
    return cases.annotate(
        need=CaseWhen(
            When(is_open & Q(pk__in=failed), then=Value(NEEDS["failed"][0])),
            When(is_open & Q(awaiting_review=True), then=Value(NEEDS["replied"][0])),
            When(
                is_open & (Q(proposed_rung__isnull=False) | Q(hold_until__lte=now)),
                then=Value(NEEDS["review"][0]),
            ),
            When(is_open & Q(pk__in=pending), then=Value(NEEDS["approval"][0])),
            When(Q(status=CaseStatus.OPEN, rung=Rung.NONE, assignee__isnull=True), then=Value(NEEDS["new"][0])),
            default=Value(NOTHING),
            output_field=IntegerField(),
        )
    )


def queue_cases(params: dict, user, now: datetime) -> tuple[QuerySet[Case], case_search.Search]:
    cases = annotate_needs(Case.objects.all(), now)
    status = params["status"]
    if status == "active":
        cases = cases.open()
    elif status == "action":
        cases = cases.open().filter(need__lt=NOTHING)
    elif status in CaseStatus.values:
        cases = cases.filter(status=status)
    if params.get("need"):
        cases = cases.filter(need=NEEDS[params["need"]][0])
    if params.get("rung") is not None:
        cases = cases.filter(rung=params["rung"])
    if params.get("category"):
        cases = cases.filter(category=params["category"])
    if params.get("kind"):
        cases = cases.filter(customer__kind=params["kind"])
    assignee = params.get("assignee") or ""
    if assignee == "me":
        cases = cases.filter(assignee=user)
    elif assignee == "none":
        cases = cases.filter(assignee__isnull=True)
    elif assignee.isdecimal():
        cases = cases.filter(assignee_id=int(assignee))
    if params.get("age"):
        _, newer, older = AGES[params["age"]]
        cases = cases.filter(opened_at__lte=now - newer)
        if older is not None:
            cases = cases.filter(opened_at__gt=now - older)
    found = case_search.parse(params["q"])
    cases = case_search.filter_cases(cases, found)
    sort = params["sort"]
    if sort:
        field = SORTS[sort.lstrip("-")]
        desc = sort.startswith("-")
        cases = cases.order_by(f"-{field}" if desc else field, "-pk" if desc else "pk")
    else:
        cases = cases.order_by("need", "-last_report_at", "-pk")
    return cases, found


# When each reason to act began: the earliest unanswered event of that kind, per case on the page.
SINCE_SUBQUERIES = {
    "failed_at": (Notice.objects.filter(status=NoticeStatus.FAILED), "created_at"),
    "replied_at": (CustomerReply.objects.filter(reviewed_at__isnull=True), "received_at"),
    "approval_at": (Approval.objects.pending(), "proposed_at"),
    "proposed_at": (CaseEvent.objects.filter(kind="proposed"), "-at"),
}


def page_rows(ids: list[int], now: datetime) -> list[Case]:
    """The page's cases, in the order of ids, with their reason to act and since when: one query.

    The queue sorts ids only (a narrow top-N sort over the open cases); the rows, their customer,
    assignee and the per-case subqueries are read for the page's 10 to 100 cases alone."""
    since = {
        name: Subquery(qs.filter(case=OuterRef("pk")).order_by(order).values(order.lstrip("-"))[:1])
        for name, (qs, order) in SINCE_SUBQUERIES.items()
    }
    rows = (
        annotate_needs(Case.objects.select_related("customer", "assignee"), now)
        .annotate(**since)
        .order_by()
        .in_bulk(ids)
    )
    cases = [rows[pk] for pk in ids if pk in rows]
    for case in cases:
        case.need_key = next((k for k, v in NEEDS.items() if v[0] == case.need), "")
        case.need_label = NEEDS[case.need_key][1] if case.need_key else ""
        case.need_title = NEEDS[case.need_key][2] if case.need_key else ""
        at = {
            "failed": case.failed_at,
            "replied": case.replied_at,
            "review": _review_since(case),
            "approval": case.approval_at,
            "new": case.opened_at,
        }.get(case.need_key)
        case.since = Since.of(case.need_key, at or case.opened_at, now) if case.need_key else None
    return cases


def _review_since(case: Case) -> datetime | None:
    if case.proposed_rung is not None:
        return case.proposed_at or case.updated_at
    return case.hold_until


def header_counts() -> dict[str, int]:
    """The queue header's counts in one round trip (a scalar subquery each)."""
    parts = {
        "unparsed": InboundMessage.objects.unparsed(),
        "unassigned": Report.objects.unassigned(),
        "open": Case.objects.open(),
    }
    selects, params = [], []
    for name, qs in parts.items():
        sql, p = qs.order_by().values("pk").query.sql_with_params()
        selects.append(f"(SELECT COUNT(*) FROM ({sql}) AS {name}_rows) AS {name}")
        params.extend(p)
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(selects), params)
        row = cursor.fetchone()
    return dict(zip(parts, row, strict=True))


class BulkForm(forms.Form):
    ACTIONS = [
        ("assign", "Assign to"),
        ("resolve", "Resolve"),
        ("reject", "Reject"),
        ("send_proposed", "Send the proposed notice"),
    ]

    case = forms.TypedMultipleChoiceField(coerce=int, choices=[])
    action = forms.ChoiceField(choices=ACTIONS)
    assignee = forms.ModelChoiceField(queryset=None, required=False, empty_label="Unassigned")
    note = forms.CharField(required=False, max_length=2000)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = colleagues()

    def clean_case(self) -> list[int]:
        ids = self.cleaned_data["case"]
        if len(ids) > BULK_MAX:
            raise forms.ValidationError(f"At most {BULK_MAX} cases at once.")
        return ids

    def full_clean(self) -> None:
        # The cases are ids of any case: which exist, and what may be done to each, is checked per case.
        self.fields["case"].choices = [(v, v) for v in self.data.getlist("case") if str(v).isdecimal()]
        super().full_clean()


@role_required(NOC)
def home(request: HttpRequest) -> HttpResponse:
    params = QueueFilterForm(request.GET).values()
    now = timezone.now()
    cases, found = queue_cases(params, request.user, now)
    page = Paginator(cases.values_list("pk", flat=True), params["size"]).get_page(request.GET.get("page"))
    page.object_list = page_rows(list(page.object_list), now)
    people = list(colleagues())
    context = {
        "page": page,
        "params": params,
        "query": params["q"],
        "status": params["status"],
        "category": params.get("category") or "",
        "search": found,
        "filter_selects": filter_selects(params),
        "colleagues": people,
        "bulk_actions": BulkForm.ACTIONS,
        "sort": params["sort"],
        "sorts": sort_links(request, params["sort"]),
        "here": request.get_full_path(),
    }
    if request.htmx and request.htmx.target == "queue-results":
        return render(request, "cases/partials/queue_results.html", context)
    context["counts"] = header_counts()
    return render(request, "cases/home.html", context)


# The filter bar's selects, rendered by hand from the form's choices: Django's widget templates
# render each option through a template of its own, a third of the page's time at 50 rows.
FILTER_SELECTS = ("status", "need", "rung", "category", "kind", "age")


def filter_selects(params: dict) -> list[dict]:
    form_fields = QueueFilterForm.base_fields
    selects = []
    for name in FILTER_SELECTS:
        current = params.get(name)
        selects.append(
            {
                "name": name,
                "current": "" if current is None else str(current),
                "choices": [(str(value), label) for value, label in form_fields[name].choices],
            }
        )
    return selects


def sort_links(request: HttpRequest, current: str) -> dict[str, dict[str, str]]:
    """Each column's header link: sort by it, or reverse it when it is the sort already."""
    links = {}
    for column in SORTS:
        query = request.GET.copy()
        query.pop("page", None)
        state = "asc" if current == column else "desc" if current == f"-{column}" else ""
        query["sort"] = f"-{column}" if state == "asc" else column
        links[column] = {"url": "?" + query.urlencode(), "state": state}
    return links


def _back_to_queue(request: HttpRequest) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("cases:home")


@require_POST
@role_required(NOC)
def queue_bulk(request: HttpRequest) -> HttpResponse:
    form = BulkForm(request.POST)
    if not form.is_valid():
        problems = "; ".join(e for errors in form.errors.values() for e in errors)
        messages.error(request, f"Nothing was done: {problems}")
        return _back_to_queue(request)
    data = form.cleaned_data
    action, actor = data["action"], request.user
    by_pk = Case.objects.select_related("customer", "assignee").in_bulk(data["case"])
    done: list[Case] = []
    errors: list[str] = [f"#{pk}: no such case." for pk in data["case"] if pk not in by_pk]
    for pk in data["case"]:
        case = by_pk.get(pk)
        if case is None:
            continue
        try:
            if action == "assign":
                workflow.assign_case(case, data["assignee"], actor=actor)
            elif action == "resolve":
                workflow.change_case_status(case, CaseStatus.RESOLVED, actor=actor, note=data["note"])
            elif action == "reject":
                workflow.change_case_status(case, CaseStatus.REJECTED, actor=actor, note=data["note"])
            else:
                ladder.send_proposed_step(case, actor=actor)
        except (TransitionError, PermissionDenied) as exc:
            errors.append(f"{case.reference}: {exc or 'You may not do that.'}")
        else:
            done.append(case)
    if done:
        messages.success(request, _done_text(action, done, data["assignee"]))
    for error in errors:
        messages.error(request, error)
    return _back_to_queue(request)


def _done_text(action: str, done: list[Case], assignee) -> str:
    refs = ", ".join(c.reference for c in done[:20]) + (" and more" if len(done) > 20 else "")
    n = f"{len(done)} case{'s' if len(done) != 1 else ''}"
    if action == "assign":
        return f"{n} assigned to {assignee.get_username() if assignee else 'nobody'}: {refs}."
    if action == "send_proposed":
        return f"Proposed notices written for {n}; a worker sends them now: {refs}."
    return f"{n} {'resolved' if action == 'resolve' else 'rejected'}: {refs}."


def queue_url(**params) -> str:
    """A shareable queue URL with these filters (tests and other pages link to the queue with it)."""
    from urllib.parse import urlencode

    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return reverse("cases:home") + (f"?{query}" if query else "")
