from __future__ import annotations

import ipaddress
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone


class CustomerKind(models.TextChoices):
    RESIDENTIAL = "residential", "Residential"
    BUSINESS = "business", "Business"


class Standing(models.TextChoices):
    """Follows the escalation ladder; changed only by customers.services.change_standing (audited)."""

    GOOD = "good", "Good"
    WARNED = "warned", "Warned"
    RESTRICTED = "restricted", "Restricted"
    SUSPENDED = "suspended", "Suspended"
    TERMINATED = "terminated", "Terminated"


class CustomerQuerySet(models.QuerySet):
    def search(self, term: str) -> CustomerQuerySet:
        term = term.strip()
        if not term:
            return self
        return self.filter(
            Q(account__iexact=term)
            | Q(account__icontains=term)
            | Q(name__icontains=term)
            | Q(contacts__email__icontains=term)
        ).distinct()


class Customer(models.Model):
    account = models.CharField("account number", max_length=64, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=CustomerKind.choices, default=CustomerKind.RESIDENTIAL)
    # Not editable by hand: the ladder moves it through customers.services.change_standing.
    standing = models.CharField(max_length=16, choices=Standing.choices, default=Standing.GOOD, editable=False)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        ordering = ["account"]

    def __str__(self) -> str:
        return f"{self.account} {self.name}"

    def get_absolute_url(self) -> str:
        return reverse("admin:customers_customer_change", args=[self.pk])

    def notice_recipients(self) -> list[str]:
        return [c.email for c in self.contacts.all() if c.receives_notices]


class Contact(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="contacts")
    email = models.EmailField(max_length=254)
    name = models.CharField(max_length=200, blank=True)
    receives_notices = models.BooleanField(default=True)

    class Meta:
        ordering = ["customer_id", "email"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "email"], name="contact_unique_email_per_customer"),
        ]
        indexes = [models.Index(fields=["email"])]

    def __str__(self) -> str:
        return self.email


class AllocationSource(models.TextChoices):
    STATIC = "static", "Static"
    POOL = "pool", "Pool"
    LEASE = "lease", "Lease"
    IMPORT = "import", "Import"
    # Carrier-grade NAT: the public pool is held by the ISP's pool account (CGNAT_POOL); each
    # subscriber holds a range of source ports on one public address for a while (PORT_BLOCK).
    CGNAT_POOL = "cgnat", "CGNAT pool"
    PORT_BLOCK = "ports", "CGNAT port block"


PORT_MIN = 0
PORT_MAX = 65535


def parse_network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A CIDR network, strictly: host bits set is an error, not silently masked.

    IPv4-mapped IPv6 networks (::ffff:192.0.2.0/120) are stored as the IPv4 network they mean.
    """
    text = (value or "").strip()
    if not text:
        raise ValidationError("Enter a network in CIDR form, e.g. 198.51.100.0/24.", code="required")
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        message = str(exc)
        if "has host bits set" in message:
            loose = ipaddress.ip_network(text, strict=False)
            raise ValidationError(f"{text} has host bits set; the network is {loose}.", code="host_bits") from None
        raise ValidationError(f"{text!r} is not a valid IPv4 or IPv6 network.", code="invalid") from None
    if network.version == 6 and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            network = ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


class AllocationQuerySet(models.QuerySet):
    def valid_at(self, at: datetime) -> AllocationQuerySet:
        return self.filter(valid_from__lte=at).filter(Q(valid_to__isnull=True) | Q(valid_to__gt=at))

    def current(self) -> AllocationQuerySet:
        return self.valid_at(timezone.now())

    def whole_address(self) -> AllocationQuerySet:
        """Allocations of every port (all but CGNAT port blocks)."""
        return self.filter(port_from=PORT_MIN, port_to=PORT_MAX)

    def overlapping(
        self,
        network: str,
        valid_from: datetime,
        valid_to: datetime | None,
        ports: tuple[int, int] = (PORT_MIN, PORT_MAX),
    ) -> AllocationQuerySet:
        """Allocations of exactly `network` and these ports whose period meets [valid_from, valid_to).

        A whole-address allocation and the port blocks on the same address do not clash: port blocks
        only live on a CGNAT pool's addresses, and they win over the pool for their ports.
        """
        qs = self.filter(network=network).filter(Q(valid_to__isnull=True) | Q(valid_to__gt=valid_from))
        if ports == (PORT_MIN, PORT_MAX):
            qs = qs.whole_address()
        else:
            qs = qs.exclude(port_from=PORT_MIN, port_to=PORT_MAX).filter(port_from__lte=ports[1], port_to__gte=ports[0])
        if valid_to is not None:
            qs = qs.filter(valid_from__lt=valid_to)
        return qs


class Allocation(models.Model):
    # No index of its own: allocation_customer_idx (customer, valid_from) serves customer look-ups.
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="allocations", db_index=False)
    # Canonical text form from ipaddress (compressed IPv6). resolve() looks up the exact
    # strings of every prefix that could cover an address, so this must stay canonical.
    network = models.CharField(max_length=49)
    family = models.PositiveSmallIntegerField(editable=False)
    prefixlen = models.PositiveSmallIntegerField(editable=False)
    valid_from = models.DateTimeField(default=timezone.now)
    valid_to = models.DateTimeField(null=True, blank=True, help_text="Empty while the allocation is current.")
    source = models.CharField(max_length=8, choices=AllocationSource.choices, default=AllocationSource.STATIC)
    note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Every port, except for a CGNAT port block: one public address, the subscriber's source ports.
    port_from = models.PositiveIntegerField(default=PORT_MIN, db_default=PORT_MIN)
    port_to = models.PositiveIntegerField(default=PORT_MAX, db_default=PORT_MAX)

    objects = AllocationQuerySet.as_manager()

    # Set by customers.resolver.resolve() on what it returns: why a CGNAT address resolved to its
    # pool and not to a subscriber ("" otherwise). `pool` is the pool behind a port block it returned.
    resolution_note = ""
    pool: Allocation | None = None

    class Meta:
        ordering = ["network", "-valid_from"]
        constraints = [
            # The same network cannot start twice at one instant (that would overlap); the
            # import commands also rely on it as their natural key.
            models.UniqueConstraint(fields=["network", "valid_from", "port_from"], name="allocation_unique_start"),
            models.CheckConstraint(
                condition=Q(port_from__lte=models.F("port_to")) & Q(port_to__lte=PORT_MAX),
                name="allocation_port_range",
            ),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gt=models.F("valid_from")),
                name="allocation_valid_to_after_from",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "valid_from"], name="allocation_customer_idx"),
        ]

    def __str__(self) -> str:
        until = self.valid_to.isoformat() if self.valid_to else "open"
        ports = f" ports {self.port_from}–{self.port_to}" if self.is_port_block else ""
        return f"{self.network}{ports} ({self.valid_from.isoformat()} – {until})"

    def save(self, *args, **kwargs):
        self.set_network_fields()
        super().save(*args, **kwargs)

    def set_network_fields(self) -> None:
        net = parse_network(str(self.network))
        self.network = str(net)
        self.family = net.version
        self.prefixlen = net.prefixlen

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        try:
            self.set_network_fields()
        except ValidationError as exc:
            errors["network"] = exc.messages
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            errors["valid_to"] = ["The end must be after the start."]
        if not (PORT_MIN <= self.port_from <= self.port_to <= PORT_MAX):
            errors["port_to"] = [f"Ports run from {PORT_MIN} to {PORT_MAX}, the first not after the last."]
        elif self.is_port_block and "network" not in errors and self.prefixlen != (32 if self.family == 4 else 128):
            errors["network"] = ["A port block is on one public address (a /32 or /128), not a network."]
        if not errors and self.valid_from:
            clash = Allocation.objects.overlapping(
                self.network, self.valid_from, self.valid_to, (self.port_from, self.port_to)
            ).exclude(pk=self.pk)
            clash = clash.select_related("customer").first()
            if clash is not None:
                errors["network"] = [
                    f"{self.network} is already allocated to {clash.customer.account} for an overlapping "
                    f"period ({clash.valid_from:%Y-%m-%d %H:%M} – "
                    f"{clash.valid_to.strftime('%Y-%m-%d %H:%M') if clash.valid_to else 'open'})."
                ]
        if errors:
            raise ValidationError(errors)

    @property
    def is_port_block(self) -> bool:
        return (self.port_from, self.port_to) != (PORT_MIN, PORT_MAX)

    @property
    def ip_network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.network)

    def snapshot(self) -> dict:
        return {
            "customer": self.customer.account if self.customer_id else None,
            "network": self.network,
            "valid_from": self.valid_from.isoformat() if self.valid_from else None,
            "valid_to": self.valid_to.isoformat() if self.valid_to else None,
            "source": self.source,
            "note": self.note,
            **({"port_from": self.port_from, "port_to": self.port_to} if self.is_port_block else {}),
        }


class AllocationChange(models.Model):
    """Append-only history of every allocation change: who, when, old and new."""

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        UPDATED = "updated", "Updated"
        DELETED = "deleted", "Deleted"

    allocation = models.ForeignKey(Allocation, on_delete=models.SET_NULL, null=True, blank=True, related_name="changes")
    network = models.CharField(max_length=49)
    action = models.CharField(max_length=8, choices=Action.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    actor_label = models.CharField(max_length=200, blank=True, help_text="Who, when not a user: an import, the system.")
    old = models.JSONField(null=True, blank=True)
    new = models.JSONField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["network", "at"])]

    def __str__(self) -> str:
        return f"{self.action} {self.network} at {self.at:%Y-%m-%d %H:%M}"


class StandingChange(models.Model):
    """Append-only history of a customer's standing: who moved it, why, from what to what."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="standing_changes")
    old = models.CharField(max_length=16, choices=Standing.choices)
    new = models.CharField(max_length=16, choices=Standing.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    actor_label = models.CharField(max_length=200, blank=True, help_text="Who, when not a user: the system.")
    reason = models.TextField(blank=True)
    # The case that caused it, as a plain id: customers never imports cases.
    case_id = models.BigIntegerField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        # Read by the customer's escalation timeline.
        indexes = [models.Index(fields=["customer", "at"], name="standing_customer_time_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.old} -> {self.new}"


class ImportRun(models.Model):
    """One CSV import (allocations or leases), from the command line or the admin."""

    class Kind(models.TextChoices):
        ALLOCATIONS = "allocations", "Customers and allocations"
        LEASES = "leases", "Leases (RADIUS/DHCP sessions)"
        PORT_BLOCKS = "portblocks", "CGNAT port blocks (ip,port_from,port_to,account,start,stop)"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    filename = models.CharField(max_length=255)
    file = models.FileField(upload_to="imports/%Y/%m/", blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    errors = models.JSONField(
        default=list, blank=True, help_text="Rejected rows: line number and reason (first 1,000)."
    )
    error = models.TextField(blank=True, help_text="Why the file as a whole could not be read.")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} import of {self.filename} ({self.status})"

    @property
    def percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status == self.Status.DONE else 0
        return min(100, int(self.processed_rows * 100 / self.total_rows))
