"""Admin views of the case records.

Cases, reports, events, messages, notices, approvals, replies and provisioning calls are
read-only here: their state changes go through cases.services (with audit rows) from the
desk's own pages. Admins edit the policy (through ladder.update_policy, audited), the
reporter sources and the notice templates; the role migrations give only them those rights.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from cases.models import (
    Approval,
    Case,
    CaseEvent,
    CustomerReply,
    InboundMessage,
    Notice,
    Policy,
    PolicyChange,
    ProvisioningCall,
    Report,
    ReporterSource,
)
from cases.services import ladder

# The detail page shows the start of a message; the whole of it can be megabytes.
RAW_PREVIEW_BYTES = 16 * 1024


class ReadOnlyAdminMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(InboundMessage)
class InboundMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # `raw` is deliberately absent from the list: the query would fetch every message's bytes.
    list_display = ("received_at", "channel", "sender", "subject", "status", "format", "event_count", "size")
    list_filter = ("status", "channel", "format")
    search_fields = ("message_id", "subject", "sender", "sha256")
    date_hierarchy = "received_at"
    fields = (
        "received_at",
        "channel",
        "received_by",
        "sender",
        "subject",
        "message_id",
        "sha256",
        "size",
        "times_received",
        "status",
        "format",
        "parse_error",
        "parsed_at",
        "event_count",
        "raw_preview",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest):
        qs = super().get_queryset(request).select_related("received_by")
        # The manager defers the bytes; the detail page loads only their start, for the preview.
        if not (request.resolver_match and request.resolver_match.url_name.endswith("_changelist")):
            qs = qs.with_raw_head(RAW_PREVIEW_BYTES)
        return qs

    @admin.display(description="message (start)")
    def raw_preview(self, obj: InboundMessage) -> str:
        data = bytes(getattr(obj, "raw_head", None) or b"")
        text = data.decode("utf-8", errors="replace")
        more = f"\n… {obj.size - len(data)} more bytes" if obj.size > len(data) else ""
        # Evidence is untrusted: format_html escapes it.
        return format_html('<pre class="raw-preview">{}{}</pre>', text, more)


@admin.register(Report)
class ReportAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "occurred_at",
        "ip",
        "port",
        "category",
        "customer",
        "case",
        "reporter",
        "format",
        "duplicate_count",
    )
    list_filter = ("category", "format", "unassigned_reason")
    list_select_related = ("customer", "case")
    search_fields = ("ip", "url", "reporter", "reporter_org", "external_id", "customer__account")
    date_hierarchy = "occurred_at"
    raw_id_fields = ("message", "customer", "allocation", "case", "duplicate_of")


class CaseEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = CaseEvent
    extra = 0
    can_delete = False
    fields = ("at", "actor_kind", "actor", "kind", "old", "new", "note", "report")
    readonly_fields = fields


class NoticeInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Notice
    extra = 0
    can_delete = False
    fields = ("created_at", "kind", "status", "subject", "attempts", "sent_at")
    readonly_fields = fields
    show_change_link = True


@admin.register(Case)
class CaseAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # Fits a 1280 px screen beside the admin's side bar and filters (tests/e2e): case and account in
    # one column (the name is on the case page, as is the assignee).
    list_display = ("case_label", "category", "status", "rung", "reports", "last_report_at")
    list_filter = ("status", "rung", "category")
    list_select_related = ("customer",)
    search_fields = ("customer__account", "customer__name")
    date_hierarchy = "last_report_at"
    raw_id_fields = ("customer", "assignee")
    inlines = (CaseEventInline, NoticeInline)

    @admin.display(description="case · customer", ordering="-id")
    def case_label(self, obj: Case) -> str:
        return f"{obj.pk} · {obj.customer.account}"

    @admin.display(description="reports", ordering="report_count")
    def reports(self, obj: Case) -> int:
        return obj.report_count


@admin.register(Notice)
class NoticeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "kind", "case", "status", "attempts", "sent_at", "subject", "last_error")
    list_filter = ("status", "kind")
    list_select_related = ("case", "case__customer")
    search_fields = ("subject", "message_id", "case__customer__account")
    date_hierarchy = "created_at"
    raw_id_fields = ("case",)


class PolicyChangeInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = PolicyChange
    extra = 0
    can_delete = False
    fields = ("at", "actor", "changes")
    readonly_fields = fields


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    """Admins edit the policy; every save goes through ladder.update_policy and leaves a PolicyChange."""

    list_display = (
        "customer_kind",
        "grace_hours",
        "first_notice_mode",
        "warning_mode",
        "reports_for_warning",
        "reports_for_suspension",
        "repeat_window_days",
        "probation_days",
    )
    inlines = (PolicyChangeInline,)
    fieldsets = (
        (None, {"fields": ("customer_kind",)}),
        (
            "Counting",
            {
                "fields": (
                    "window_days",
                    "reports_for_first_notice",
                    "reports_for_warning",
                    "reports_for_suspension",
                    "reports_for_termination",
                    "duplicate_window_minutes",
                    "distinct_reporters_to_count",
                )
            },
        ),
        (
            "Timing and who acts",
            {
                "fields": ("grace_hours", "first_notice_mode", "warning_mode", "repeat_window_days", "probation_days"),
                "description": "Suspension and termination always need a manager's approval.",
            },
        ),
        ("Restriction and reporters", {"fields": ("restriction_categories", "acknowledge_reporters")}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None):
        return ("customer_kind",) if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: Policy, form, change: bool) -> None:
        changes = {name: form.cleaned_data[name] for name in ladder.POLICY_FIELDS if name in form.cleaned_data}
        target = Policy.objects.get(pk=obj.pk) if change else Policy(customer_kind=obj.customer_kind)
        saved = ladder.update_policy(target, changes, actor=request.user)
        obj.pk = saved.pk

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Policy.for_kind() falls back to defaults; deleting a row would quietly change policy.
        return False


@admin.register(ReporterSource)
class ReporterSourceAdmin(admin.ModelAdmin):
    list_display = ("pattern", "name", "kind", "trust", "automated")
    list_filter = ("trust", "automated", "kind")
    search_fields = ("pattern", "name")


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("proposed_at", "case", "rung", "status", "proposed_by", "decided_by", "decided_at", "scheduled_for")
    list_filter = ("status", "rung")
    list_select_related = ("case", "case__customer", "proposed_by", "decided_by")
    raw_id_fields = ("case",)


@admin.register(CustomerReply)
class CustomerReplyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("received_at", "case", "channel", "reviewed_by", "reviewed_at")
    list_filter = ("channel",)
    list_select_related = ("case", "case__customer", "reviewed_by")
    raw_id_fields = ("case", "message")


@admin.register(ProvisioningCall)
class ProvisioningCallAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "case", "action", "detail", "status", "attempts", "response_status", "done_at")
    list_filter = ("status", "action")
    list_select_related = ("case", "case__customer")
    raw_id_fields = ("case",)


# Notice templates: their own module (the editor with a preview on a real case).
from cases import admin_notices  # noqa: E402, F401
