"""Every change to an allocation goes through here and leaves an AllocationChange row; every change
of a customer's standing leaves a StandingChange row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from customers.models import Allocation, AllocationChange, Customer, Standing, StandingChange


def _actor_fields(actor, actor_label: str) -> dict[str, Any]:
    user = actor if getattr(actor, "is_authenticated", False) else None
    label = actor_label or (user.get_username() if user else "system")
    return {"actor": user, "actor_label": label}


def record_allocation_change(
    allocation: Allocation | None,
    action: str,
    *,
    old: dict | None,
    new: dict | None,
    actor=None,
    actor_label: str = "",
    network: str = "",
) -> AllocationChange:
    return AllocationChange.objects.create(
        allocation=allocation if allocation is not None and allocation.pk else None,
        network=network or (allocation.network if allocation is not None else ""),
        action=action,
        old=old,
        new=new,
        **_actor_fields(actor, actor_label),
    )


def _lock_same_network(network: str) -> None:
    # Serialise writers of one network so two overlapping periods cannot both pass the
    # overlap check (PostgreSQL; SQLite serialises all writers anyway).
    list(Allocation.objects.select_for_update().filter(network=network).values_list("pk", flat=True))


@transaction.atomic
def create_allocation(
    *,
    customer: Customer,
    network: str,
    valid_from: datetime,
    valid_to: datetime | None = None,
    source: str = "static",
    note: str = "",
    ports: tuple[int, int] | None = None,
    actor=None,
    actor_label: str = "",
) -> Allocation:
    """Validate and store a new allocation. Raises ValidationError (host bits, overlap, end before start).

    `ports` (first, last) makes a CGNAT port block: one public address, those source ports only.
    """
    allocation = Allocation(
        customer=customer, network=network, valid_from=valid_from, valid_to=valid_to, source=source, note=note
    )
    if ports is not None:
        allocation.port_from, allocation.port_to = ports
    allocation.set_network_fields()
    _lock_same_network(allocation.network)
    allocation.full_clean()
    allocation.save()
    record_allocation_change(
        allocation,
        AllocationChange.Action.CREATED,
        old=None,
        new=allocation.snapshot(),
        actor=actor,
        actor_label=actor_label,
    )
    return allocation


@transaction.atomic
def update_allocation(allocation: Allocation, *, actor=None, actor_label: str = "", **changes: Any) -> Allocation:
    """Change fields of an allocation (network, valid_from, valid_to, source, note, customer)."""
    allowed = {"customer", "network", "valid_from", "valid_to", "source", "note"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"cannot change {sorted(unknown)}")
    current = Allocation.objects.select_for_update().select_related("customer").get(pk=allocation.pk)
    old = current.snapshot()
    for field, value in changes.items():
        setattr(current, field, value)
    current.set_network_fields()
    _lock_same_network(current.network)
    current.full_clean()
    new = current.snapshot()
    if new == old:
        return current
    current.save()
    record_allocation_change(
        current, AllocationChange.Action.UPDATED, old=old, new=new, actor=actor, actor_label=actor_label
    )
    return current


def end_allocation(allocation: Allocation, *, at: datetime, actor=None, actor_label: str = "") -> Allocation:
    """Close an open allocation at `at` (the address was handed back)."""
    if allocation.valid_to is not None and allocation.valid_to <= at:
        raise ValidationError("This allocation had already ended.")
    return update_allocation(allocation, valid_to=at, actor=actor, actor_label=actor_label)


@transaction.atomic
def delete_allocation(allocation: Allocation, *, actor=None, actor_label: str = "") -> None:
    current = Allocation.objects.select_for_update().select_related("customer").get(pk=allocation.pk)
    old = current.snapshot()
    network = current.network
    record_allocation_change(
        current,
        AllocationChange.Action.DELETED,
        old=old,
        new=None,
        actor=actor,
        actor_label=actor_label,
        network=network,
    )
    current.delete()


@transaction.atomic
def change_standing(
    customer: Customer,
    standing: str,
    *,
    actor=None,
    actor_label: str = "",
    reason: str = "",
    case_id: int | None = None,
) -> StandingChange | None:
    """Move a customer's standing (the ladder calls this). No change, no row. Returns the audit row."""
    if standing not in Standing.values:
        raise ValueError(f"unknown standing {standing!r}")
    locked = Customer.objects.select_for_update().only("pk", "standing").get(pk=customer.pk)
    old = locked.standing
    if old == standing:
        customer.standing = standing
        return None
    Customer.objects.filter(pk=customer.pk).update(standing=standing)
    customer.standing = standing
    return StandingChange.objects.create(
        customer=customer, old=old, new=standing, reason=reason, case_id=case_id, **_actor_fields(actor, actor_label)
    )
