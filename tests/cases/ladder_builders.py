"""Builders for ladder tests: a case at a rung with its reports, approvals, notices.

Plain functions over the ORM (state a test starts from, not a path through the ladder); the
actions under test then go through the real services. Used by the page tests and the browser test.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

from django.utils import timezone

from cases.models import Approval, ApprovalStatus, Case, CaseStatus, Notice, NoticeKind, NoticeStatus, Report, Rung
from customers.models import Contact, Customer
from tests.customers.factories import make_customer

_seq = itertools.count(1)


def next_number() -> int:
    return next(_seq)


def make_case(
    *,
    rung: int = Rung.WARNING,
    customer: Customer | None = None,
    reports: int = 3,
    unconfirmed: int = 0,
    category: str = "spam",
    kind: str = "residential",
) -> Case:
    """An open case at `rung`, reached five days ago, with `reports` trusted reports since (after
    the grace period) and `unconfirmed` reports from unknown individuals."""
    if customer is None:
        customer = make_customer(kind=kind)
        Contact.objects.create(customer=customer, email=f"abuse@{customer.account.lower()}.example")
    now = timezone.now()
    since = now - timedelta(days=5)
    case = Case.objects.create(
        customer=customer,
        category=category,
        status=CaseStatus.WAITING if rung else CaseStatus.OPEN,
        rung=rung,
        rung_at=since if rung else None,
        counted_from=since if rung else None,
        first_report_at=since - timedelta(hours=1),
        last_report_at=now - timedelta(hours=1),
        report_count=reports + unconfirmed,
    )
    for i in range(reports + unconfirmed):
        n = next_number()
        Report.objects.create(
            case=case,
            customer=customer,
            ip="198.51.100.7",
            occurred_at=now - timedelta(hours=2 + i),
            category=category,
            reporter=f"fbl{n}@mail.example" if i < reports else f"person{n}@home.example",
            format="arf" if i < reports else "freetext",
            needs_confirmation=i >= reports,
            evidence=f"evidence {n}",
            dedupe_key=f"k{n}",
        )
    return case


def pending_approval(case: Case, *, rung: int = Rung.SUSPENSION, reason: str = "", proposed_by=None) -> Approval:
    return Approval.objects.create(
        case=case,
        rung=rung,
        reason=reason or "3 further reports from 3 reporters since the warning 5 days ago.",
        proposed_by=proposed_by,
        proposed_at=timezone.now() - timedelta(hours=3),
    )


def scheduled_approval(case: Case, manager, *, hours: int = 48) -> Approval:
    approval = pending_approval(case)
    approval.status = ApprovalStatus.SCHEDULED
    approval.decided_by = manager
    approval.decided_at = timezone.now()
    approval.decision_reason = "fix it by Friday"
    approval.scheduled_for = timezone.now() + timedelta(hours=hours)
    approval.save()
    return approval


def make_notice(case: Case, *, status: str = NoticeStatus.SENT, kind: str = NoticeKind.WARNING, **kw) -> Notice:
    n = next_number()
    return Notice.objects.create(
        case=case,
        kind=kind,
        key=f"test:{n}",
        message_id=f"<notice-{n}@abusedesk.test>",
        recipients=[f"abuse@{case.customer.account.lower()}.example"],
        subject=kw.pop("subject", f"[{case.reference}] Warning about your connection"),
        body=kw.pop("body", "We received reports about your connection."),
        status=status,
        sent_at=timezone.now() if status == NoticeStatus.SENT else None,
        **kw,
    )
