from __future__ import annotations

import time

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
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

    def with_raw(self):
        """The raw bytes too: only the raw download and the parser need them (up to 40 MB each)."""
        return self.defer(None)

    def with_raw_head(self, size: int):
        """The first `size` bytes of the raw message as `raw_head`, for previews (SUBSTR works on
        PostgreSQL's bytea and SQLite's blob alike)."""
        head = models.Func(
            models.F("raw"), models.Value(1), models.Value(size), function="SUBSTR", output_field=models.BinaryField()
        )
        return self.annotate(raw_head=head)


class InboundMessageManager(models.Manager.from_queryset(InboundMessageQuerySet)):
    def get_queryset(self):
        # Pages never load raw mail: a case of 200 reports from one 32 MB feed once fetched its
        # message's bytes per row. Readers that need them ask with with_raw().
        return super().get_queryset().defer("raw")


class InboundMessage(models.Model):
    """Everything received, byte for byte, before anything else happens to it."""

    raw = models.BinaryField()
    size = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    message_id = models.CharField(max_length=998, blank=True)
    subject = models.CharField(max_length=500, blank=True)
    sender = models.CharField(max_length=500, blank=True)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, db_index=False
    )
    status = models.CharField(max_length=8, choices=ParseStatus.choices, default=ParseStatus.NEW)
    format = models.CharField(max_length=32, blank=True)
    parse_error = models.TextField(blank=True)
    parsed_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="When a worker took it for parsing.")
    # The claim's owner (host:pid:token of the worker) and its last sign of life: a claim is given
    # back when its heartbeat stops (intake.release_stale_claims), never by a fixed age.
    claimed_by = models.CharField(max_length=100, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Progress: events taken from the parser and filed, in committed chunks; a restart skips them.
    chunks_filed = models.PositiveIntegerField(default=0)
    events_filed = models.PositiveIntegerField(default=0)
    # Events beyond INTAKE_MAX_EVENTS_PER_MESSAGE, counted and not filed (shown on the message page).
    events_over_cap = models.PositiveIntegerField(default=0)
    event_count = models.PositiveIntegerField(default=0)
    times_received = models.PositiveIntegerField(default=1)
    # Set aside by a person (status "ignored"): mail that is not a report, and why (triage.set_aside_messages).
    aside_reason = models.CharField(max_length=500, blank=True)
    aside_at = models.DateTimeField(null=True, blank=True)
    aside_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )

    objects = InboundMessageManager()

    class Meta:
        ordering = ["-received_at", "-id"]
        # Every message row is written three times (stored, claimed, parsed), and each status change
        # writes a new entry in every index: so no index here that nothing reads. Plain indexes and
        # a unique constraint, not db_index/unique=True, which add a second (LIKE) index to text
        # columns; the users' foreign keys are indexed only where set.
        constraints = [models.UniqueConstraint(fields=["sha256"], name="message_sha256_unique")]
        indexes = [
            models.Index(fields=["message_id"], name="message_message_id_idx"),
            models.Index(fields=["status"], name="message_status_idx"),
            # intake.claim_messages: the messages waiting (only those rows are in it).
            models.Index(fields=["id"], condition=Q(status="new"), name="message_waiting_idx"),
            # intake.release_stale_claims: claims whose heartbeat stopped.
            models.Index(fields=["heartbeat_at"], condition=Q(status="parsing"), name="message_claim_heartbeat_idx"),
            models.Index(
                fields=["received_by"], condition=Q(received_by__isnull=False), name="message_received_by_idx"
            ),
            models.Index(fields=["aside_by"], condition=Q(aside_by__isnull=False), name="message_aside_by_idx"),
        ]

    def __str__(self) -> str:
        return self.subject or self.message_id or f"message {self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("cases:message_detail", args=[self.pk])


class Rung(models.IntegerChoices):
    """The ladder, ordered: "rung >= warning" is a query. Audit rows store rung_key() names."""

    NONE = 0, "No notice yet"
    FIRST_NOTICE = 10, "First notice"
    WARNING = 20, "Warning"
    SUSPENSION = 30, "Suspension"
    TERMINATION = 40, "Termination"


RUNG_ORDER = list(Rung)


def rung_key(rung: int) -> str:
    """The machine key of a rung ("warning"), as audit rows store it."""
    return Rung(rung).name.lower()


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
    rung = models.PositiveSmallIntegerField(choices=Rung.choices, default=Rung.NONE)
    rung_at = models.DateTimeField(null=True, blank=True, help_text="When the current rung was reached.")
    # Reports count toward the next rung only from here: set on each climb, refusal, de-escalation
    # and reinstatement, so a refused proposal is not proposed again on the same reports.
    counted_from = models.DateTimeField(null=True, blank=True)
    # When the ladder next has something to decide (a grace period ends); the beat reads it.
    escalation_due_at = models.DateTimeField(null=True, blank=True)
    # A step the policy wants but a NOC member must confirm (business first notices).
    proposed_rung = models.PositiveSmallIntegerField(choices=Rung.choices, null=True, blank=True)
    proposal_reason = models.CharField(max_length=500, blank=True)
    hold_until = models.DateTimeField(null=True, blank=True)
    hold_reason = models.CharField(max_length=500, blank=True)
    # A customer replied ("fixed"): escalation waits until a NOC member has read it.
    awaiting_review = models.BooleanField(default=False)
    restricted = models.CharField(max_length=16, blank=True, help_text="Restriction in force: port25, walled_garden.")
    merged_into = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="merged")
    # Bumped to revoke every customer link sent for this case (the link carries the version).
    link_version = models.PositiveIntegerField(default=1)
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
        indexes = [
            models.Index(fields=["status", "last_report_at"], name="case_queue_idx"),
            # The NOC queue (home page): open and waiting cases, newest report first.
            models.Index(
                fields=["-last_report_at"], condition=Q(status__in=["open", "waiting"]), name="case_open_queue_idx"
            ),
            # The beat's re-evaluation: open cases whose grace period or hold has run out.
            models.Index(
                fields=["escalation_due_at"],
                condition=Q(status__in=["open", "waiting"], escalation_due_at__isnull=False),
                name="case_escalation_due_idx",
            ),
            # A customer's escalation history and repeat-offender look-ups.
            models.Index(fields=["customer", "rung"], name="case_customer_rung_idx"),
            # The managers' numbers (cases.stats): cases opened in a period, cases resolved in one.
            models.Index(fields=["opened_at"], name="case_opened_idx"),
            models.Index(fields=["closed_at"], condition=Q(status="resolved"), name="case_resolved_idx"),
        ]

    def __str__(self) -> str:
        return f"Case {self.pk}: {self.customer.account} {self.category}"

    def get_absolute_url(self) -> str:
        return reverse("cases:case_detail", args=[self.pk])

    @property
    def reference(self) -> str:
        return f"AD-{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class UnassignedReason(models.TextChoices):
    OUTSIDE = "outside", "Outside our address space"
    NOT_HELD = "not_held", "Nobody held the address then"
    # A URL-only report whose host name gave no address (ip is then empty; the key fits max_length 8):
    # re-resolve asks DNS again.
    UNRESOLVED = "no_addr", "Host name did not resolve"
    # 0.0.0.0, loopback, multicast, link-local, private space no allocation of ours covers
    # (abusedesk.lib.addresses.routable_reason): kept and shown, never in the working queue.
    BOGON = "bogon", "Not a routable address"


class ReportQuerySet(models.QuerySet):
    def unassigned(self):
        """The working queue. Reports about addresses nobody can hold are kept out of it (open_unassigned)."""
        return self.open_unassigned().exclude(unassigned_reason=UnassignedReason.BOGON)

    def open_unassigned(self):
        # report_unassigned_idx
        return self.filter(customer__isnull=True, duplicate_of__isnull=True, dismissed_at__isnull=True)

    def with_message(self):
        """Each report's source message for a list, without the message's raw bytes."""
        return self.select_related("message").defer("message__raw")


class Report(models.Model):
    """One incident from one message."""

    message = models.ForeignKey(InboundMessage, on_delete=models.PROTECT, null=True, blank=True, related_name="reports")
    # Empty only for a URL-only report whose host name did not resolve (UnassignedReason.UNRESOLVED).
    ip = models.GenericIPAddressField(unpack_ipv4=True, null=True, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    occurred_at = models.DateTimeField()
    category = models.CharField(max_length=24, choices=Category.choices)
    reporter = models.CharField(max_length=254, blank=True, help_text="The reporter's address.")
    reporter_org = models.CharField(max_length=200, blank=True)
    format = models.CharField(max_length=32, blank=True)
    external_id = models.CharField(max_length=255, blank=True)
    # The URL a URL-only report names (phishing, malware hosting, copyright); ip is what its host
    # name resolved to when the report came in.
    url = models.CharField(max_length=2048, blank=True)
    evidence = models.TextField(blank=True)
    confidence = models.FloatField(default=1.0)
    # Trust: reports from unknown individuals count toward the ladder only once confirmed by a
    # NOC member, or once enough distinct reporters say the same (Policy.distinct_reporters_to_count).
    needs_confirmation = models.BooleanField(default=False)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # Rejected as false by a NOC member: kept, never counted.
    rejected_at = models.DateTimeField(null=True, blank=True)
    rejected_reason = models.CharField(max_length=500, blank=True)
    # Reports with no reporter confidence (DMARC aggregates) never start a notice alone.
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="reports")
    allocation = models.ForeignKey(Allocation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # (indexed by report_case_time_idx, which starts with it)
    case = models.ForeignKey(
        Case, on_delete=models.SET_NULL, null=True, blank=True, related_name="reports", db_index=False
    )
    unassigned_reason = models.CharField(max_length=8, choices=UnassignedReason.choices, blank=True)
    # Why the report went to this customer and not to a more precise one: a CGNAT address without a
    # source port (or with one no subscriber's block held) lands on the pool's holder, saying so.
    resolution_note = models.CharField(max_length=200, blank=True)
    # Same ip, category, reporter and time within the window: stored once, counted on the original.
    dedupe_key = models.CharField(max_length=64)
    duplicate_of = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="duplicates", db_index=False
    )
    duplicate_count = models.PositiveIntegerField(default=0)
    ptr = models.CharField(max_length=255, blank=True)
    dnsbl = models.JSONField(default=dict, blank=True)
    enrichment_error = models.CharField(max_length=255, blank=True)
    enriched_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Dismissed from the unassigned queue by a person (triage.dismiss_reports): kept, out of the queue.
    dismissed_at = models.DateTimeField(null=True, blank=True)
    dismissed_reason = models.CharField(max_length=500, blank=True)
    dismissed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )

    objects = ReportQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        # A report row is written once per event and carries every index below: keys that are
        # mostly empty are indexed only where set, and no text column has a LIKE twin.
        indexes = [
            # Filing's duplicate look-up: the same key within the window, among originals. Read by key,
            # not by time: a busy hour holds thousands of reports, one key a handful.
            models.Index(
                fields=["dedupe_key", "occurred_at"], condition=Q(duplicate_of__isnull=True), name="report_dedupe_idx"
            ),
            models.Index(
                fields=["duplicate_of"], condition=Q(duplicate_of__isnull=False), name="report_duplicate_of_idx"
            ),
            models.Index(
                fields=["confirmed_by"], condition=Q(confirmed_by__isnull=False), name="report_confirmed_by_idx"
            ),
            models.Index(
                fields=["dismissed_by"], condition=Q(dismissed_by__isnull=False), name="report_dismissed_by_idx"
            ),
            models.Index(fields=["ip", "occurred_at"], name="report_ip_time_idx"),
            models.Index(fields=["case", "occurred_at"], name="report_case_time_idx"),
            # The managers' numbers (cases.stats.reports_in): reports per day by category and top
            # reporters over a period, read from the index alone (an index-only scan; the kind and
            # rung filters join on the included customer and case).
            models.Index(
                fields=["occurred_at", "category"],
                include=["reporter", "customer", "case"],
                name="report_numbers_idx",
            ),
            # The queue's search by reporter address (reporter__iexact is UPPER(reporter) = UPPER(%s)).
            # Words in the evidence have a GIN index on PostgreSQL only, made by migration 0007 (cases.search).
            models.Index(Upper("reporter"), name="report_reporter_upper_idx"),
            # The queue's search by address or network: case ids read from the index alone (cases.search).
            models.Index(fields=["ip", "case"], name="report_ip_case_idx"),
            # The unassigned queue's two tabs, newest first (views_inbox.unassigned; a tiny slice of all reports).
            models.Index(
                fields=["unassigned_reason", "-occurred_at"],
                condition=Q(customer__isnull=True, duplicate_of__isnull=True, dismissed_at__isnull=True),
                name="report_unassigned_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.category} from {self.ip or self.url[:100]} at {self.occurred_at:%Y-%m-%d %H:%M}"


class ActorKind(models.TextChoices):
    USER = "user", "Staff"
    CUSTOMER = "customer", "Customer"
    SYSTEM = "system", "System"


class CaseEvent(models.Model):
    """Append-only audit row for every change to a case. Values are machine keys."""

    # PROTECT: the audit trail outlives any attempt to delete its case.
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="events")
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
        indexes = [
            models.Index(fields=["case", "at"], name="caseevent_case_time_idx"),
            # The managers' escalation history and cut-offs per month (cases.stats.escalations_in).
            models.Index(
                fields=["at"],
                condition=Q(kind__in=["rung", "de_escalated", "reinstated"]),
                name="caseevent_escalation_idx",
            ),
            # Suspensions and terminations per month (cases.stats.cut_offs_per_month): a few rows a month.
            models.Index(
                fields=["at", "new"],
                condition=Q(kind="rung", new__in=["suspension", "termination"]),
                include=["case"],
                name="caseevent_cut_off_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} on case {self.case_id}"


class NoticeKind(models.TextChoices):
    FIRST_NOTICE = "first_notice", "First notice"
    WARNING = "warning", "Warning"
    RESTRICTION = "restriction", "Restriction"
    SUSPENSION = "suspension", "Suspension"
    TERMINATION = "termination", "Termination"
    REINSTATEMENT = "reinstatement", "Reinstatement"
    REPORTER_ACK = "reporter_ack", "Acknowledgement to reporter"


# The notice each rung sends to the customer.
RUNG_NOTICE = {
    Rung.FIRST_NOTICE: NoticeKind.FIRST_NOTICE,
    Rung.WARNING: NoticeKind.WARNING,
    Rung.SUSPENSION: NoticeKind.SUSPENSION,
    Rung.TERMINATION: NoticeKind.TERMINATION,
}


class NoticeStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class NoticeQuerySet(models.QuerySet):
    def pending(self):
        return self.filter(status=NoticeStatus.PENDING)


class Notice(models.Model):
    """The outbox: written with the decision, sent later by a worker that claims it."""

    # PROTECT: what was sent to a customer is part of the audit trail.
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="notices")
    kind = models.CharField(max_length=16, choices=NoticeKind.choices)
    # One notice per decision: a retried escalation computes the same key and writes nothing.
    key = models.CharField(max_length=100, unique=True)
    report = models.ForeignKey(Report, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    recipients = models.JSONField(default=list)
    subject = models.CharField(max_length=255)
    body = models.TextField()
    html_body = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=NoticeStatus.choices, default=NoticeStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # Fixed when the row is written: a resend after a crash carries the same Message-ID.
    message_id = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    objects = NoticeQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The outbox sweeper (beat): pending notices, oldest first.
            models.Index(fields=["created_at"], condition=Q(status="pending"), name="notice_outbox_idx"),
            # Stale claims (a worker killed mid-send).
            models.Index(fields=["claimed_at"], condition=Q(status="sending"), name="notice_sending_idx"),
            # The case page's notice timeline.
            models.Index(fields=["case", "created_at"], name="notice_case_time_idx"),
            # The managers' time to first notice (cases.stats.time_to_first_notice): a case's first
            # notice to the customer, one index probe per case.
            models.Index(
                fields=["case", "sent_at"],
                condition=Q(
                    sent_at__isnull=False,
                    kind__in=["first_notice", "warning", "restriction", "suspension", "termination"],
                ),
                name="notice_first_sent_idx",
            ),
            # The queue's "notice failed" marker: the few failed notices, hashed once per page view.
            models.Index(fields=["case"], condition=Q(status="failed"), name="notice_failed_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for case {self.case_id} ({self.status})"


class NoticeTemplate(models.Model):
    """An admin's wording for one kind of notice; without a row the built-in template is used."""

    kind = models.CharField(max_length=16, choices=NoticeKind.choices, unique=True)
    subject = models.CharField(max_length=255)
    body_text = models.TextField(help_text="Django template syntax; see the preview for the variables.")
    body_html = models.TextField(blank=True, help_text="Optional HTML alternative; variables are escaped.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.get_kind_display()


POLICY_CACHE_SECONDS = 60
_policy_cache: dict[str, tuple[float, Policy]] = {}


class StepMode(models.TextChoices):
    AUTO = "auto", "Automatic"
    NOC = "noc", "A NOC member confirms"
    MANAGER = "manager", "A manager approves"


class Policy(models.Model):
    """The escalation policy for one kind of customer. Changed through ladder.update_policy (audited)."""

    customer_kind = models.CharField(max_length=16, choices=CustomerKind.choices, unique=True)
    window_days = models.PositiveIntegerField(default=30, help_text="Reports older than this do not count.")
    reports_for_first_notice = models.PositiveIntegerField(default=1)
    reports_for_warning = models.PositiveIntegerField(
        default=1, help_text="Further reports, after the first notice's grace period, that bring a warning."
    )
    reports_for_suspension = models.PositiveIntegerField(
        default=1, help_text="Further reports, after the warning's grace period, that propose a suspension."
    )
    reports_for_termination = models.PositiveIntegerField(
        default=1, help_text="Further reports, after a suspension's grace period, that propose termination."
    )
    grace_hours = models.PositiveIntegerField(default=72, help_text="Time the customer has after each notice.")
    first_notice_mode = models.CharField(max_length=8, choices=StepMode.choices, default=StepMode.AUTO)
    warning_mode = models.CharField(max_length=8, choices=StepMode.choices, default=StepMode.AUTO)
    # Suspension and termination always need a manager's approval; no field can turn that off.
    repeat_window_days = models.PositiveIntegerField(
        default=30, help_text="A new case within this many days of an earlier notice starts at a warning."
    )
    probation_days = models.PositiveIntegerField(
        default=90, help_text="After a reinstatement, reports within this many days propose termination."
    )
    duplicate_window_minutes = models.PositiveIntegerField(
        default=60, help_text="Reports of the same ip, category and reporter this close together count once."
    )
    distinct_reporters_to_count = models.PositiveIntegerField(
        default=2, help_text="Unconfirmed complaints count once this many distinct reporters have sent them."
    )
    restriction_categories = models.JSONField(
        default=list,
        blank=True,
        help_text="Categories whose warning also restricts the line (spam: port 25; botnet, malware: walled garden).",
    )
    acknowledge_reporters = models.BooleanField(
        default=True, help_text="Thank human reporters (never automated feeds or auto-submitted mail)."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "policies"

    def __str__(self) -> str:
        return f"Policy for {self.get_customer_kind_display()} customers"

    @classmethod
    def for_kind(cls, kind: str) -> Policy:
        policy = cls.objects.filter(customer_kind=kind).first()
        return policy or cls.default_for(kind)

    @classmethod
    def cached(cls, kind: str, *, fresh: bool = False) -> Policy:
        """for_kind(), kept a minute per process: intake and the ladder read it for every batch,
        and an admin's change reaches every worker within that minute (forget_cached() at once here)."""
        hit = _policy_cache.get(kind)
        if fresh or hit is None or hit[0] < time.monotonic():
            hit = (time.monotonic() + POLICY_CACHE_SECONDS, cls.for_kind(kind))
            _policy_cache[kind] = hit
        return hit[1]

    @staticmethod
    def forget_cached() -> None:
        _policy_cache.clear()

    @classmethod
    def default_for(cls, kind: str) -> Policy:
        """The house defaults: business customers get more time and a NOC member sends their first notice."""
        if kind == CustomerKind.BUSINESS:
            return cls(customer_kind=kind, grace_hours=120, first_notice_mode=StepMode.NOC)
        return cls(customer_kind=kind)

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        errors = {}
        for name in ("reports_for_first_notice", "reports_for_warning", "reports_for_suspension"):
            if getattr(self, name) < 1:
                errors[name] = "At least one report."
        if not isinstance(self.restriction_categories, list) or not set(self.restriction_categories) <= set(
            Category.values
        ):
            errors["restriction_categories"] = f"A list of categories from: {', '.join(Category.values)}."
        if errors:
            raise ValidationError(errors)


class PolicyChange(models.Model):
    """Append-only history of policy edits: field -> [old, new]."""

    policy = models.ForeignKey(Policy, on_delete=models.PROTECT, related_name="changes")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    changes = models.JSONField(default=dict)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.policy} changed at {self.at:%Y-%m-%d %H:%M}"


class Trust(models.TextChoices):
    COUNTS = "counts", "Counts at once"
    CONFIRM = "confirm", "Counts once a NOC member confirms"
    IGNORE = "ignore", "Never counts"


class ReporterSource(models.Model):
    """A reporter the desk knows, and how far its reports are trusted.

    Matched against a report's reporter address: an exact address, or a domain (and its
    sub-domains). Feedback loops, SpamCop, Shadowserver and CERTs are trusted by format even
    when not listed; an unlisted individual's free-text complaint waits for confirmation.
    """

    pattern = models.CharField(max_length=254, unique=True, help_text="user@example.net, or example.net")
    name = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=32, blank=True, help_text="feedback loop, CERT, partner, individual...")
    trust = models.CharField(max_length=8, choices=Trust.choices, default=Trust.COUNTS)
    automated = models.BooleanField(default=False, help_text="A machine feed: never sent an acknowledgement.")
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["pattern"]

    def __str__(self) -> str:
        return self.name or self.pattern

    @classmethod
    def cached(cls) -> dict[str, tuple[str, bool]]:
        """Every source as pattern -> (trust, automated), kept a minute per process like Policy.cached:
        filing reads it for every message. A change saved in this process is seen at once (the
        signals below); other workers see it within the minute."""
        hit = _source_cache.get("all")
        if hit is None or hit[0] < time.monotonic():
            rows = {
                p: (trust, automated)
                for p, trust, automated in cls.objects.values_list("pattern", "trust", "automated")
            }
            hit = (time.monotonic() + POLICY_CACHE_SECONDS, rows)
            _source_cache["all"] = hit
        return hit[1]

    @staticmethod
    def forget_cached(**kwargs) -> None:
        _source_cache.clear()


_source_cache: dict[str, tuple[float, dict[str, tuple[str, bool]]]] = {}
models.signals.post_save.connect(ReporterSource.forget_cached, sender=ReporterSource)
models.signals.post_delete.connect(ReporterSource.forget_cached, sender=ReporterSource)


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", "Waiting for a manager"
    SCHEDULED = "scheduled", "Approved, scheduled"
    DONE = "done", "Approved and carried out"
    REFUSED = "refused", "Refused"
    CANCELLED = "cancelled", "Cancelled"


OPEN_APPROVAL_STATUSES = (ApprovalStatus.PENDING, ApprovalStatus.SCHEDULED)


class ApprovalQuerySet(models.QuerySet):
    def pending(self):
        return self.filter(status=ApprovalStatus.PENDING)

    def open(self):
        return self.filter(status__in=OPEN_APPROVAL_STATUSES)


class Approval(models.Model):
    """A suspension or termination proposed for a case, and a manager's decision on it."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="approvals")
    rung = models.PositiveSmallIntegerField(choices=Rung.choices)
    status = models.CharField(max_length=10, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING)
    reason = models.CharField(max_length=500, help_text="Why the ladder (or the proposer) asks for it.")
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    proposed_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    # "Suspended at T unless fixed": an approved step may wait; a reply or a NOC member can cancel it.
    scheduled_for = models.DateTimeField(null=True, blank=True)
    carried_out_at = models.DateTimeField(null=True, blank=True)

    objects = ApprovalQuerySet.as_manager()

    class Meta:
        ordering = ["-proposed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["case"], condition=Q(status__in=["pending", "scheduled"]), name="approval_one_open_per_case"
            ),
        ]
        indexes = [
            # The managers' approval queue.
            models.Index(fields=["proposed_at"], condition=Q(status="pending"), name="approval_queue_idx"),
            # The beat: scheduled steps whose time has come.
            models.Index(fields=["scheduled_for"], condition=Q(status="scheduled"), name="approval_scheduled_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_rung_display()} for case {self.case_id} ({self.status})"


class ReplyChannel(models.TextChoices):
    LINK = "link", "Customer page"
    EMAIL = "email", "E-mail reply"


class CustomerReply(models.Model):
    """What a customer said back ("fixed: here is what I did"), by the signed link or by mail."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="replies")
    channel = models.CharField(max_length=8, choices=ReplyChannel.choices)
    text = models.TextField()
    message = models.ForeignKey(InboundMessage, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    received_at = models.DateTimeField(default=timezone.now)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name_plural = "customer replies"

    def __str__(self) -> str:
        return f"reply on case {self.case_id}"


class ProvisioningStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    MANUAL = "manual", "To be done by hand"


class ProvisioningAction(models.TextChoices):
    RESTRICT = "restrict", "Restrict"
    UNRESTRICT = "unrestrict", "Lift restriction"
    SUSPEND = "suspend", "Suspend"
    REINSTATE = "reinstate", "Reinstate"
    TERMINATE = "terminate", "Terminate"


class ProvisioningCall(models.Model):
    """An outbox row for the provisioning webhook: written with the decision, called by a worker."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="provisioning_calls")
    action = models.CharField(max_length=12, choices=ProvisioningAction.choices)
    detail = models.CharField(max_length=32, blank=True, help_text="port25, walled_garden, ...")
    key = models.CharField(max_length=100, unique=True)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=8, choices=ProvisioningStatus.choices, default=ProvisioningStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["created_at"], condition=Q(status="pending"), name="provisioning_outbox_idx")]

    def __str__(self) -> str:
        return f"{self.action} for case {self.case_id} ({self.status})"


# --- triage of the inbox and the unassigned queue (issue 7) ------------------------------------------


class TriageEvent(models.Model):
    """Append-only audit row for triage that has no case: a message set aside or restored, an
    unassigned report re-resolved, dismissed or answered. Values are machine keys."""

    message = models.ForeignKey(InboundMessage, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    report = models.ForeignKey(Report, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    actor_kind = models.CharField(max_length=8, choices=ActorKind.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    kind = models.CharField(max_length=32)
    old = models.CharField(max_length=64, blank=True)
    new = models.CharField(max_length=64, blank=True)
    note = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} at {self.at:%Y-%m-%d %H:%M}"


class RdapNetwork(models.Model):
    """A network range an RDAP server answered for, and its abuse contact: addresses inside it are
    not asked again until the row is older than RDAP_CACHE_SECONDS (triage.find_abuse_contact)."""

    version = models.PositiveSmallIntegerField()
    # Fixed-width hex of the first and last address, so a range test is two string comparisons.
    start = models.CharField(max_length=32)
    end = models.CharField(max_length=32)
    cidr = models.CharField(max_length=200, blank=True, help_text="The range as the server named it.")
    handle = models.CharField(max_length=200, blank=True)
    name = models.CharField(max_length=200, blank=True)
    abuse_email = models.CharField(max_length=254, blank=True)
    fetched_at = models.DateTimeField(default=timezone.now)

    class Meta:
        # find_abuse_contact: the narrowest cached range holding an address.
        indexes = [models.Index(fields=["version", "start", "end"], name="rdapnetwork_range_idx")]

    def __str__(self) -> str:
        return self.cidr or f"{self.start}-{self.end}"


class ReporterReferral(models.Model):
    """The outbox for answering a reporter about an address that is not ours: "write to this abuse
    contact instead". Written with the decision, sent by a worker that claims it, at most once per key."""

    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="referrals")
    key = models.CharField(max_length=100, unique=True)
    abuse_email = models.CharField(max_length=254)
    recipients = models.JSONField(default=list)
    subject = models.CharField(max_length=255)
    body = models.TextField()
    status = models.CharField(max_length=8, choices=NoticeStatus.choices, default=NoticeStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    message_id = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"referral for report {self.report_id} ({self.status})"
