"""Small builders for customers and allocations. Plain functions: each test says what it needs."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from customers.models import Allocation, Customer, CustomerKind
from customers.services import create_allocation

# A fixed instant for tests that do not care about "now": Tuesday 2026-11-03 14:02 UTC.
T0 = datetime(2026, 11, 3, 14, 2, tzinfo=UTC)

_accounts = itertools.count(1)


def make_customer(account: str = "", *, name: str = "", kind: str = CustomerKind.RESIDENTIAL) -> Customer:
    account = account or f"T-{next(_accounts):05d}"
    return Customer.objects.create(account=account, name=name or f"Customer {account}", kind=kind)


def make_allocation(
    network: str,
    *,
    customer: Customer | None = None,
    valid_from: datetime = datetime(2020, 1, 1, tzinfo=UTC),
    valid_to: datetime | None = None,
    source: str = "static",
    actor=None,
) -> Allocation:
    """Through the service, so the data is as validated as production's."""
    return create_allocation(
        customer=customer or make_customer(),
        network=network,
        valid_from=valid_from,
        valid_to=valid_to,
        source=source,
        actor=actor,
        actor_label="" if actor else "tests",
    )
