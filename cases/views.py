"""NOC pages: the queue, cases, inbound messages and hand-entered complaints.

Views are thin: fetch through an access helper, validate a form, call one service, redirect.
Every view here needs the noc role (managers and admins have it too); anonymous users are
sent to the login page by LoginRequiredMiddleware.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Case as SqlCase
from django.db.models import Count, Exists, IntegerField, Max, OuterRef, Prefetch, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from abusedesk.roles import MANAGER, NOC, role_required
from cases import forms as ladder_forms
from cases.forms import AssignForm, ComplaintForm, NoteForm, StatusForm, UploadForm
from cases.models import (
    OPEN_APPROVAL_STATUSES,
    OPEN_STATUSES,
    Approval,
    ApprovalStatus,
    Case,
    CustomerReply,
    InboundMessage,
    Notice,
    NoticeKind,
    ParseStatus,
    Report,
    Rung,
    StepMode,
    UnassignedReason,
)
from cases.services import intake, ladder, workflow
from cases.services.common import TransitionError
from cases.services.filing import IntakeSummary
from cases.templatetags.case_words import in_utc
from cases.timeline import customer_timeline as build_timeline
from customers import resolver
from customers.models import Allocation, Customer

PAGE_SIZE = 50
RAW_PREVIEW_BYTES = 64 * 1024


def _page(request: HttpRequest, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def _get_case(pk: int) -> Case:
    return get_object_or_404(Case.objects.select_related("customer", "assignee"), pk=pk)


def _get_approval(pk: int) -> Approval:
    return get_object_or_404(Approval.objects.select_related("case__customer"), pk=pk)


def _get_report(pk: int) -> Report:
    # Only reports on a case have ladder actions; the case page is where they are taken.
    return get_object_or_404(Report.objects.select_related("case"), pk=pk, case__isnull=False)


# Case-wide ladder actions: the form the panel shows for each, and the URL it posts to.
CASE_ACTION_FORMS: dict[str, type[ladder_forms.LadderActionForm]] = {
    "send_proposed": ladder_forms.SendProposedForm,
    "propose": ladder_forms.ProposeForm,
    "cancel_scheduled": ladder_forms.CancelScheduledForm,
    "reinstate": ladder_forms.ReinstateForm,
    "hold": ladder_forms.HoldForm,
    "release_hold": ladder_forms.ReleaseHoldForm,
    "de_escalate": ladder_forms.DeEscalateForm,
    "merge": ladder_forms.MergeForm,
}


def _ladder_panel(request: HttpRequest, case: Case) -> dict:
    """What the ladder panel shows: the rung, the next step in words, the state, and the forms
    for exactly the actions this user may take (ladder.allowed_actions decides, not the page)."""
    approvals = list(case.approvals.all())  # prefetched by case_detail
    open_approval = next((a for a in approvals if a.status in OPEN_APPROVAL_STATUSES), None)
    actions = ladder.allowed_actions(case, request.user)
    action_forms = {}
    if open_approval is not None:  # a manager's decision first: it is what the panel is about
        for name, form_class in (("approve", ladder_forms.ApproveForm), ("refuse", ladder_forms.RefuseForm)):
            if name in actions:
                action_forms[name] = form_class(
                    action=reverse(f"cases:approval_{name}", args=[open_approval.pk]), auto_id=f"{name}_%s"
                )
    for name, form_class in CASE_ACTION_FORMS.items():
        if name in actions:
            action_forms[name] = form_class(action=reverse(f"cases:case_{name}", args=[case.pk]), auto_id=f"{name}_%s")
    if "propose" in action_forms:
        action_forms["propose"].initial["rung"] = ladder.NEXT_RUNG.get(Rung(case.rung))
    step = ladder.describe_case(case)
    return {
        "step": step,
        "step_mode": StepMode(step.mode).label if step.mode else "",
        "actions": actions,
        "action_forms": action_forms,
        "open_approval": open_approval,
        "past_approvals": [a for a in approvals if a is not open_approval],
        "provisioning_calls": case.provisioning_calls.order_by("-created_at", "-id")[:10],
    }


@role_required(NOC)
def case_detail(request: HttpRequest, pk: int) -> HttpResponse:
    case = get_object_or_404(
        Case.objects.select_related("customer", "assignee", "merged_into").prefetch_related(
            Prefetch("approvals", queryset=Approval.objects.select_related("proposed_by", "decided_by")),
            Prefetch("replies", queryset=CustomerReply.objects.select_related("reviewed_by")),  # partials/replies.html
        ),
        pk=pk,
    )
    reports = _report_page(case, request.GET.get("rp"))
    events = case.events.select_related("actor", "report").order_by("-at", "-id")[:200]
    notices = case.notices.order_by("created_at", "id")
    return render(
        request,
        "cases/case_detail.html",
        {
            "case": case,
            "reports": reports,
            "events": events,
            "notices": notices,
            "note_form": NoteForm(),
            "status_form": StatusForm(
                case=case, action=reverse("cases:case_status", args=[case.pk]), auto_id="status_%s"
            ),
            "assign_form": AssignForm(
                initial={"assignee": case.assignee_id},
                action=reverse("cases:case_assign", args=[case.pk]),
                auto_id="assign_%s",
            ),
            "contacts": case.customer.contacts.all(),
            "other_cases": _other_cases(case),
            "matched_allocations": _matched_allocations(case),
            **_ladder_panel(request, case),
        },
    )


# Reports per page: a case may hold thousands (one feed's); rendering 200 rows was most of the page's time.
CASE_REPORTS_PER_PAGE = 50
MAX_REPORT_PAGE = 1000
# Distinct (allocation, address) pairs read for "matched allocations"; a case has a handful.
MATCHED_PAIRS = 50
OTHER_CASES_SHOWN = 20
# Reports whose allocation is not stored (filed before it was, or the allocation was deleted since)
# are resolved again for display: one resolve() per distinct address, at most this many per page.
RESOLVE_FOR_DISPLAY = 5


def _other_cases(case: Case) -> list[Case]:
    """The customer's other cases, open ones first, each flagged when it led to a notice to the
    customer (one EXISTS per row on notice_case_time_idx; acknowledgements to reporters do not count)."""
    return list(
        Case.objects.filter(customer_id=case.customer_id)
        .exclude(pk=case.pk)
        .annotate(
            led_to_notice=Exists(Notice.objects.filter(case=OuterRef("pk")).exclude(kind=NoticeKind.REPORTER_ACK)),
            closed=SqlCase(When(status__in=OPEN_STATUSES, then=Value(0)), default=Value(1)),
        )
        .order_by("closed", "-last_report_at", "-pk")[:OTHER_CASES_SHOWN]  # case_customer_rung_idx
    )


@dataclass
class MatchedAllocation:
    """An allocation that matched reports on the page, with the addresses it matched."""

    allocation: Allocation
    ips: list[str]
    stored: bool  # False: not stored on the report, resolved again now for display


@dataclass
class ReportPage:
    """One page of a case's reports, read with LIMIT n+1 (the case's report_count is the total)."""

    rows: list[Report]
    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def _report_page(case: Case, number: str | None) -> ReportPage:
    try:
        page = min(max(int(number or 1), 1), MAX_REPORT_PAGE)
    except ValueError:
        page = 1
    start = (page - 1) * CASE_REPORTS_PER_PAGE
    # report_case_time_idx. The page names only each report's message id: no message row (nor its
    # raw bytes, a 30 MB feed) is loaded.
    rows = list(
        case.reports.select_related("confirmed_by").order_by("-occurred_at", "-id")[
            start : start + CASE_REPORTS_PER_PAGE + 1
        ]
    )
    return ReportPage(rows[:CASE_REPORTS_PER_PAGE], page, len(rows) > CASE_REPORTS_PER_PAGE)


def _matched_allocations(case: Case) -> list[MatchedAllocation]:
    """Every allocation the case's reports matched (stored by filing on each report), with the
    addresses; three queries and at most RESOLVE_FOR_DISPLAY resolve() calls, whatever the size."""
    stored = list(
        case.reports.filter(allocation__isnull=False)
        .order_by()
        .values_list("allocation_id", "ip")
        .distinct()[:MATCHED_PAIRS]
    )
    allocations = Allocation.objects.in_bulk({pk for pk, _ in stored})
    found: dict[int, MatchedAllocation] = {}
    for pk, ip in stored:
        if pk in allocations:
            found.setdefault(pk, MatchedAllocation(allocations[pk], [], True)).ips.append(ip)
    # Not stored (filed before filing kept it, or the allocation was deleted since): the latest first.
    unresolved = (
        case.reports.filter(allocation__isnull=True)
        .order_by()
        .values_list("ip")
        .annotate(last=Max("occurred_at"))
        .order_by("-last")
    )
    for ip, at in unresolved[:RESOLVE_FOR_DISPLAY]:
        allocation = resolver.resolve(ip, at)
        if allocation is not None:
            entry = found.setdefault(allocation.pk, MatchedAllocation(allocation, [], False))
            if ip not in entry.ips:
                entry.ips.append(ip)
    for entry in found.values():
        entry.ips.sort()
    return sorted(found.values(), key=lambda m: m.allocation.valid_from, reverse=True)


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
        sure = form.errors.get("sure")
        messages.error(request, " ".join(sure) if sure else "That status change is not possible.")
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


@require_POST
@role_required(NOC)
def case_assign(request: HttpRequest, pk: int) -> HttpResponse:
    """Give the case to any colleague with the noc role, or to nobody."""
    case = _get_case(pk)
    form = AssignForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a colleague with the noc role.")
        return redirect(case)
    assignee = form.cleaned_data["assignee"]
    workflow.assign_case(case, assignee, actor=request.user)
    messages.success(request, f"Assigned to {assignee.get_username()}." if assignee else "Nobody is assigned now.")
    return redirect(case)


# --- the ladder's actions ----------------------------------------------------------------------------
# Each: POST only, role checked here (and again by the service), the object through its access
# helper (404), the form validated, ONE service call; a refused move becomes a message, never a
# 500; then back to where the form was (the case page, or the approval queue via `next`).


def _back(request: HttpRequest, default) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(default)


def _act(
    request: HttpRequest,
    form: ladder_forms.LadderActionForm,
    call: Callable[[dict], object],
    *,
    done: str | Callable[[object], str],
    back,
) -> HttpResponse:
    """Validate, make the one service call, say what happened, go back (`back` may take the result)."""
    if not form.is_valid():
        messages.error(request, form.error_text())
        return _back(request, back if not callable(back) else back(None))
    try:
        result = call(form.cleaned_data)
    except (TransitionError, PermissionDenied) as exc:
        messages.error(request, str(exc) or "You may not do that.")
        result = None
    else:
        messages.success(request, done(result) if callable(done) else done)
    return _back(request, back(result) if callable(back) else back)


@require_POST
@role_required(NOC)
def case_send_proposed(request: HttpRequest, pk: int) -> HttpResponse:
    case = _get_case(pk)
    return _act(
        request,
        ladder_forms.SendProposedForm(request.POST),
        lambda d: ladder.send_proposed_step(case, actor=request.user),
        done=lambda c: f"{c.get_rung_display()} written; a worker sends it now.",
        back=case,
    )


@require_POST
@role_required(NOC)
def case_propose(request: HttpRequest, pk: int) -> HttpResponse:
    case = _get_case(pk)
    return _act(
        request,
        ladder_forms.ProposeForm(request.POST),
        lambda d: ladder.propose_step(case, d["rung"], actor=request.user, reason=d["reason"]),
        done=lambda a: f"{a.get_rung_display()} proposed; it waits for a manager.",
        back=case,
    )


def _approved_text(approval: Approval) -> str:
    if approval.status == ApprovalStatus.SCHEDULED:
        return f"{approval.get_rung_display()} approved, scheduled for {in_utc(approval.scheduled_for)}."
    return f"{approval.get_rung_display()} approved and carried out."


@require_POST
@role_required(MANAGER)
def approval_approve(request: HttpRequest, pk: int) -> HttpResponse:
    approval = _get_approval(pk)
    return _act(
        request,
        ladder_forms.ApproveForm(request.POST),
        lambda d: ladder.approve(approval, actor=request.user, reason=d["reason"], scheduled_for=d["scheduled_for"]),
        done=_approved_text,
        back=approval.case,
    )


@require_POST
@role_required(MANAGER)
def approval_refuse(request: HttpRequest, pk: int) -> HttpResponse:
    approval = _get_approval(pk)
    return _act(
        request,
        ladder_forms.RefuseForm(request.POST),
        lambda d: ladder.refuse(approval, actor=request.user, reason=d["reason"]),
        done=lambda a: f"{a.get_rung_display()} refused.",
        back=approval.case,
    )


@require_POST
@role_required(NOC)
def case_cancel_scheduled(request: HttpRequest, pk: int) -> HttpResponse:
    case = _get_case(pk)
    return _act(
        request,
        ladder_forms.CancelScheduledForm(request.POST),
        lambda d: ladder.cancel_scheduled(case, actor=request.user, reason=d["reason"]),
        done=lambda a: f"The scheduled {a.get_rung_display().lower()} is cancelled.",
        back=case,
    )


@require_POST
@role_required(MANAGER)
def case_reinstate(request: HttpRequest, pk: int) -> HttpResponse:
    case = _get_case(pk)
    return _act(
        request,
        ladder_forms.ReinstateForm(request.POST),
        lambda d: ladder.reinstate(case, actor=request.user, reason=d["reason"]),
        done="Reinstated: back to a warning, on probation.",
        back=case,
    )


@require_POST
@role_required(NOC)
def case_hold(request: HttpRequest, pk: int) -> HttpResponse:
    case = _get_case(pk)
    return _act(
        request,
        ladder_forms.HoldForm(request.POST),
        lambda d: ladder.hold_case(case, until=d["until"], reason=d["reason"], actor=request.user),
        done="Escalation is on hold.",
        back=case,
    )


@require_POST
@role_required(NOC)
def case_release_hold(request: HttpRequest, pk: int) -> HttpResponse:
    case = _get_case(pk)
    return _act(
        request,
        ladder_forms.ReleaseHoldForm(request.POST),
        lambda d: ladder.release_hold(case, actor=request.user),
        done="Hold released.",
        back=case,
    )


@require_POST
@role_required(NOC)
def case_de_escalate(request: HttpRequest, pk: int) -> HttpResponse:
    case = _get_case(pk)
    return _act(
        request,
        ladder_forms.DeEscalateForm(request.POST),
        lambda d: ladder.de_escalate(case, actor=request.user, reason=d["reason"]),
        done=lambda c: f"Stepped down to {c.get_rung_display().lower()}.",
        back=case,
    )


@require_POST
@role_required(NOC)
def case_merge(request: HttpRequest, pk: int) -> HttpResponse:
    case = _get_case(pk)
    return _act(
        request,
        ladder_forms.MergeForm(request.POST),
        lambda d: ladder.merge_cases(case, d["target"], actor=request.user, reason=d["reason"]),
        done=lambda target: f"{case.reference} merged into {target.reference}.",
        back=lambda target: target or case,
    )


@require_POST
@role_required(NOC)
def report_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    report = _get_report(pk)
    return _act(
        request,
        ladder_forms.ConfirmReportForm(request.POST),
        lambda d: ladder.confirm_report(report, actor=request.user),
        done=f"Report {report.pk} confirmed: it counts now.",
        back=report.case,
    )


@require_POST
@role_required(NOC)
def report_reject(request: HttpRequest, pk: int) -> HttpResponse:
    report = _get_report(pk)
    return _act(
        request,
        ladder_forms.RejectReportForm(request.POST),
        lambda d: ladder.reject_report(report, actor=request.user, reason=d["reason"]),
        done=f"Report {report.pk} rejected as false.",
        back=report.case,
    )


# --- managers' pages ---------------------------------------------------------------------------------


def _report_count(**filters) -> Coalesce:
    """Reports on the approval's case matching filters, as a subquery (report_case_time_idx)."""
    counted = (
        Report.objects.filter(case_id=OuterRef("case_id"), duplicate_of__isnull=True, **filters)
        .order_by()
        .values("case_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


@role_required(MANAGER)
def approval_queue(request: HttpRequest) -> HttpResponse:
    """Suspensions and terminations waiting for a manager, oldest first; scheduled ones below."""
    pending = (
        Approval.objects.pending()
        .select_related("case__customer", "case__assignee", "proposed_by")
        .annotate(
            unconfirmed=_report_count(needs_confirmation=True, confirmed_at__isnull=True, rejected_at__isnull=True),
            rejected=_report_count(rejected_at__isnull=False),
        )
        .order_by("proposed_at", "pk")  # approval_queue_idx
    )
    scheduled = (
        Approval.objects.filter(status=ApprovalStatus.SCHEDULED)
        .select_related("case__customer", "decided_by")
        .order_by("scheduled_for", "pk")  # approval_scheduled_idx
    )
    page = _page(request, pending)
    queue_url = reverse("cases:approval_queue")
    for approval in page:
        approval.approve_form = ladder_forms.ApproveForm(
            action=reverse("cases:approval_approve", args=[approval.pk]),
            next_url=queue_url,
            auto_id=f"a{approval.pk}_%s",
        )
        approval.refuse_form = ladder_forms.RefuseForm(
            action=reverse("cases:approval_refuse", args=[approval.pk]),
            next_url=queue_url,
            auto_id=f"r{approval.pk}_%s",
        )
    scheduled = list(scheduled[:PAGE_SIZE])
    for approval in scheduled:
        approval.cancel_form = ladder_forms.CancelScheduledForm(
            action=reverse("cases:case_cancel_scheduled", args=[approval.case_id]),
            next_url=queue_url,
            auto_id=f"c{approval.pk}_%s",
        )
    return render(request, "cases/approval_queue.html", {"page": page, "scheduled": scheduled})


@role_required(NOC)
def customer_timeline(request: HttpRequest, customer: int) -> HttpResponse:
    """A customer's escalation history across all cases: managers review it, NOC staff read it."""
    timeline = build_timeline(get_object_or_404(Customer, pk=customer))
    return render(request, "cases/customer_timeline.html", {"timeline": timeline, "customer": timeline.customer})


def _event_form(message: InboundMessage, data=None) -> ComplaintForm:
    action = reverse("cases:message_add_event", args=[message.pk])
    return ComplaintForm(data, submit_label="File this event", action=action)


def _message_page_queryset():
    # The page shows the start of the message; the whole of it is the raw download's.
    return InboundMessage.objects.select_related("received_by").with_raw_head(RAW_PREVIEW_BYTES)


def _render_message(request: HttpRequest, message: InboundMessage, form: ComplaintForm, status: int = 200):
    raw = bytes(message.raw_head or b"")
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
    message = get_object_or_404(_message_page_queryset(), pk=pk)
    return _render_message(request, message, _event_form(message))


@role_required(NOC)
def message_raw(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(InboundMessage.objects.with_raw(), pk=pk)
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
    message = get_object_or_404(_message_page_queryset(), pk=pk)
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


# Why a typed-in report has no customer, in the words the person who typed it needs.
_UNASSIGNED_TEXT = {
    UnassignedReason.OUTSIDE: "Filed in the unassigned queue: the address is outside our address space.",
    UnassignedReason.NOT_HELD: "Filed in the unassigned queue: no customer held that address then.",
    UnassignedReason.UNRESOLVED: "Filed in the unassigned queue: the host name did not resolve.",
    UnassignedReason.BOGON: "Kept as not a routable address: nobody on the Internet can hold it, so it is not queued.",
}


def _summary_text(summary: IntakeSummary) -> str:
    if summary.duplicates and not summary.created:
        return "Already on file: counted as a duplicate."
    if summary.unassigned:
        reason = Report.objects.filter(pk__in=summary.new_report_ids, customer__isnull=True).values_list(
            "unassigned_reason", flat=True
        )
        return _UNASSIGNED_TEXT.get(reason.first(), _UNASSIGNED_TEXT[UnassignedReason.NOT_HELD])
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
