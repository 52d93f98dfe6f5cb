from __future__ import annotations

import ipaddress
from datetime import UTC, timedelta

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.conf import settings
from django.utils import timezone

from cases.models import CASE_TRANSITIONS, Case, CaseStatus, Category

MAX_UPLOAD_FILES = 50


class ComplaintForm(forms.Form):
    """A complaint taken by hand (a phone call), or the event a person read from an unparsed message."""

    ip = forms.CharField(label="IP address", max_length=64)
    occurred_at = forms.DateTimeField(
        label="When (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": 1}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
    )
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
        value = self.cleaned_data["occurred_at"]
        # The field is labelled UTC. Django has attached the server's TIME_ZONE to what was
        # typed; take the wall-clock time as typed and mean UTC by it.
        if timezone.is_aware(value):
            value = timezone.make_naive(value)
        value = timezone.make_aware(value, UTC)
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


class StatusForm(forms.Form):
    """The statuses a case may move to from where it is (CASE_TRANSITIONS), in workflow order."""

    status = forms.ChoiceField(choices=[])
    note = forms.CharField(required=False, max_length=2000)

    def __init__(self, *args, case: Case, **kwargs):
        super().__init__(*args, **kwargs)
        allowed = CASE_TRANSITIONS.get(case.status, set())
        self.fields["status"].choices = [(s.value, s.label) for s in CaseStatus if s in allowed]
