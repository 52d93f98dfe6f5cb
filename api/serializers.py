"""What the API reads and writes. Input serializers refuse unknown fields, so a typo is a 400, not ignored."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cases.intake.base import EVIDENCE_MAX_CHARS
from cases.models import Case, CaseEvent, CaseStatus, Category, InboundMessage, Notice, Report, Rung, rung_key
from customers.models import Allocation, AllocationSource, Contact, Customer, CustomerKind

RUNG_KEYS = [rung_key(r) for r in Rung]
# Clocks differ a little: an event time this far ahead of ours is still believed.
FUTURE_SLACK = timedelta(minutes=5)


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, naming them."""

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        errors = {str(name): ["Unknown field."] for name in unknown}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({**exc.detail, **errors}) from None
        if errors:
            raise serializers.ValidationError(errors)
        return value


def _not_future(value):
    if value > timezone.now() + FUTURE_SLACK:
        raise serializers.ValidationError("This time is in the future.")
    return value


# --- submission --------------------------------------------------------------------------------


class SharedFieldsMixin:
    """Fields built and bound once per class, not per instance.

    DRF deep-copies the declared fields for every serializer instance, so that one instance may
    change its own; a serializer that never does pays that copy for nothing: for a feed's single
    event, about a tenth of a submission's CPU. The fields are bound to a template instance
    without data or context; they read their parent only for `root.partial` and the context,
    which no instance of such a serializer sets. Validation keeps no state on a field, so
    threads may share them.
    """

    @property
    def fields(self):
        cls = type(self)
        shared = cls.__dict__.get("_shared_fields")
        if shared is None:
            shared = serializers.Serializer.fields.func(cls())
            cls._shared_fields = shared
        return shared


class EventSerializer(SharedFieldsMixin, StrictSerializer):
    ip = serializers.IPAddressField(help_text="IPv4 or IPv6 address the abuse came from.")
    port = serializers.IntegerField(min_value=1, max_value=65535, required=False, allow_null=True)
    time = serializers.DateTimeField(help_text="When it happened, ISO 8601 (no zone: UTC).")
    category = serializers.ChoiceField(choices=Category.choices)
    evidence = serializers.CharField(
        required=False, allow_blank=True, max_length=EVIDENCE_MAX_CHARS, trim_whitespace=False
    )
    reporter = serializers.CharField(required=False, allow_blank=True, max_length=254, help_text="Reporter's e-mail.")
    url = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    def validate_time(self, value):
        return _not_future(value)


class SubmissionSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The stored message; GET /api/v1/messages/{id}/ follows its parse.")
    status = serializers.CharField()
    created = serializers.BooleanField(help_text="False when the same bytes were received before.")
    url = serializers.CharField()


# --- reads -------------------------------------------------------------------------------------


class CustomerRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ["id", "account", "name", "kind", "standing"]


class CaseSerializer(serializers.ModelSerializer):
    customer = CustomerRefSerializer()
    rung = serializers.SerializerMethodField()
    assignee = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Case
        fields = [
            "id",
            "customer",
            "category",
            "status",
            "rung",
            "assignee",
            "opened_at",
            "first_report_at",
            "last_report_at",
            "report_count",
            "duplicate_count",
            "hold_until",
            "hold_reason",
            "awaiting_review",
            "closed_at",
        ]

    def get_rung(self, case: Case) -> str:
        return rung_key(case.rung)


class ReportSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="account", read_only=True)

    class Meta:
        model = Report
        fields = [
            "id",
            "message",
            "ip",
            "port",
            "occurred_at",
            "category",
            "reporter",
            "reporter_org",
            "format",
            "external_id",
            "url",
            "evidence",
            "customer",
            "case",
            "unassigned_reason",
            "resolution_note",
            "duplicate_of",
            "duplicate_count",
            "created_at",
        ]


class CaseEventSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = CaseEvent
        fields = ["id", "at", "kind", "actor_kind", "actor", "old", "new", "note", "report"]


class NoticeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notice
        fields = ["id", "kind", "status", "recipients", "subject", "created_at", "sent_at", "attempts", "last_error"]


class CaseDetailSerializer(CaseSerializer):
    reports = serializers.SerializerMethodField()
    events = CaseEventSerializer(many=True)
    notices = NoticeSerializer(many=True)

    class Meta(CaseSerializer.Meta):
        fields = [*CaseSerializer.Meta.fields, "reports", "events", "notices"]

    @extend_schema_field(ReportSerializer(many=True))
    def get_reports(self, case: Case) -> list[dict]:
        # The newest reports only (api.views sets api_reports): a feed's case can hold thousands.
        return ReportSerializer(case.api_reports, many=True).data


class ContactSerializer(serializers.ModelSerializer):
    class Meta:
        model = Contact
        fields = ["id", "email", "name", "receives_notices"]


class AllocationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Allocation
        fields = ["id", "network", "valid_from", "valid_to", "source", "note"]


class CustomerSerializer(serializers.ModelSerializer):
    contacts = ContactSerializer(many=True, read_only=True)
    allocations = AllocationSerializer(many=True, read_only=True)

    class Meta:
        model = Customer
        fields = ["id", "account", "name", "kind", "standing", "notes", "created_at", "contacts", "allocations"]


class MessageReportSerializer(serializers.ModelSerializer):
    class Meta:
        model = Report
        fields = ["id", "ip", "port", "occurred_at", "category", "url", "case", "duplicate_of"]


class MessageSerializer(serializers.ModelSerializer):
    reports = MessageReportSerializer(many=True)
    cases = serializers.SerializerMethodField()

    class Meta:
        model = InboundMessage
        fields = [
            "id",
            "channel",
            "received_at",
            "size",
            "sha256",
            "message_id",
            "subject",
            "sender",
            "status",
            "format",
            "parse_error",
            "parsed_at",
            "event_count",
            "times_received",
            "reports",
            "cases",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_cases(self, message: InboundMessage) -> list[int]:
        return sorted({r.case_id for r in message.reports.all() if r.case_id is not None})


class ResolveQuerySerializer(StrictSerializer):
    ip = serializers.IPAddressField()
    at = serializers.DateTimeField(required=False)
    port = serializers.IntegerField(min_value=1, max_value=65535, required=False)


class ResolveAnswerSerializer(serializers.Serializer):
    """The same object as `manage.py resolve_ip --json`."""

    ip = serializers.CharField()
    at = serializers.DateTimeField()
    customer = serializers.DictField(allow_null=True)
    allocation = serializers.DictField(allow_null=True)


class CaseFilterSerializer(StrictSerializer):
    status = serializers.MultipleChoiceField(choices=CaseStatus.values, required=False)
    rung = serializers.MultipleChoiceField(choices=RUNG_KEYS, required=False)
    customer = serializers.CharField(required=False, max_length=64, help_text="Account number.")
    category = serializers.MultipleChoiceField(choices=Category.choices, required=False)
    ip = serializers.CharField(required=False, max_length=49, help_text="An address or a network (CIDR).")
    since = serializers.DateTimeField(required=False, help_text="Cases with a report at or after this time.")
    until = serializers.DateTimeField(required=False, help_text="Cases with a report before this time.")
    cursor = serializers.CharField(required=False)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200)


# --- writes ------------------------------------------------------------------------------------


class CustomerWriteSerializer(StrictSerializer):
    account = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=CustomerKind.choices, required=False)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=10000)


class ContactWriteSerializer(StrictSerializer):
    email = serializers.EmailField(max_length=254)
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    receives_notices = serializers.BooleanField(required=False)


class AllocationWriteSerializer(StrictSerializer):
    network = serializers.CharField(max_length=49, help_text="CIDR, e.g. 198.51.100.0/29, or an address.")
    valid_from = serializers.DateTimeField(required=False)
    valid_to = serializers.DateTimeField(required=False, allow_null=True)
    source = serializers.ChoiceField(choices=AllocationSource.choices, required=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=255)


class NoteSerializer(StrictSerializer):
    note = serializers.CharField(max_length=10000)


class AssignSerializer(StrictSerializer):
    assignee = serializers.CharField(allow_null=True, max_length=150, help_text="A username, or null to unassign.")


class HoldSerializer(StrictSerializer):
    until = serializers.DateTimeField()
    reason = serializers.CharField(max_length=500)


class CloseSerializer(StrictSerializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=10000)


class ApproveSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=10000)
    scheduled_for = serializers.DateTimeField(required=False, allow_null=True)
