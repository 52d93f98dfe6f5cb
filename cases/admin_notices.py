"""Admin for notice templates: admins edit the wording, with a preview rendered on a real case.

Only admins change templates (the admin group's add/change permissions, migration 0006);
every role can read them. A template that does not compile is refused with the line and
the problem; the preview shows any error as a message, never a 500. The preview shows the
text body as text and the HTML body inside a sandboxed iframe (srcdoc, no scripts), so
nothing in a template or in the evidence runs in the admin's page.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path, reverse

from cases.models import Case, NoticeKind, NoticeTemplate, Report
from cases.services import notices

TEMPLATE_FIELDS = ("subject", "body_text", "body_html")


class NoticeTemplateForm(forms.ModelForm):
    class Meta:
        model = NoticeTemplate
        fields = ("kind", *TEMPLATE_FIELDS)
        widgets = {
            "subject": forms.TextInput(attrs={"size": 100}),
            "body_text": forms.Textarea(attrs={"rows": 24, "cols": 100, "style": "font-family: monospace;"}),
            "body_html": forms.Textarea(attrs={"rows": 24, "cols": 100, "style": "font-family: monospace;"}),
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for name in TEMPLATE_FIELDS:
            source = data.get(name) or ""
            try:
                notices.compile_template(source)
            except notices.NoticeTemplateError as exc:
                self.add_error(name, str(exc))
        return data


def _preview_case(raw: str | None) -> tuple[Case | None, str]:
    """The case to preview on: the id asked for, else the latest case with a report."""
    qs = Case.objects.select_related("customer")
    if raw:
        if not raw.strip().isdecimal():
            return None, f"“{raw}” is not a case number."
        case = qs.filter(pk=int(raw)).first()
        return (case, "") if case else (None, f"There is no case {int(raw)}.")
    case = qs.filter(report_count__gt=0).order_by("-last_report_at", "-id").first()
    return (case, "") if case else (None, "There is no case to preview on yet.")


def render_preview(kind: str, sources: dict[str, str], case: Case) -> dict[str, Any]:
    """What a notice of this kind would say on this case: subject, text, HTML, or the error."""
    report = None
    if kind == NoticeKind.REPORTER_ACK:
        report = Report.objects.filter(case=case).exclude(reporter="").order_by("-occurred_at").first()
    recipients = [report.reporter] if report else [] if kind == NoticeKind.REPORTER_ACK else None
    try:
        context = notices.notice_context(
            case, kind, report=report, reason="(preview)", context={"deadline": case.escalation_due_at}
        )
        subject, text, html = notices.render_sources(sources, context)
    except notices.NoticeTemplateError as exc:
        return {"error": str(exc)}
    except Exception as exc:  # a preview shows what went wrong; it never becomes a 500
        return {"error": f"The preview could not be rendered: {type(exc).__name__}: {exc}"}
    if recipients is None:
        recipients = case.customer.notice_recipients()
    return {"subject": subject, "text": text, "html": html, "recipients": recipients}


@admin.register(NoticeTemplate)
class NoticeTemplateAdmin(admin.ModelAdmin):
    """Admins edit the wording of notices; without a row for a kind, the built-in template is used."""

    form = NoticeTemplateForm
    list_display = ("kind", "subject", "updated_at")
    change_form_template = "notices/admin/change_form.html"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None):
        return ("kind",) if obj is not None else ()

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        # A new template starts from the built-in wording of its kind.
        kind = request.GET.get("kind") or NoticeKind.FIRST_NOTICE
        if kind not in NoticeKind.values:
            kind = NoticeKind.FIRST_NOTICE
        return {"kind": kind, **notices.builtin_sources(kind)}

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting a row silently brings back the built-in wording; superusers only.
        return request.user.is_superuser

    def get_urls(self):
        preview = path("preview/", self.admin_site.admin_view(self.preview_view), name="cases_noticetemplate_preview")
        return [preview, *super().get_urls()]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context.update(
            preview_url=reverse("admin:cases_noticetemplate_preview"),
            template_variables=notices.TEMPLATE_VARIABLES,
            kinds_in_use=set(NoticeTemplate.objects.values_list("kind", flat=True)),
        )
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def preview_view(self, request: HttpRequest):
        """POST: the template being edited (admins). GET: the template in use for ?kind= (readers)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        data = request.POST if request.method == "POST" else request.GET
        if request.method == "POST" and not (self.has_change_permission(request) or self.has_add_permission(request)):
            raise PermissionDenied
        kind = data.get("kind") or request.GET.get("kind") or ""
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Notice preview",
            "kind": kind,
            "kinds": NoticeKind.choices,
        }
        if kind not in NoticeKind.values:
            context["error"] = "Choose a kind of notice."
            return TemplateResponse(request, "notices/admin/preview.html", context)
        context["kind_label"] = NoticeKind(kind).label
        if request.method == "POST":
            sources = {name: data.get(name, "") for name in TEMPLATE_FIELDS}
            context["source"] = "the template as edited (not saved)"
        else:
            row = NoticeTemplate.objects.filter(kind=kind).first()
            if row is not None:
                sources = {name: getattr(row, name) for name in TEMPLATE_FIELDS}
                context["source"] = "the admin's template in use"
            else:
                sources = notices.builtin_sources(kind)
                context["source"] = "the built-in template"
        case, problem = _preview_case(data.get("preview_case"))
        context["case"] = case
        if case is None:
            context["error"] = problem
        else:
            context.update(render_preview(kind, sources, case))
        response = TemplateResponse(request, "notices/admin/preview.html", context)
        # The one exception to the Content-Security-Policy: a srcdoc frame inherits the page's
        # policy, and HTML e-mail is styled with style="" attributes (mail clients drop <style>).
        # Attributes only, on this page only; scripts stay refused (and the frame is sandboxed).
        response._csp_update = {"style-src-attr": ["'unsafe-inline'"]}
        return response
