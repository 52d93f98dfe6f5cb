from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Hidden, Submit
from django import forms
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from abusedesk.roles import ALL_ROLES
from cases.models import CASE_TRANSITIONS, Case, CaseStatus, Category, Rung

MAX_UPLOAD_FILES = 50
UTC_INPUT_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]


def as_typed_utc(value: datetime | None) -> datetime | None:
    """The wall-clock time as typed, meant as UTC.

    Fields here are labelled UTC, but Django attaches the server's TIME_ZONE to what was typed.
    """
    if value is None:
        return None
    if timezone.is_aware(value):
        value = timezone.make_naive(value)
    return timezone.make_aware(value, UTC)


def utc_datetime_field(label: str, *, required: bool = True) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        required=required,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": 1}),
        input_formats=UTC_INPUT_FORMATS,
    )


class ComplaintForm(forms.Form):
    """A complaint taken by hand (a phone call), or the event a person read from an unparsed message."""

    ip = forms.CharField(label="IP address", max_length=64)
    occurred_at = utc_datetime_field("When (UTC)")
    category = forms.ChoiceField(choices=Category.choices)
    port = forms.IntegerField(required=False, min_value=0, max_value=65535)
    reporter = forms.EmailField(label="Reporter's e-mail", required=False)
    reporter_org = forms.CharField(label="Reporter (name or organisation)", max_length=200, required=False)
    text = forms.CharField(label="What they said", widget=forms.Textarea(attrs={"rows": 6}), required=False)

    def __init__(self, *args, submit_label: str = "File the complaint", action: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_action = action
        self.helper.add_input(Submit("submit", submit_label))

    def clean_ip(self) -> str:
        value = self.cleaned_data["ip"].strip()
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            raise forms.ValidationError(f"{value!r} is not a valid IPv4 or IPv6 address.") from None
        if addr.version == 6 and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return str(addr)

    def clean_occurred_at(self):
        value = as_typed_utc(self.cleaned_data["occurred_at"])
        if value > timezone.now() + timedelta(minutes=10):
            raise forms.ValidationError("That time is in the future.")
        return value

    def clean_text(self) -> str:
        return self.cleaned_data["text"][: settings.EVIDENCE_MAX_CHARS]


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ".eml,message/rfc822,.txt,.csv,.json"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)] if data else []


class UploadForm(forms.Form):
    files = MultipleFileField(label="Report files (.eml)", help_text="One or more messages saved from a mail client.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_enctype = "multipart/form-data"
        self.helper.add_input(Submit("submit", "Upload"))

    def clean_files(self):
        files = self.cleaned_data["files"]
        if not files:
            raise forms.ValidationError("Choose at least one file.")
        if len(files) > MAX_UPLOAD_FILES:
            raise forms.ValidationError(f"At most {MAX_UPLOAD_FILES} files at a time.")
        for f in files:
            if f.size > settings.INTAKE_MAX_MESSAGE_BYTES:
                raise forms.ValidationError(
                    f"{f.name} is {f.size:,} bytes; the limit is {settings.INTAKE_MAX_MESSAGE_BYTES:,}."
                )
        return files


class NoteForm(forms.Form):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=10000)


# Closing a case cancels what waited on it (scheduled steps, proposals): asked for, not undone.
IRREVERSIBLE_STATUSES = (CaseStatus.RESOLVED, CaseStatus.REJECTED)
SURE_LABEL = "I am sure"


def htmx_helper(action: str, submit_label: str, button_class: str = "btn-primary") -> FormHelper:
    """A case-page form's helper: a plain POST to `action` that htmx sends in the background,
    swapping in <main> of the page it redirects to (as the ladder's forms do)."""
    helper = FormHelper()
    helper.form_action = action
    helper.attrs = {"hx-post": action, "hx-target": "main", "hx-select": "main", "hx-swap": "outerHTML"}
    submit = Submit("submit", submit_label)
    submit.field_classes = f"btn btn-sm {button_class}"
    helper.add_input(submit)
    return helper


def sure_field(help_text: str = "") -> forms.BooleanField:
    """The confirm step of an irreversible action: a box the form requires, so it holds without
    JavaScript (the browser refuses to submit it unticked, the server refuses it too)."""
    return forms.BooleanField(label=SURE_LABEL, required=True, help_text=help_text)


class StatusForm(forms.Form):
    """The statuses a case may move to from where it is (CASE_TRANSITIONS), in workflow order.

    Nothing is preselected: the first choice is an empty "choose" so a stray click changes nothing.
    Resolving or rejecting needs the "I am sure" box."""

    status = forms.ChoiceField(choices=[])
    note = forms.CharField(required=False, max_length=2000)
    sure = forms.BooleanField(label=f"{SURE_LABEL} (needed to resolve or reject)", required=False)

    def __init__(self, *args, case: Case, action: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = htmx_helper(action, "Change status")
        allowed = CASE_TRANSITIONS.get(case.status, set())
        self.fields["status"].label = "Change status to"
        self.fields["note"].widget.attrs["placeholder"] = "Why (optional)"
        self.fields["status"].choices = [("", "— choose —")] + [(s.value, s.label) for s in CaseStatus if s in allowed]

    def clean(self):
        data = super().clean()
        if data.get("status") in IRREVERSIBLE_STATUSES and not data.get("sure"):
            self.add_error("sure", "Tick “I am sure” to resolve or reject a case.")
        return data


def desk_users():
    """Active users who hold the noc role, directly or through manager/admin (abusedesk.roles), by name."""
    from django.contrib.auth import get_user_model

    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(is_superuser=True) | Q(groups__name__in=ALL_ROLES))
        .distinct()
        .order_by("username")
    )


class AssignForm(forms.Form):
    """Give the case to any colleague with the noc role (managers and admins have it), or to nobody."""

    assignee = forms.ModelChoiceField(queryset=None, required=False, empty_label="nobody")

    def __init__(self, *args, action: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = htmx_helper(action, "Assign", "btn-outline-primary")
        self.fields["assignee"].queryset = desk_users()
        self.fields["assignee"].label_from_instance = lambda user: user.get_username()


# --- the ladder's actions: small POST forms, one service call each -------------------------------

REASON_MAX = 500


def reason_field(label: str = "Reason", *, placeholder: str = "Why") -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=REASON_MAX,
        widget=forms.TextInput(attrs={"placeholder": placeholder, "autocomplete": "off"}),
    )


class LadderActionForm(forms.Form):
    """Base for the ladder's action forms (case page panel, report rows, approval queue).

    Each posts to its own URL and works without JavaScript (a plain POST and a redirect back).
    With htmx the same POST is sent in the background and only <main> of the page it redirects
    to is swapped in: the panel, the history, the notices and the message, with no reload.
    Irreversible actions set `confirm`: htmx asks it (hx-confirm) before posting.
    """

    title = ""  # the heading of the form's box in the ladder panel
    submit_label = "Save"
    button_class = "btn-primary"
    confirm = ""
    # Irreversible actions (approve, merge, de-escalate, reject a report) require an "I am sure"
    # box instead of a JavaScript prompt: the confirm step then holds without JavaScript.
    irreversible = False

    def __init__(self, *args, action: str = "", next_url: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_action = action
        self.helper.form_class = "ladder-action"
        self.helper.form_show_labels = True
        self.helper.attrs = {"hx-post": action, "hx-target": "main", "hx-select": "main", "hx-swap": "outerHTML"}
        if self.irreversible:
            self.fields["sure"] = sure_field(self.confirm)
        elif self.confirm:
            self.helper.attrs["hx-confirm"] = self.confirm
        # The form's auto_id prefix keeps ids unique when one page shows many of these forms.
        prefix = self.auto_id if isinstance(self.auto_id, str) and "%s" in self.auto_id else ""
        if next_url:
            self.helper.add_input(Hidden("next", next_url, css_id=prefix % "next" if prefix else None))
        submit_id = prefix % "submit" if prefix else None
        submit = Submit("submit", self.submit_label, css_id=submit_id)
        submit.field_classes = f"btn btn-sm {self.button_class}"  # instead of crispy's btn-primary
        self.helper.add_input(submit)

    def error_text(self) -> str:
        """The form's errors in one line, for a message after the redirect."""
        parts = []
        for name, errors in self.errors.items():
            label = self.fields[name].label if name in self.fields else ""
            parts.append(f"{label}: {' '.join(errors)}" if label else " ".join(errors))
        return "; ".join(parts)


class SendProposedForm(LadderActionForm):
    title = "Send what the ladder proposes"
    confirm = "Send this notice to the customer now?"
    submit_label = "Send the proposed notice"


class ProposeForm(LadderActionForm):
    """A NOC member asks a manager for a suspension or a termination."""

    title = "Ask a manager"
    submit_label = "Propose to a manager"
    button_class = "btn-warning"
    rung = forms.TypedChoiceField(
        label="Propose",
        coerce=int,
        choices=[(Rung.SUSPENSION, "Suspension"), (Rung.TERMINATION, "Termination")],
    )
    reason = reason_field(placeholder="What the customer did, and why notices are not enough")


class ApproveForm(LadderActionForm):
    irreversible = True
    title = "Approve"
    submit_label = "Approve"
    button_class = "btn-danger"
    confirm = "Approve this step? The customer is told, and provisioning acts on it."
    reason = reason_field()
    scheduled_for = utc_datetime_field("Scheduled for (UTC, optional)", required=False)

    def clean_scheduled_for(self):
        value = as_typed_utc(self.cleaned_data.get("scheduled_for"))
        # The service carries out a step scheduled in the past at once; that is never what a
        # person who typed a time meant.
        if value is not None and value <= timezone.now():
            raise forms.ValidationError("A scheduled time must be in the future (leave it empty to act now).")
        return value


class RefuseForm(LadderActionForm):
    title = "Refuse"
    submit_label = "Refuse"
    button_class = "btn-outline-secondary"
    reason = reason_field()


class CancelScheduledForm(LadderActionForm):
    title = "Cancel the scheduled step"
    submit_label = "Cancel the scheduled step"
    button_class = "btn-outline-danger"
    confirm = "Cancel the scheduled step? The customer will not be suspended at the scheduled time."
    reason = reason_field()


class ReinstateForm(LadderActionForm):
    title = "Reinstate the customer"
    submit_label = "Reinstate"
    button_class = "btn-success"
    confirm = "Reinstate this customer? Provisioning restores the service and a notice goes out."
    reason = reason_field()


class DeEscalateForm(LadderActionForm):
    irreversible = True
    title = "De-escalate"
    submit_label = "Step down one rung"
    button_class = "btn-outline-secondary"
    confirm = "Step this case down one rung?"
    reason = reason_field()


class HoldForm(LadderActionForm):
    """Stop escalation until a date: a date alone means midnight UTC at its start."""

    title = "Hold escalation"
    submit_label = "Hold"
    button_class = "btn-outline-primary"
    until = forms.DateTimeField(
        label="Until (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=[*UTC_INPUT_FORMATS, "%Y-%m-%d"],
    )
    reason = reason_field(placeholder="Why escalation waits")

    def clean_until(self):
        value = as_typed_utc(self.cleaned_data["until"])
        if value <= timezone.now():
            raise forms.ValidationError("The hold must end in the future.")
        return value


class ReleaseHoldForm(LadderActionForm):
    title = "Release the hold"
    submit_label = "Release the hold"
    button_class = "btn-outline-primary"


class MergeForm(LadderActionForm):
    """Fold this case into another one of the same customer: the target by number (12, #12, AD-12)."""

    title = "Merge into another case"
    irreversible = True
    submit_label = "Merge"
    button_class = "btn-outline-danger"
    confirm = "Merge this case into the other one? This case is closed and its reports move."
    target = forms.CharField(label="Into case", max_length=24, widget=forms.TextInput(attrs={"placeholder": "AD-123"}))
    reason = reason_field()

    def clean_target(self) -> Case:
        text = self.cleaned_data["target"].strip().upper().removeprefix("AD-").removeprefix("#").strip()
        case = (
            Case.objects.select_related("customer").filter(pk=int(text)).first()
            if text.isdecimal() and len(text) < 19
            else None
        )
        if case is None:
            raise forms.ValidationError(f"There is no case {self.cleaned_data['target']!r}.")
        return case


class ConfirmReportForm(LadderActionForm):
    title = "Confirm the report"
    submit_label = "Confirm"
    button_class = "btn-outline-success"


class RejectReportForm(LadderActionForm):
    irreversible = True
    title = "Reject the report"
    submit_label = "Reject as false"
    button_class = "btn-outline-danger"
    confirm = "Reject this report as false? It stays on file and never counts."
    reason = reason_field()
