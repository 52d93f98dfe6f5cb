"""A customer's escalation timeline: every case with its rung, every notice, approval, standing
change, customer reply and ladder event, in time order. Read-only; a fixed number of queries
whatever the customer's history (the managers' page pins it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cases.models import Approval, Case, CaseEvent, CustomerReply, Notice, NoticeKind
from customers.models import Customer, StandingChange

# The CaseEvents that tell the ladder's story; notes, assignments and report batches stay on the case page.
LADDER_EVENT_KINDS = (
    "rung",
    "proposed",
    "reinstated",
    "de_escalated",
    "hold",
    "hold_released",
    "hold_expired",
    "merged_into",
    "report_rejected",
    "approval_cancelled",
)
# Newest rows kept per source; older history is on each case's own page.
PER_SOURCE_LIMIT = 500


@dataclass(frozen=True)
class Entry:
    """One line of the timeline. `what` picks its rendering: case, event, notice, proposal,
    decision, standing, reply. `obj` is the row it comes from."""

    at: datetime
    what: str
    obj: object
    case: Case | None = None
    order: int = field(default=0, compare=False)


@dataclass
class Timeline:
    customer: Customer
    cases: list[Case]
    entries: list[Entry]
    truncated: bool = False


def _newest(qs, stamp: str) -> list:
    return list(qs.order_by(f"-{stamp}", "-pk")[:PER_SOURCE_LIMIT])


def customer_timeline(customer: Customer) -> Timeline:
    """Seven queries: cases, events, notices, approvals, standing changes, replies (and none per row)."""
    cases = list(Case.objects.filter(customer=customer).select_related("merged_into").order_by("opened_at", "pk"))
    by_pk = {c.pk: c for c in cases}
    ids = list(by_pk)

    events = _newest(
        CaseEvent.objects.filter(case_id__in=ids, kind__in=LADDER_EVENT_KINDS).select_related("actor"), "at"
    )
    # Acknowledgements go to reporters, not to the customer: not part of the customer's escalation.
    notices = _newest(
        Notice.objects.filter(case_id__in=ids)
        .exclude(kind=NoticeKind.REPORTER_ACK)
        .only("pk", "case_id", "kind", "status", "recipients", "subject", "created_at", "sent_at", "last_error"),
        "created_at",
    )
    approvals = _newest(
        Approval.objects.filter(case_id__in=ids).select_related("proposed_by", "decided_by"), "proposed_at"
    )
    standing = _newest(StandingChange.objects.filter(customer=customer).select_related("actor"), "at")
    replies = _newest(CustomerReply.objects.filter(case_id__in=ids).select_related("reviewed_by"), "received_at")

    entries = [Entry(c.opened_at, "case", c, c, 0) for c in cases]
    entries += [Entry(e.at, "event", e, by_pk.get(e.case_id), 1) for e in events]
    entries += [Entry(n.sent_at or n.created_at, "notice", n, by_pk.get(n.case_id), 2) for n in notices]
    for a in approvals:
        entries.append(Entry(a.proposed_at, "proposal", a, by_pk.get(a.case_id), 3))
        if a.decided_at:
            entries.append(Entry(a.decided_at, "decision", a, by_pk.get(a.case_id), 4))
    entries += [Entry(s.at, "standing", s, by_pk.get(s.case_id), 5) for s in standing]
    entries += [Entry(r.received_at, "reply", r, by_pk.get(r.case_id), 6) for r in replies]
    entries.sort(key=lambda e: (e.at, e.order))
    truncated = any(len(rows) >= PER_SOURCE_LIMIT for rows in (events, notices, approvals, standing, replies))
    return Timeline(customer=customer, cases=cases, entries=entries, truncated=truncated)
