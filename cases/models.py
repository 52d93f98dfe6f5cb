from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from customers.models import Allocation, Customer, CustomerKind


class Category(models.TextChoices):
    SPAM = "spam", "Spam"
    PHISHING = "phishing", "Phishing"
    MALWARE = "malware", "Malware"
    BOTNET = "botnet", "Botnet"
    SCANNING = "scanning", "Scanning"
    DDOS = "ddos", "DDoS"
    LOGIN_ATTACK = "login_attack", "Login attack"
    VULNERABLE_SERVICE = "vulnerable_service", "Vulnerable service"
    COPYRIGHT = "copyright", "Copyright"
    OTHER = "other", "Other"


class Channel(models.TextChoices):
    EMAIL = "email", "Mail pipe"
    IMAP = "imap", "IMAP mailbox"
    API = "api", "API"
    WEB = "web", "Web form"
    UPLOAD = "upload", "Upload"
    BULK = "bulk", "Bulk import"


class ParseStatus(models.TextChoices):
    NEW = "new", "Waiting to be parsed"
    PARSING = "parsing", "Being parsed"
    PARSED = "parsed", "Parsed"
    UNPARSED = "unparsed", "Could not parse"
    IGNORED = "ignored", "Set aside"


class InboundMessageQuerySet(models.QuerySet):
    def unparsed(self):
        return self.filter(status=ParseStatus.UNPARSED)


class InboundMessage(models.Model):
    """Everything received, byte for byte, before anything else happens to it."""

    raw = models.BinaryField()
    size = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64, unique=True)
    message_id = models.CharField(max_length=998, blank=True, db_index=True)
    subject = models.CharField(max_length=500, blank=True)
    sender = models.CharField(max_length=500, blank=True)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    status = models.CharField(max_length=8, choices=ParseStatus.choices, default=ParseStatus.NEW, db_index=True)
    format = models.CharField(max_length=32, blank=True)
    parse_error = models.TextField(blank=True)
    parsed_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="When a worker took it for parsing.")
    event_count = models.PositiveIntegerField(default=0)
    times_received = models.PositiveIntegerField(default=1)

    objects = InboundMessageQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return self.subject or self.message_id or f"message {self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("cases:message_detail", args=[self.pk])


class Rung(models.TextChoices):
    NONE = "none", "No notice yet"
    FIRST_NOTICE = "first_notice", "First notice"
    WARNING = "warning", "Warning"
    SUSPENSION = "suspension", "Suspension"
    TERMINATION = "termination", "Termination"


RUNG_ORDER = [Rung.NONE, Rung.FIRST_NOTICE, Rung.WARNING, Rung.SUSPENSION, Rung.TERMINATION]


class CaseStatus(models.TextChoices):
    OPEN = "open", "Open"
    WAITING = "waiting", "Waiting on customer"
    RESOLVED = "resolved", "Resolved"
    REJECTED = "rejected", "Rejected"


OPEN_STATUSES = (CaseStatus.OPEN, CaseStatus.WAITING)

# The one table of allowed case status transitions; services.change_case_status checks it.
CASE_TRANSITIONS: dict[str, set[str]] = {
    CaseStatus.OPEN: {CaseStatus.WAITING, CaseStatus.RESOLVED, CaseStatus.REJECTED},
    CaseStatus.WAITING: {CaseStatus.OPEN, CaseStatus.RESOLVED, CaseStatus.REJECTED},
    CaseStatus.RESOLVED: {CaseStatus.OPEN},
    CaseStatus.REJECTED: {CaseStatus.OPEN},
}


class CaseQuerySet(models.QuerySet):
    def open(self):
        return self.filter(status__in=OPEN_STATUSES)

    def for_customer(self, customer: Customer):
        return self.filter(customer=customer)

    def search(self, term: str):
        """Cases matching what a person types: #id, an IP address (reported, or held by the
        customer), an account number, a customer name or a contact's e-mail."""
        import ipaddress

        term = term.strip()
        if not term:
            return self
        if term.startswith("#"):
            digits = term[1:]
            if digits.isascii() and digits.isdecimal() and len(digits) < 19:
                return self.filter(pk=int(digits))
            return self.none()
        try:
            ip = ipaddress.ip_address(term)
        except ValueError:
            return self.filter(
                Q(customer__account__iexact=term)
                | Q(customer__name__icontains=term)
                | Q(customer__contacts__email__iexact=term)
            ).distinct()
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return self.filter(pk__in=Report.objects.filter(ip=str(ip)).values("case_id"))


class Case(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="cases")
    category = models.CharField(max_length=24, choices=Category.choices)
    status = models.CharField(max_length=8, choices=CaseStatus.choices, default=CaseStatus.OPEN, db_index=True)
    rung = models.CharField(max_length=16, choices=Rung.choices, default=Rung.NONE)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="assigned_cases"
    )
    opened_at = models.DateTimeField(default=timezone.now)
    first_report_at = models.DateTimeField()
    last_report_at = models.DateTimeField()
    report_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CaseQuerySet.as_manager()

    class Meta:
        ordering = ["-last_report_at", "-id"]
        constraints = [
            # One open episode per customer and category: new reports join it.
            models.UniqueConstraint(
                fields=["customer", "category"],
                condition=Q(status__in=["open", "waiting"]),
                name="case_one_open_per_customer_category",
            ),
        ]
        indexes = [models.Index(fields=["status", "last_report_at"], name="case_queue_idx")]

    def __str__(self) -> str:
        return f"Case {self.pk}: {self.customer.account} {self.category}"

    def get_absolute_url(self) -> str:
        return reverse("cases:case_detail", args=[self.pk])

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class UnassignedReason(models.TextChoices):
    OUTSIDE = "outside", "Outside our address space"
    NOT_HELD = "not_held", "Nobody held the address then"


class ReportQuerySet(models.QuerySet):
    def unassigned(self):
        return self.filter(customer__isnull=True, duplicate_of__isnull=True)


class Report(models.Model):
    """One incident from one message."""

    message = models.ForeignKey(InboundMessage, on_delete=models.PROTECT, null=True, blank=True, related_name="reports")
    ip = models.GenericIPAddressField(unpack_ipv4=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    occurred_at = models.DateTimeField()
    category = models.CharField(max_length=24, choices=Category.choices)
    reporter = models.CharField(max_length=254, blank=True, help_text="The reporter's address.")
    reporter_org = models.CharField(max_length=200, blank=True)
    format = models.CharField(max_length=32, blank=True)
    external_id = models.CharField(max_length=255, blank=True)
    evidence = models.TextField(blank=True)
    confidence = models.FloatField(default=1.0)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="reports")
    allocation = models.ForeignKey(Allocation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    case = models.ForeignKey(Case, on_delete=models.SET_NULL, null=True, blank=True, related_name="reports")
    unassigned_reason = models.CharField(max_length=8, choices=UnassignedReason.choices, blank=True)
    # Same ip, category, reporter and time within the window: stored once, counted on the original.
    dedupe_key = models.CharField(max_length=64, db_index=True)
    duplicate_of = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True, related_name="duplicates")
    duplicate_count = models.PositiveIntegerField(default=0)
    ptr = models.CharField(max_length=255, blank=True)
    dnsbl = models.JSONField(default=dict, blank=True)
    enrichment_error = models.CharField(max_length=255, blank=True)
    enriched_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = ReportQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["ip", "occurred_at"], name="report_ip_time_idx"),
            models.Index(fields=["case", "occurred_at"], name="report_case_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.category} from {self.ip} at {self.occurred_at:%Y-%m-%d %H:%M}"


class ActorKind(models.TextChoices):
    USER = "user", "Staff"
    CUSTOMER = "customer", "Customer"
    SYSTEM = "system", "System"


class CaseEvent(models.Model):
    """Append-only audit row for every change to a case. Values are machine keys."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="events")
    actor_kind = models.CharField(max_length=8, choices=ActorKind.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    kind = models.CharField(max_length=32)
    old = models.CharField(max_length=64, blank=True)
    new = models.CharField(max_length=64, blank=True)
    note = models.TextField(blank=True)
    report = models.ForeignKey(Report, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["case", "at"], name="caseevent_case_time_idx")]

    def __str__(self) -> str:
        return f"{self.kind} on case {self.case_id}"


class NoticeKind(models.TextChoices):
    FIRST_NOTICE = "first_notice", "First notice"
    WARNING = "warning", "Warning"
    SUSPENSION = "suspension", "Suspension"
    TERMINATION = "termination", "Termination"
    REINSTATEMENT = "reinstatement", "Reinstatement"
    REPORTER_ACK = "reporter_ack", "Acknowledgement to reporter"


class NoticeStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class Notice(models.Model):
    """The outbox: written with the decision, sent later by a worker that claims it."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="notices")
    kind = models.CharField(max_length=16, choices=NoticeKind.choices)
    recipients = models.JSONField(default=list)
    subject = models.CharField(max_length=255)
    body = models.TextField()
    status = models.CharField(max_length=8, choices=NoticeStatus.choices, default=NoticeStatus.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    message_id = models.CharField(max_length=255, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} for case {self.case_id} ({self.status})"


class Policy(models.Model):
    """The escalation policy for one kind of customer."""

    customer_kind = models.CharField(max_length=16, choices=CustomerKind.choices, unique=True)
    grace_hours = models.PositiveIntegerField(default=72, help_text="Time the customer has after a notice.")
    reports_to_escalate = models.PositiveIntegerField(
        default=3, help_text="Further reports after the grace period that move a case up a rung."
    )
    days_to_escalate = models.PositiveIntegerField(
        default=7, help_text="Days of continued reports after a notice that move a case up a rung."
    )
    lookback_days = models.PositiveIntegerField(default=90, help_text="Window for counting a repeat offender.")
    duplicate_window_minutes = models.PositiveIntegerField(
        default=60, help_text="Reports of the same ip, category and reporter this close together count once."
    )
    auto_first_notice = models.BooleanField(default=True)
    auto_warning = models.BooleanField(default=True)
    # Suspension and termination always need a manager's approval; no field can turn that off.

    class Meta:
        verbose_name_plural = "policies"

    def __str__(self) -> str:
        return f"Policy for {self.get_customer_kind_display()} customers"

    @classmethod
    def for_kind(cls, kind: str) -> Policy:
        policy = cls.objects.filter(customer_kind=kind).first()
        return policy or cls(customer_kind=kind)
