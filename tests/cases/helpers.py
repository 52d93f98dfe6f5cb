from __future__ import annotations

from datetime import UTC, datetime

from cases.intake.base import ParsedEvent
from customers.models import Allocation, Customer

T0 = datetime(2026, 11, 20, 14, 2, tzinfo=UTC)


def customer_with(network: str, account: str, *, valid_from=None, valid_to=None, kind="residential") -> Customer:
    customer, _ = Customer.objects.get_or_create(
        account=account, defaults={"name": f"Customer {account}", "kind": kind}
    )
    Allocation.objects.create(
        customer=customer,
        network=network,
        valid_from=valid_from or datetime(2026, 1, 1, tzinfo=UTC),
        valid_to=valid_to,
        source="static",
    )
    return customer


def event(ip: str, at: datetime = T0, category: str = "spam", reporter: str = "fbl@mail.example", **kw) -> ParsedEvent:
    return ParsedEvent(
        ip=ip, occurred_at=at, category=category, format=kw.pop("format", "arf"), reporter=reporter, **kw
    )
