"""Admin for ImportRun: upload a CSV, choose its kind, watch the background import run.

Registered from here; customers/admin.py imports this module so the registration happens.
Only the admin role reaches any of it (managers have the model's view permission for
reports elsewhere, but imports are an admin's job).
"""

from __future__ import annotations

import os

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from abusedesk.roles import ADMIN, has_role
from customers.models import ImportRun
from customers.tasks import run_import


class ImportUploadForm(forms.ModelForm):
    class Meta:
        model = ImportRun
        fields = ["kind", "file"]
        help_texts = {
            "file": "CSV, UTF-8, with a header line. Customers and allocations: "
            "account,name,kind,email,network,valid_from,valid_to. Leases: ip,account,start,stop. "
            "Times are ISO 8601; a time without a zone is UTC.",
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["file"].required = True


@admin.register(ImportRun)
class ImportRunAdmin(admin.ModelAdmin):
    form = ImportUploadForm
    list_display = (
        "id",
        "kind",
        "filename",
        "status",
        "progress",
        "created",
        "updated",
        "unchanged",
        "rejected",
        "started_by",
        "created_at",
    )
    list_display_links = ("id", "filename")
    list_filter = ("kind", "status")
    list_select_related = ("started_by",)
    search_fields = ("filename",)
    date_hierarchy = "created_at"

    # Every door checks the role as well as the model permission: a staff account that is
    # not an admin sees nothing here, whatever permissions its groups carry.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, ADMIN) and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return has_role(request.user, ADMIN) and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, ADMIN) and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # a run is a record of what happened; it is never edited

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="progress")
    def progress(self, obj: ImportRun) -> str:
        return format_html("{}%", obj.percent)

    def save_model(self, request: HttpRequest, obj: ImportRun, form, change: bool) -> None:
        obj.filename = os.path.basename(form.cleaned_data["file"].name)[:255]
        obj.started_by = request.user
        obj.status = ImportRun.Status.PENDING
        super().save_model(request, obj, form, change)
        # The admin's add view runs in a transaction: the worker must not look for the run
        # (or its file) before it is committed.
        run_import.delay_on_commit(obj.pk)

    def response_add(self, request: HttpRequest, obj: ImportRun, post_url_continue=None) -> HttpResponse:
        self.message_user(request, f"Import #{obj.pk} of {obj.filename} is queued.")
        return HttpResponseRedirect(reverse("admin:customers_importrun_change", args=[obj.pk]))

    def get_urls(self):
        urls = super().get_urls()
        custom = [
            path(
                "<int:object_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="customers_importrun_progress",
            ),
        ]
        return custom + urls

    def _get_run(self, request: HttpRequest, object_id) -> ImportRun:
        run = get_object_or_404(ImportRun.objects.select_related("started_by"), pk=object_id)
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        return run

    def change_view(self, request: HttpRequest, object_id, form_url: str = "", extra_context=None) -> HttpResponse:
        if not str(object_id).isdigit():
            return super().change_view(request, object_id, form_url, extra_context)
        run = self._get_run(request, object_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": str(run),
            "run": run,
            "progress_url": reverse("admin:customers_importrun_progress", args=[run.pk]),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/customers/importrun/detail.html", context)

    def progress_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        run = self._get_run(request, object_id)
        context = {"run": run, "progress_url": reverse("admin:customers_importrun_progress", args=[run.pk])}
        return TemplateResponse(request, "admin/customers/importrun/_progress.html", context)
