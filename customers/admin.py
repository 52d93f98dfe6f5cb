"""Admin for customers, contacts and allocations.

Admins edit; managers and NOC staff view (their groups only hold view permissions, see
cases/migrations/0002_roles.py). Every allocation write here goes through
customers.services so that it leaves an AllocationChange row with the user as actor.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from customers import services
from customers.models import Allocation, AllocationChange, Contact, Customer
from customers.resolver import candidate_networks, history, normalize_ip, resolve

# The customer page counts allocations up to this many. A residential customer collects a lease
# row per session, thousands over a few years: the page links to them (the allocation list,
# filtered), and counting past this would only slow the page down.
ALLOCATION_COUNT_LIMIT = 10_000
# The fields a person may change on an allocation, in the services' terms.
ALLOCATION_FIELDS = ("network", "valid_from", "valid_to", "source", "note")


# ---------------------------------------------------------------------------
# IP look-up used by both changelists' search boxes


@dataclass
class IPLookup:
    """What the search box found for an address or a CIDR network."""

    term: str
    label: str
    current: Allocation | None
    allocations: list[Allocation] = field(default_factory=list)

    @property
    def earlier(self) -> list[Allocation]:
        return [a for a in self.allocations if self.current is None or a.pk != self.current.pk]


def parse_ip_term(term: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The search term as an address (a /32 or /128) or a CIDR network; None when it is neither."""
    text = (term or "").strip()
    if not text or (":" not in text and "." not in text):
        # Plain words and account numbers: "12345" would otherwise parse as an IPv4 integer.
        return None
    try:
        addr = normalize_ip(text)
        return ipaddress.ip_network(addr)
    except ValueError:
        pass
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    mapped = network.network_address.ipv4_mapped if network.version == 6 else None
    if mapped is not None and network.prefixlen >= 96:
        network = ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


def covering_networks(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> list[str]:
    """Canonical text of `network` itself and of every network that contains it."""
    return [n for n in candidate_networks(network.network_address) if int(n.rsplit("/", 1)[1]) <= network.prefixlen]


def lookup_ip(term: str, limit: int = 50) -> IPLookup | None:
    network = parse_ip_term(term)
    if network is None:
        return None
    if network.prefixlen == network.max_prefixlen:
        addr = network.network_address
        return IPLookup(term=term, label=str(addr), current=resolve(addr), allocations=history(addr, limit=limit))
    # A CIDR: the allocations of that network and of the networks around it. Smaller
    # allocations inside it (leases in a pool) would need a range scan the index has not got.
    qs = Allocation.objects.filter(network__in=covering_networks(network)).select_related("customer")
    current = qs.current().order_by("-prefixlen", "-valid_from").first()
    return IPLookup(
        term=term, label=str(network), current=current, allocations=list(qs.order_by("-valid_from")[:limit])
    )


def allocations_matching(term: str) -> QuerySet[Allocation] | None:
    """Every allocation that ever covered the searched address or network, or None for a non-IP term."""
    network = parse_ip_term(term)
    if network is None:
        return None
    if network.prefixlen == network.max_prefixlen:
        return Allocation.objects.filter(network__in=candidate_networks(network.network_address))
    return Allocation.objects.filter(network__in=covering_networks(network))


class IPSearchMixin:
    """Shows the IP look-up panel above a changelist when the search term is an address."""

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        extra_context = dict(extra_context or {})
        term = request.GET.get("q", "")
        extra_context["ip_lookup"] = lookup_ip(term) if term else None
        extra_context["now"] = timezone.now()
        return super().changelist_view(request, extra_context=extra_context)


class ServiceErrorMixin:
    """A ValidationError raised by a service at save time becomes a message, not a 500.

    The form validation already runs the same checks; this only catches the rare write
    that lost a race with another one between validation and save (the transaction of
    the whole request is rolled back first).
    """

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().changeform_view(request, *args, **kwargs)
        except ValidationError as exc:
            self.message_user(request, "Not saved: " + " ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


# ---------------------------------------------------------------------------
# Customer


class ContactInline(admin.TabularInline):
    model = Contact
    extra = 0
    fields = ("email", "name", "receives_notices")


@admin.register(Customer)
class CustomerAdmin(ServiceErrorMixin, IPSearchMixin, admin.ModelAdmin):
    list_display = ("account", "name", "kind", "standing", "contact_emails", "allocation_count", "updated_at")
    list_filter = ("kind", "standing")
    search_fields = ("account", "name", "contacts__email", "contacts__name")
    search_help_text = "Account, name or e-mail; or an IP address or CIDR network: who holds it now and who held it."
    readonly_fields = ("standing", "all_allocations", "created_at", "updated_at")
    fields = ("account", "name", "kind", "standing", "notes", "all_allocations", "created_at", "updated_at")
    # Allocations are not inline: 50 rows of lease forms made the page 10,336 px tall (313 ms, 2,000 leases).
    # all_allocations links to the allocation list filtered to this customer instead.
    inlines = (ContactInline,)
    list_per_page = 50

    def get_queryset(self, request: HttpRequest) -> QuerySet[Customer]:
        qs = super().get_queryset(request)
        match = request.resolver_match
        if match is None or not match.url_name.endswith("_changelist"):
            # The change page counts with a limit (all_allocations); the list shows every count.
            return qs
        return qs.annotate(_allocations=Count("allocations", distinct=True)).prefetch_related("contacts")

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        matching = allocations_matching(search_term)
        if matching is None:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(pk__in=matching.values("customer_id")), False

    @admin.display(description="contacts")
    def contact_emails(self, obj: Customer) -> str:
        return ", ".join(c.email for c in obj.contacts.all())

    @admin.display(description="allocations", ordering="_allocations")
    def allocation_count(self, obj: Customer) -> int:
        return getattr(obj, "_allocations", 0)

    @admin.display(description="allocations")
    def all_allocations(self, obj: Customer) -> str:
        if obj.pk is None:
            return "–"
        url = reverse("admin:customers_allocation_changelist") + f"?customer__id__exact={obj.pk}"
        # COUNT over a LIMIT subquery: stops at the limit instead of counting a line's every lease.
        count = obj.allocations.all()[: ALLOCATION_COUNT_LIMIT + 1].count()
        shown = f"more than {ALLOCATION_COUNT_LIMIT:,}" if count > ALLOCATION_COUNT_LIMIT else f"{count:,}"
        add_url = reverse("admin:customers_allocation_add") + f"?customer={obj.pk}"
        return format_html(
            '<a class="all-allocations" href="{}">{} allocation{} (leases, static and pool addresses)</a>'
            ' · <a href="{}">add one</a>',
            url,
            shown,
            "" if count == 1 else "s",
            add_url,
        )

    def delete_model(self, request: HttpRequest, obj: Customer) -> None:
        self._delete_allocations_of([obj.pk], request)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        self._delete_allocations_of(list(queryset.values_list("pk", flat=True)), request)
        super().delete_queryset(request, queryset)

    def _delete_allocations_of(self, customer_ids: list[int], request: HttpRequest) -> None:
        # The cascade would remove them without a trace; each one is deleted through the service.
        for allocation in Allocation.objects.filter(customer_id__in=customer_ids):
            services.delete_allocation(allocation, actor=request.user)


# ---------------------------------------------------------------------------
# Allocation


class AllocationChangeInline(admin.TabularInline):
    model = AllocationChange
    fk_name = "allocation"
    extra = 0
    can_delete = False
    fields = ("at", "action", "actor", "actor_label", "old", "new")
    readonly_fields = fields
    ordering = ("-at", "-id")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PeriodFilter(admin.SimpleListFilter):
    """Current or ended allocations, as of now."""

    title = "period"
    parameter_name = "period"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("current", "Current"), ("ended", "Ended")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        if self.value() == "current":
            return queryset.filter(valid_from__lte=now).filter(Q(valid_to__isnull=True) | Q(valid_to__gt=now))
        if self.value() == "ended":
            return queryset.filter(valid_to__lte=now)
        return queryset


@admin.register(Allocation)
class AllocationAdmin(ServiceErrorMixin, IPSearchMixin, admin.ModelAdmin):
    list_display = ("network", "customer", "valid_from", "valid_to", "source", "note")
    list_filter = (PeriodFilter, "source", "family")
    list_select_related = ("customer",)
    search_fields = ("network", "customer__account", "customer__name", "note")
    search_help_text = "An IP address or CIDR network (every allocation that ever covered it), an account or a name."
    fields = ("customer", "network", "valid_from", "valid_to", "source", "note", "family", "prefixlen", "created_at")
    readonly_fields = ("family", "prefixlen", "created_at")
    autocomplete_fields = ("customer",)
    inlines = (AllocationChangeInline,)
    date_hierarchy = "valid_from"
    list_per_page = 100
    ordering = ("-valid_from", "-id")

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        matching = allocations_matching(search_term)
        if matching is None:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(pk__in=matching.values("pk")), False

    def save_model(self, request: HttpRequest, obj: Allocation, form: forms.ModelForm, change: bool) -> None:
        if change:
            changes = {
                name: form.cleaned_data[name] for name in form.changed_data if name in (*ALLOCATION_FIELDS, "customer")
            }
            if changes:
                services.update_allocation(obj, actor=request.user, **changes)
            return
        created = services.create_allocation(
            customer=form.cleaned_data["customer"],
            actor=request.user,
            **{name: form.cleaned_data.get(name) or ("" if name == "note" else None) for name in ALLOCATION_FIELDS},
        )
        # The admin redirects to and logs `obj`: give it the stored row's identity.
        obj.pk = created.pk
        obj.family, obj.prefixlen, obj.network = created.family, created.prefixlen, created.network

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        # Nothing editable hangs off an allocation (its history is read-only); skipping
        # form.save_m2m() also keeps the admin from writing the row a second time.
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def delete_model(self, request: HttpRequest, obj: Allocation) -> None:
        services.delete_allocation(obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Allocation]) -> None:
        for allocation in queryset:
            services.delete_allocation(allocation, actor=request.user)


@admin.register(AllocationChange)
class AllocationChangeAdmin(admin.ModelAdmin):
    list_display = ("at", "action", "network", "actor_display", "allocation")
    list_filter = ("action",)
    list_select_related = ("actor", "allocation")
    search_fields = ("network", "actor__username", "actor_label")
    date_hierarchy = "at"

    @admin.display(description="actor")
    def actor_display(self, obj: AllocationChange) -> str:
        return obj.actor.get_username() if obj.actor_id else obj.actor_label

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# The CSV import pages live in their own module; it registers itself on import.
from customers import admin_imports  # noqa: E402, F401
