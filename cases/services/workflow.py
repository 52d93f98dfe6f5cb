"""Workflow: the changes NOC staff make to a case by hand: notes, assignment, status."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from cases.models import CASE_TRANSITIONS, Case, CaseEvent, CaseStatus
from cases.services import ladder
from cases.services.common import TransitionError, actor_kwargs

# --- case changes ----------------------------------------------------------------------------


@transaction.atomic
def change_case_status(case: Case, new_status: str, *, actor, note: str = "") -> Case:
    case = Case.objects.select_for_update().get(pk=case.pk)
    if new_status not in CASE_TRANSITIONS.get(case.status, set()):
        raise TransitionError(f"A case cannot go from {case.status} to {new_status}.")
    reopening = new_status in (CaseStatus.OPEN, CaseStatus.WAITING) and not case.is_open
    if reopening and Case.objects.filter(customer_id=case.customer_id, category=case.category).open().exists():
        raise TransitionError("This customer already has an open case for that category.")
    old = case.status
    case.status = new_status
    case.closed_at = timezone.now() if new_status in (CaseStatus.RESOLVED, CaseStatus.REJECTED) else None
    case.save(update_fields=["status", "closed_at", "updated_at"])
    CaseEvent.objects.create(case=case, kind="status", old=old, new=new_status, note=note, **actor_kwargs(actor))
    if not case.is_open:
        ladder.on_case_closed(case, actor=actor)
    return case


@transaction.atomic
def assign_case(case: Case, assignee, *, actor) -> Case:
    case = Case.objects.select_for_update().get(pk=case.pk)
    old = case.assignee.get_username() if case.assignee else ""
    case.assignee = assignee
    case.save(update_fields=["assignee", "updated_at"])
    new = assignee.get_username() if assignee else ""
    CaseEvent.objects.create(case=case, kind="assignee", old=old, new=new, **actor_kwargs(actor))
    return case


@transaction.atomic
def add_case_note(case: Case, note: str, *, actor) -> CaseEvent:
    if not note.strip():
        raise ValueError("A note cannot be empty.")
    case = Case.objects.select_for_update().get(pk=case.pk)
    return CaseEvent.objects.create(case=case, kind="note", note=note.strip()[:10000], **actor_kwargs(actor))
