"""The desk's customer page (NOC staff and up) and the IP look-up at a given time.

Not the admin: a read-only page for the people working cases. Contacts and standing, the
customer's allocations now and past (paginated in SQL, never counted: a residential line has
thousands of leases), all its cases, and the escalation timeline, which is the cases app's own
page (cases:customer_timeline) embedded by URL: customers never imports cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.core.paginator import Paginator
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone

from abusedesk.roles import NOC, role_required
from customers import resolver
from customers.forms import LookupForm
from customers.models import Allocation, Customer

ALLOCATIONS_PER_PAGE = 50
CASES_PER_PAGE = 25
STANDING_CHANGES_SHOWN = 5
LOOKUP_HISTORY = 20
# Deep pages of a lease history are a scroll through the past, not a need: bounded offset.
MAX_ALLOCATION_PAGE = 2000
ALLOCATION_VIEWS = (("all", "All"), ("now", "Now"), ("past", "Past"))


@dataclass
class SlicePage:
    """One page of rows read with LIMIT n+1: whether there is a next page, without a COUNT."""

    rows: list
    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def _page_number(value: str | None, limit: int) -> int:
    try:
        return min(max(int(value or 1), 1), limit)
    except ValueError:
        return 1


def _allocations(customer: Customer, which: str, number: int, now: datetime) -> SlicePage:
    qs = Allocation.objects.filter(customer=customer)  # allocation_customer_idx (customer, valid_from)
    if which == "now":
        qs = qs.valid_at(now)
    elif which == "past":
        qs = qs.filter(valid_to__lte=now)
    start = (number - 1) * ALLOCATIONS_PER_PAGE
    rows = list(qs.order_by("-valid_from", "-pk")[start : start + ALLOCATIONS_PER_PAGE + 1])
    for row in rows:
        row.is_current = row.valid_from <= now and (row.valid_to is None or row.valid_to > now)
    return SlicePage(rows[:ALLOCATIONS_PER_PAGE], number, len(rows) > ALLOCATIONS_PER_PAGE)


@role_required(NOC)
def customer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=pk)
    which = request.GET.get("alloc", "all")
    if which not in dict(ALLOCATION_VIEWS):
        which = "all"
    now = timezone.now()
    allocations = _allocations(customer, which, _page_number(request.GET.get("ap"), MAX_ALLOCATION_PAGE), now)
    # One customer's cases are tens, rarely hundreds: counted through case_customer_rung_idx.
    cases = Paginator(
        customer.cases.annotate(assignee_name=F("assignee__username")).order_by("-last_report_at", "-pk"),
        CASES_PER_PAGE,
    ).get_page(request.GET.get("cp"))
    return render(
        request,
        "customers/customer_detail.html",
        {
            "customer": customer,
            "contacts": list(customer.contacts.all()),
            "standing_changes": customer.standing_changes.select_related("actor")[:STANDING_CHANGES_SHOWN],
            "allocations": allocations,
            "alloc_view": which,
            "alloc_views": ALLOCATION_VIEWS,
            "cases": cases,
            "lookup_form": LookupForm(action=reverse("customers:customer_lookup"), auto_id="lookup_%s"),
        },
    )


@role_required(NOC)
def customer_lookup(request: HttpRequest) -> HttpResponse:
    """Who held this address at this instant: customers.resolver.resolve(), the intake's own rule."""
    action = reverse("customers:customer_lookup")
    asked = "ip" in request.GET
    form = LookupForm(request.GET if asked else None, action=action)
    context: dict = {"form": form, "asked": asked}
    if asked and form.is_valid():
        ip, at, port = form.cleaned_data["ip"], form.cleaned_data["at"], form.cleaned_data["port"]
        context.update(
            ip=str(ip),
            at=at,
            port=port,
            held=resolver.resolve(ip, at) if port is None else resolver.resolve(ip, at, port),
            # Who held it before and after, for a time near a lease change.
            history=resolver.history(ip, limit=LOOKUP_HISTORY),
        )
    return render(request, "customers/lookup.html", context, status=400 if asked and not form.is_valid() else 200)
