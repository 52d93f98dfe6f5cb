"""Admin views of the case records.

Cases, reports, events, messages and notices are read-only here: their state changes go
through cases.services (with audit rows) from the desk's own pages. Only the policy is
edited in the admin, by admins (the role migration gives only them change permission).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from cases.models import Case, CaseEvent, InboundMessage, Notice, Policy, Report

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
        # The change list never shows the bytes; the detail page loads them for the preview.
        if request.resolver_match and request.resolver_match.url_name.endswith("_changelist"):
            qs = qs.defer("raw")
        return qs

    @admin.display(description="message (start)")
    def raw_preview(self, obj: InboundMessage) -> str:
        data = bytes(obj.raw or b"")
        text = data[:RAW_PREVIEW_BYTES].decode("utf-8", errors="replace")
        more = f"\n… {len(data) - RAW_PREVIEW_BYTES} more bytes" if len(data) > RAW_PREVIEW_BYTES else ""
        # Evidence is untrusted: format_html escapes it.
        return format_html(
            '<pre style="white-space: pre-wrap; max-height: 40em; overflow: auto;">{}{}</pre>', text, more
        )


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
    search_fields = ("ip", "reporter", "reporter_org", "external_id", "customer__account")
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
    list_display = ("id", "customer", "category", "status", "rung", "assignee", "report_count", "last_report_at")
    list_filter = ("status", "rung", "category")
    list_select_related = ("customer", "assignee")
    search_fields = ("customer__account", "customer__name")
    date_hierarchy = "last_report_at"
    raw_id_fields = ("customer", "assignee")
    inlines = (CaseEventInline, NoticeInline)


@admin.register(Notice)
class NoticeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "kind", "case", "status", "attempts", "sent_at", "subject")
    list_filter = ("status", "kind")
    list_select_related = ("case", "case__customer")
    search_fields = ("subject", "message_id", "case__customer__account")
    date_hierarchy = "created_at"
    raw_id_fields = ("case",)


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
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

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Policy.for_kind() falls back to defaults; deleting a row would quietly change policy.
        return False
