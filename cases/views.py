"""NOC pages: the queue, cases, inbound messages and hand-entered complaints.

Views are thin: fetch through an access helper, validate a form, call one service, redirect.
Every view here needs the noc role (managers and admins have it too); anonymous users are
sent to the login page by LoginRequiredMiddleware.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from abusedesk.roles import NOC, role_required
from cases.forms import ComplaintForm, NoteForm, StatusForm, UploadForm
from cases.models import (
    Case,
    CaseStatus,
    Category,
    InboundMessage,
    ParseStatus,
    Report,
)
from cases.services import intake, workflow
from cases.services.common import TransitionError, storable
from cases.services.filing import IntakeSummary

PAGE_SIZE = 50
RAW_PREVIEW_BYTES = 64 * 1024


def _page(request: HttpRequest, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


@role_required(NOC)
def home(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "active")
    category = request.GET.get("category", "")
    cases = Case.objects.select_related("customer", "assignee")
    if status == "active":  # the working queue: open and waiting on the customer
        cases = cases.open()
    elif status in CaseStatus.values:
        cases = cases.filter(status=status)
    if category in Category.values:
        cases = cases.filter(category=category)
    query = storable(request.GET.get("q", "")).strip()[:200]
    if query:
        cases = cases.search(query)
    counts = {
        "unparsed": InboundMessage.objects.unparsed().count(),
        "unassigned": Report.objects.unassigned().count(),
        "open": Case.objects.open().count(),
    }
    return render(
        request,
        "cases/home.html",
        {
            "page": _page(request, cases),
            "status": status,
            "category": category,
            "query": query,
            "statuses": CaseStatus.choices,
            "categories": Category.choices,
            "counts": counts,
        },
    )


def _get_case(pk: int) -> Case:
    return get_object_or_404(Case.objects.select_related("customer", "assignee"), pk=pk)


@role_required(NOC)
def case_detail(request: HttpRequest, pk: int) -> HttpResponse:
    case = _get_case(pk)
    reports = case.reports.select_related("message").order_by("-occurred_at")[:200]
    events = case.events.select_related("actor", "report").order_by("-at", "-id")[:200]
    return render(
        request,
        "cases/case_detail.html",
        {
            "case": case,
            "reports": reports,
            "events": events,
            "note_form": NoteForm(),
            "status_form": StatusForm(case=case),
            "contacts": case.customer.contacts.all(),
        },
    )


@require_POST
@role_required(NOC)
def case_note(request: HttpRequest, pk: int) -> HttpResponse:
    case = _get_case(pk)
    form = NoteForm(request.POST)
    if form.is_valid():
        workflow.add_case_note(case, form.cleaned_data["note"], actor=request.user)
        messages.success(request, "Note added.")
    else:
        messages.error(request, "A note cannot be empty.")
    return redirect(case)


@require_POST
@role_required(NOC)
def case_status(request: HttpRequest, pk: int) -> HttpResponse:
    case = _get_case(pk)
    form = StatusForm(request.POST, case=case)
    if not form.is_valid():
        messages.error(request, "That status change is not possible.")
        return redirect(case)
    try:
        workflow.change_case_status(
            case, form.cleaned_data["status"], actor=request.user, note=form.cleaned_data["note"]
        )
    except TransitionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Status changed.")
    return redirect(case)


@require_POST
@role_required(NOC)
def case_take(request: HttpRequest, pk: int) -> HttpResponse:
    case = _get_case(pk)
    workflow.assign_case(case, request.user, actor=request.user)
    messages.success(request, "The case is yours.")
    return redirect(case)


@role_required(NOC)
def message_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", ParseStatus.UNPARSED)
    qs = InboundMessage.objects.defer("raw").order_by("-received_at", "-id")
    if status in ParseStatus.values:
        qs = qs.filter(status=status)
    qs = qs.annotate(report_total=Count("reports"))
    return render(
        request,
        "cases/message_list.html",
        {"page": _page(request, qs), "status": status, "statuses": ParseStatus.choices},
    )


def _event_form(message: InboundMessage, data=None) -> ComplaintForm:
    action = reverse("cases:message_add_event", args=[message.pk])
    return ComplaintForm(data, submit_label="File this event", action=action)


def _render_message(request: HttpRequest, message: InboundMessage, form: ComplaintForm, status: int = 200):
    raw = bytes(message.raw[:RAW_PREVIEW_BYTES])
    reports = message.reports.select_related("customer", "case").order_by("-occurred_at")[:200]
    return render(
        request,
        "cases/message_detail.html",
        {
            "message": message,
            "raw_preview": raw.decode("utf-8", errors="replace"),
            "raw_cut": message.size > RAW_PREVIEW_BYTES,
            "reports": reports,
            "form": form,
        },
        status=status,
    )


@role_required(NOC)
def message_detail(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(InboundMessage.objects.select_related("received_by"), pk=pk)
    return _render_message(request, message, _event_form(message))


@role_required(NOC)
def message_raw(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(InboundMessage, pk=pk)
    response = HttpResponse(bytes(message.raw), content_type="application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="message-{message.pk}.eml"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_POST
@role_required(NOC)
def message_reparse(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(InboundMessage, pk=pk)
    try:
        summary = intake.reparse_message(message, actor=request.user)
    except TransitionError as exc:
        messages.error(request, str(exc))
        return redirect(message)
    message.refresh_from_db(fields=["status", "parse_error"])
    if message.status == ParseStatus.PARSED and summary is not None:
        messages.success(request, f"Parsed: {summary.created} new reports, {summary.duplicates} duplicates.")
    else:
        messages.warning(request, f"Still could not parse it: {message.parse_error}")
    return redirect(message)


@require_POST
@role_required(NOC)
def message_add_event(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(InboundMessage.objects.select_related("received_by"), pk=pk)
    form = _event_form(message, request.POST)
    if not form.is_valid():
        return _render_message(request, message, form, status=400)
    try:
        _, summary = intake.enter_report(message=message, actor=request.user, **form.cleaned_data)
    except TransitionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _summary_text(summary))
    return redirect(message)


def _summary_text(summary: IntakeSummary) -> str:
    if summary.duplicates and not summary.created:
        return "Already on file: counted as a duplicate."
    if summary.unassigned:
        return "Filed in the unassigned queue: no customer held that address then."
    return "Filed on the customer's case."


@role_required(NOC)
def complaint_new(request: HttpRequest) -> HttpResponse:
    form = ComplaintForm(request.POST) if request.method == "POST" else ComplaintForm()
    if request.method == "POST" and form.is_valid():
        message, summary = intake.enter_report(actor=request.user, **form.cleaned_data)
        messages.success(request, _summary_text(summary))
        case_id = message.reports.values_list("case_id", flat=True).first()
        return redirect("cases:case_detail", pk=case_id) if case_id else redirect(message)
    return render(request, "cases/complaint_form.html", {"form": form}, status=400 if form.is_bound else 200)


@role_required(NOC)
def upload(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST, request.FILES) if request.method == "POST" else UploadForm()
    if request.method == "POST" and form.is_valid():
        stored = again = 0
        for f in form.cleaned_data["files"]:
            _, created = intake.receive(f.read(), "upload", actor=request.user)
            stored += created
            again += not created
        messages.success(request, f"Stored {stored} message(s){f'; {again} were already stored' if again else ''}.")
        return redirect(reverse("cases:message_list") + "?status=")
    return render(request, "cases/upload.html", {"form": form}, status=400 if form.is_bound else 200)


@role_required(NOC)
def unassigned(request: HttpRequest) -> HttpResponse:
    qs = Report.objects.unassigned().select_related("message").order_by("-occurred_at", "-id")
    return render(request, "cases/unassigned.html", {"page": _page(request, qs)})
