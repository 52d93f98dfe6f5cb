"""NOC pages for what has no case yet: the inbox (inbound messages) and the unassigned queue.

Thin views: read the selection and the reason through a form, call one service in
cases.services.triage, say what happened, go back to the tab the user was on. Every view needs
the noc role; actions are POST only (CSRF checked by the middleware).
"""

from __future__ import annotations

from crispy_forms.helper import FormHelper
from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from abusedesk.lib.rdap import RdapError, RdapNotFound, RdapUnavailable
from abusedesk.roles import NOC, role_required
from cases.models import InboundMessage, ParseStatus, Report, UnassignedReason
from cases.services import triage
from cases.services.common import TransitionError

PAGE_SIZE = 50
MAX_SELECTED = 500  # one request's selection; the services lock what they change


def _page(request: HttpRequest, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


class SelectionForm(forms.Form):
    """The rows ticked on a list page (checkboxes named "ids"), and a reason where one is asked."""

    ids = forms.Field(widget=forms.MultipleHiddenInput, required=True)
    reason = forms.CharField(max_length=500, required=False, label="Reason")

    def __init__(self, *args, reason_required: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reason"].required = reason_required
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True

    def clean_ids(self) -> list[int]:
        ids = []
        for value in self.cleaned_data["ids"]:
            if not str(value).isdecimal() or len(str(value)) > 18:
                raise forms.ValidationError("The selection is not valid.")
            ids.append(int(value))
        if not ids:
            raise forms.ValidationError("Select at least one row.")
        if len(ids) > MAX_SELECTED:
            raise forms.ValidationError(f"Select at most {MAX_SELECTED} rows at once.")
        return sorted(set(ids))

    def error_text(self) -> str:
        return " ".join(str(e) for errors in self.errors.values() for e in errors)


def _back(request: HttpRequest, name: str, tab_param: str) -> HttpResponse:
    tab = request.POST.get("tab", "")
    url = reverse(name)
    return redirect(f"{url}?{tab_param}={tab}" if tab.isidentifier() or tab == "" else url)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# --- the inbox --------------------------------------------------------------------------------------


@role_required(NOC)
def message_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", ParseStatus.UNPARSED)
    qs = InboundMessage.objects.defer("raw").order_by("-received_at", "-id")
    if status in ParseStatus.values:
        qs = qs.filter(status=status)
    if status == ParseStatus.IGNORED:
        qs = qs.select_related("aside_by")
    qs = qs.annotate(report_total=Count("reports"))
    counts = dict(InboundMessage.objects.order_by().values_list("status").annotate(n=Count("pk")))
    tabs = [(value, label, counts.get(value, 0)) for value, label in ParseStatus.choices]
    return render(
        request,
        "cases/message_list.html",
        {
            "page": _page(request, qs),
            "status": status,
            "tabs": tabs,
            "total": sum(counts.values()),
            "can_restore": status == ParseStatus.IGNORED,
            **_inbox_actions(status),
        },
    )


def _inbox_actions(status: str) -> dict:
    """The selection form and its buttons for a tab: set aside what could not be parsed, restore what was set aside."""
    if status == ParseStatus.UNPARSED:
        return {
            "form": SelectionForm(reason_required=True),
            "reason_field": True,
            "actions": [(reverse("cases:message_set_aside"), "Set aside", "btn-outline-secondary")],
        }
    if status == ParseStatus.IGNORED:
        return {
            "form": SelectionForm(),
            "actions": [(reverse("cases:message_restore"), 'Restore to "could not parse"', "btn-outline-primary")],
        }
    return {}


@require_POST
@role_required(NOC)
def message_set_aside(request: HttpRequest) -> HttpResponse:
    form = SelectionForm(request.POST, reason_required=True)
    if not form.is_valid():
        messages.error(request, form.error_text())
        return _back(request, "cases:message_list", "status")
    try:
        done = triage.set_aside_messages(
            form.cleaned_data["ids"], reason=form.cleaned_data["reason"], actor=request.user
        )
    except TransitionError as exc:
        messages.error(request, str(exc))
    else:
        skipped = len(form.cleaned_data["ids"]) - done
        text = f"{_plural(done, 'message')} set aside."
        messages.success(request, text + (f" {skipped} could not be (no longer unparsed)." if skipped else ""))
    return _back(request, "cases:message_list", "status")


@require_POST
@role_required(NOC)
def message_restore(request: HttpRequest) -> HttpResponse:
    form = SelectionForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.error_text())
        return _back(request, "cases:message_list", "status")
    done = triage.restore_messages(form.cleaned_data["ids"], actor=request.user)
    messages.success(request, f"{_plural(done, 'message')} back among those that could not be parsed.")
    return _back(request, "cases:message_list", "status")


# --- the unassigned queue ------------------------------------------------------------------------------

DISMISSED = "dismissed"
UNASSIGNED_TABS = (
    (
        UnassignedReason.NOT_HELD,
        "Nobody held it then",
        "Addresses in our space that no customer held at the reported time: fix the allocation, then re-resolve.",
    ),
    (
        UnassignedReason.OUTSIDE,
        "Outside our address space",
        "Addresses that are not ours: tell the reporter where to write, or dismiss.",
    ),
    (
        UnassignedReason.UNRESOLVED,
        "Host name did not resolve",
        "URL-only reports whose host name gave no address at intake: re-resolve asks DNS again.",
    ),
    (
        UnassignedReason.BOGON,
        "Not a routable address",
        "Addresses nobody on the Internet can hold (0.0.0.0, broadcast, loopback, multicast, link-local, "
        "private space no allocation of ours covers): kept, not in the working queue. "
        "Re-resolve files them once an allocation covers them.",
    ),
    (DISMISSED, "Dismissed", "Taken out of the queue by a person, with the reason."),
)
# The tabs that take a reason of their own; "nobody held it then" is everything else (and reports
# filed before the reason existed, which have none).
OWN_TABS = (UnassignedReason.OUTSIDE, UnassignedReason.UNRESOLVED, UnassignedReason.BOGON)


@role_required(NOC)
def unassigned(request: HttpRequest) -> HttpResponse:
    open_reports = Report.objects.open_unassigned()
    # One query for all the counts (report_unassigned_idx for the open tabs).
    waiting = Q(dismissed_at__isnull=True)
    counts = Report.objects.filter(customer__isnull=True, duplicate_of__isnull=True).aggregate(
        **{str(reason): Count("pk", filter=waiting & Q(unassigned_reason=reason)) for reason in OWN_TABS},
        not_held=Count("pk", filter=waiting & ~Q(unassigned_reason__in=OWN_TABS)),
        dismissed=Count("pk", filter=Q(dismissed_at__isnull=False)),
    )
    tab = request.GET.get("reason", "")
    if tab not in {t for t, _, _ in UNASSIGNED_TABS}:
        # Without a choice, the first tab of the working queue with work in it.
        work = (UnassignedReason.NOT_HELD, UnassignedReason.OUTSIDE, UnassignedReason.UNRESOLVED)
        tab = next((t for t in work if counts[t]), UnassignedReason.NOT_HELD)
    if tab == DISMISSED:
        qs = (
            Report.objects.filter(customer__isnull=True, duplicate_of__isnull=True, dismissed_at__isnull=False)
            .select_related("dismissed_by")
            .prefetch_related("referrals")  # whether the answer to the reporter went out
            .order_by("-dismissed_at", "-id")
        )
    elif tab in OWN_TABS:
        qs = open_reports.filter(unassigned_reason=tab).order_by("-occurred_at", "-id")
    else:
        # Reports filed before the reason existed have none: an address nobody held is the safe reading.
        qs = open_reports.exclude(unassigned_reason__in=OWN_TABS).order_by("-occurred_at", "-id")
    qs = qs.select_related("message").defer("message__raw", "evidence")
    return render(
        request,
        "cases/unassigned.html",
        {
            "page": _page(request, qs),
            "tab": tab,
            "tabs": [(value, label, counts[value], help_text) for value, label, help_text in UNASSIGNED_TABS],
            **_unassigned_actions(tab),
        },
    )


def _unassigned_actions(tab: str) -> dict:
    if tab == DISMISSED:
        return {}
    actions = [(reverse("cases:unassigned_reresolve"), "Re-resolve", "btn-outline-primary")]
    if tab == UnassignedReason.OUTSIDE:
        actions.append((reverse("cases:unassigned_refer"), "Tell the reporters where to write", "btn-outline-primary"))
    if tab == UnassignedReason.BOGON:
        # Out of the working queue already: nothing to dismiss.
        return {"form": SelectionForm(), "actions": actions}
    actions.append((reverse("cases:unassigned_dismiss"), "Dismiss", "btn-outline-danger"))
    form = SelectionForm()
    form.fields["reason"].label = "Reason (to dismiss)"
    return {"form": form, "reason_field": True, "actions": actions}


@require_POST
@role_required(NOC)
def unassigned_reresolve(request: HttpRequest) -> HttpResponse:
    form = SelectionForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.error_text())
        return _back(request, "cases:unassigned", "reason")
    result = triage.reresolve_reports(form.cleaned_data["ids"], actor=request.user)
    text = f"{_plural(result.filed, 'report')} filed on {_plural(len(result.cases), 'case')}."
    if result.hosts_resolved:
        text += f" {_plural(result.hosts_resolved, 'host name')} resolved now."
    if result.hosts_unresolved:
        text += f" {_plural(result.hosts_unresolved, 'host name')} still did not resolve."
    if result.still_unassigned > result.hosts_unresolved:
        text += f" {result.still_unassigned - result.hosts_unresolved} still held by nobody at their time."
    (messages.success if result.filed else messages.warning)(request, text)
    return _back(request, "cases:unassigned", "reason")


@require_POST
@role_required(NOC)
def unassigned_dismiss(request: HttpRequest) -> HttpResponse:
    form = SelectionForm(request.POST, reason_required=True)
    if not form.is_valid():
        messages.error(request, form.error_text() or "Say why the reports are dismissed.")
        return _back(request, "cases:unassigned", "reason")
    try:
        done = triage.dismiss_reports(form.cleaned_data["ids"], reason=form.cleaned_data["reason"], actor=request.user)
    except TransitionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{_plural(done, 'report')} dismissed.")
    return _back(request, "cases:unassigned", "reason")


@require_POST
@role_required(NOC)
def unassigned_refer(request: HttpRequest) -> HttpResponse:
    """Tell each selected report's reporter the abuse contact of the address's network (RDAP).
    Look-ups happen here, outside any transaction; each answer is its own small transaction."""
    form = SelectionForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.error_text())
        return _back(request, "cases:unassigned", "reason")
    reports = list(
        Report.objects.unassigned()
        .filter(pk__in=form.cleaned_data["ids"], unassigned_reason=UnassignedReason.OUTSIDE)
        .only("pk", "ip")
        .order_by("pk")
    )
    contacts: dict[str, triage.AbuseContact | str] = {}
    referred = 0
    problems: list[str] = []
    unavailable = ""  # once the server is down or slow, the rest of the selection is not asked (one timeout, not fifty)
    for report in reports:
        if report.ip not in contacts:
            try:
                if unavailable:
                    raise RdapUnavailable(unavailable)
                contacts[report.ip] = triage.find_abuse_contact(report.ip)
            except RdapNotFound as exc:
                contacts[report.ip] = str(exc)
            except RdapUnavailable as exc:
                unavailable = str(exc)
                contacts[report.ip] = f"RDAP look-up failed: {exc} Not answered; try again later."
            except RdapError as exc:
                contacts[report.ip] = f"RDAP look-up for {report.ip} failed: {exc}"
        contact = contacts[report.ip]
        if isinstance(contact, str):
            problems.append(contact)
            continue
        try:
            triage.refer_reporter(report, contact, actor=request.user)
        except TransitionError as exc:
            problems.append(str(exc))
            continue
        referred += 1
    if referred:
        messages.success(request, f"{_plural(referred, 'reporter')} told where to write; those reports are dismissed.")
    for problem in dict.fromkeys(problems):
        messages.warning(request, problem)
    if not reports:
        messages.warning(request, "None of the selected reports is about an address outside our space.")
    return _back(request, "cases:unassigned", "reason")
