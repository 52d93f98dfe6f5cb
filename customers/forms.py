"""The desk's customer forms: the IP look-up at a given time."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from customers.resolver import IPAddress, normalize_ip

# No allocation can be older than the address plans it comes from; a year such as 0001 is a typo.
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
# A look-up is about something that happened: a few minutes of clock skew, not next week.
FUTURE_SLACK = timedelta(days=1)


class LookupForm(forms.Form):
    """Who held this address at this instant (UTC). A GET form: its URL can be shared."""

    ip = forms.CharField(
        label="IP address", max_length=64, widget=forms.TextInput(attrs={"placeholder": "198.51.100.7"})
    )
    # Behind carrier-grade NAT one public address is shared: the source port says whose it was.
    port = forms.IntegerField(label="Source port (CGNAT, optional)", required=False, min_value=0, max_value=65535)
    at = forms.CharField(
        label="At (UTC, empty for now)",
        required=False,
        max_length=40,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": 1}),
    )

    def __init__(self, *args, action: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_method = "get"
        self.helper.form_action = action
        self.helper.form_class = "customer-lookup"
        submit = Submit("", "Look up")  # no name: the URL carries only ip and at
        submit.field_classes = "btn btn-sm btn-primary"
        self.helper.add_input(submit)

    def clean_ip(self) -> IPAddress:
        text = self.cleaned_data["ip"].strip()
        if "%" in text:
            # fe80::1%eth0: a zone id names an interface of one host, never an address we allocate.
            raise forms.ValidationError("An IPv6 zone id (the part after %) is not part of an address; leave it out.")
        if "/" in text:
            raise forms.ValidationError("Enter one address, not a network.")
        try:
            return normalize_ip(ipaddress.ip_address(text))
        except ValueError:
            raise forms.ValidationError(f"{text!r} is not a valid IPv4 or IPv6 address.") from None

    def clean_at(self) -> datetime:
        text = self.cleaned_data["at"].strip()
        now = timezone.now()
        if not text:
            return now
        # What the datetime-local input sends ("2026-11-24T14:02"), or ISO 8601 with a zone.
        text = text.removesuffix("UTC").strip().replace(" ", "T", 1)
        try:
            at = parse_datetime(text)
        except ValueError:
            at = None
        if at is None:
            raise forms.ValidationError("Enter the time as YYYY-MM-DD HH:MM (UTC), e.g. 2026-11-24 14:02.")
        try:
            at = at.replace(tzinfo=UTC) if timezone.is_naive(at) else at.astimezone(UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError("That time is out of range.") from None
        if at < EARLIEST:
            raise forms.ValidationError(f"That time is before {EARLIEST:%Y}: no allocation goes back that far.")
        if at > now + FUTURE_SLACK:
            raise forms.ValidationError("That time is in the future.")
        return at
