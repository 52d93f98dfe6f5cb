"""Customer and contact changes made through the API, audited as the admin audits them (LogEntry).

Allocations go through customers.services (AllocationChange rows), exactly as the admin's do.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.db import transaction

from customers.models import Contact, Customer


def _log(obj, action: int, message: str, *, actor) -> None:
    if not getattr(actor, "is_authenticated", False):
        return
    LogEntry.objects.log_actions(
        user_id=actor.pk,
        queryset=[obj],
        action_flag=action,
        change_message=message,
        single_object=True,
    )


@transaction.atomic
def create_customer(*, actor, **fields: Any) -> Customer:
    customer = Customer(**fields)
    customer.full_clean()
    customer.save()
    _log(customer, ADDITION, '[{"added": {}}] via API', actor=actor)
    return customer


@transaction.atomic
def update_customer(customer: Customer, *, actor, **changes: Any) -> Customer:
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    changed = [name for name, value in changes.items() if getattr(customer, name) != value]
    for name in changed:
        setattr(customer, name, changes[name])
    if changed:
        customer.full_clean()
        customer.save()
        _log(customer, CHANGE, f'[{{"changed": {{"fields": {sorted(changed)!r}}}}}] via API', actor=actor)
    return customer


@transaction.atomic
def create_contact(customer: Customer, *, actor, **fields: Any) -> Contact:
    contact = Contact(customer=customer, **fields)
    contact.full_clean()
    contact.save()
    _log(customer, CHANGE, f"added contact {contact.email} via API", actor=actor)
    return contact


@transaction.atomic
def update_contact(contact: Contact, *, actor, **changes: Any) -> Contact:
    contact = Contact.objects.select_for_update().select_related("customer").get(pk=contact.pk)
    for name, value in changes.items():
        setattr(contact, name, value)
    contact.full_clean()
    contact.save()
    _log(contact.customer, CHANGE, f"changed contact {contact.email} via API", actor=actor)
    return contact


@transaction.atomic
def delete_contact(contact: Contact, *, actor) -> None:
    customer = contact.customer
    email = contact.email
    contact.delete()
    _log(customer, CHANGE, f"deleted contact {email} via API", actor=actor)
