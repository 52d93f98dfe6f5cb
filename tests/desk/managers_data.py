"""A small known history for the managers' pages: every figure on them can be worked out by hand.

Period 2026-11-01 to 2026-11-10 (UTC). Three customers:
R-1 residential, R-2 residential, B-1 business (named "-Evil Corp", to test CSV quoting).

case  customer category  opened       closed (status)          first customer notice sent
c1    R-1      spam      11-02 10:00  11-03 10:00 (resolved)   11-02 11:00  (1 h; not the reporter ack at 10:05)
c2    R-1      phishing  11-04 00:00  11-04 06:00 (resolved)   11-04 02:00  (2 h)
c3    R-2      spam      11-04 12:00  open, suspended          11-04 16:00  (4 h)
c4    B-1      spam      11-05 00:00  11-07 00:00 (resolved)   11-05 10:00  (10 h)
c5    R-2      spam      10-20 00:00  11-06 00:00 (resolved)   10-20 01:00  (opened before the period)
c6    R-1      malware   11-12 00:00  open                     -            (opened after the period)
c7    B-1      scanning  11-06 00:00  11-06 01:00 (rejected)   -

Time to first notice, cases opened in the period: 1, 2, 4, 10 h -> median 3 h, p90 8.2 h.
Time to resolution, cases resolved in the period: 24, 6, 48, 408 h -> median 36 h, p90 300 h.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from cases.models import ActorKind, Case, CaseEvent, CaseStatus, Notice, NoticeKind, NoticeStatus, Report, Rung
from customers.models import Customer

START, END = "2026-11-01", "2026-11-10"
HOUR = 3600
INJECTION = '=HYPERLINK("http://evil.example","click")'

_n = itertools.count(1)


def at(day: int, hour: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def _case(customer, category, opened, *, status=CaseStatus.OPEN, closed=None, rung=Rung.NONE) -> Case:
    return Case.objects.create(
        customer=customer,
        category=category,
        status=status,
        rung=rung,
        opened_at=opened,
        first_report_at=opened,
        last_report_at=opened,
        closed_at=closed,
    )


def _notice(case: Case, kind: str, sent_at: datetime | None, status: str = NoticeStatus.SENT) -> Notice:
    n = next(_n)
    return Notice.objects.create(
        case=case,
        kind=kind,
        key=f"numbers:{n}",
        message_id=f"<numbers-{n}@abusedesk.test>",
        subject="s",
        body="b",
        status=status,
        created_at=sent_at or at(1),
        sent_at=sent_at,
    )


def _report(case: Case | None, customer, category: str, created: datetime, reporter: str) -> Report:
    n = next(_n)
    return Report.objects.create(
        case=case,
        customer=customer,
        ip="198.51.100.7",
        occurred_at=created - timedelta(minutes=5),  # the figures count by this time
        created_at=created,
        category=category,
        reporter=reporter,
        dedupe_key=f"numbers-{n}",
    )


def _climb(case: Case, old: str, new: str, when: datetime, note: str = "", kind: str = "rung") -> CaseEvent:
    return CaseEvent.objects.create(
        case=case, kind=kind, old=old, new=new, note=note, at=when, actor_kind=ActorKind.SYSTEM
    )


def build(prefix: str = "") -> dict[str, Case]:
    """The history above; a prefix for its accounts makes a second, identical one beside it."""
    r1 = Customer.objects.create(account=f"{prefix}R-1", name="Home One", kind="residential")
    r2 = Customer.objects.create(account=f"{prefix}R-2", name="Home Two", kind="residential")
    b1 = Customer.objects.create(account=f"{prefix}B-1", name="-Evil Corp", kind="business")
    resolved = CaseStatus.RESOLVED
    c1 = _case(r1, "spam", at(2, 10), status=resolved, closed=at(3, 10), rung=Rung.FIRST_NOTICE)
    c2 = _case(r1, "phishing", at(4, 0), status=resolved, closed=at(4, 6), rung=Rung.FIRST_NOTICE)
    c3 = _case(r2, "spam", at(4, 12), status=CaseStatus.WAITING, rung=Rung.SUSPENSION)
    c4 = _case(b1, "spam", at(5, 0), status=resolved, closed=at(7, 0), rung=Rung.TERMINATION)
    c5 = _case(r2, "spam", at(20, 0, month=10), status=resolved, closed=at(6, 0), rung=Rung.SUSPENSION)
    c6 = _case(r1, "malware", at(12, 0))
    c7 = _case(b1, "scanning", at(6, 0), status=CaseStatus.REJECTED, closed=at(6, 1))

    _notice(c1, NoticeKind.REPORTER_ACK, at(2, 10).replace(minute=5))
    _notice(c1, NoticeKind.FIRST_NOTICE, at(2, 11))
    _notice(c1, NoticeKind.WARNING, at(2, 20))
    _notice(c2, NoticeKind.FIRST_NOTICE, at(4, 2))
    _notice(c3, NoticeKind.FIRST_NOTICE, at(4, 16))
    _notice(c3, NoticeKind.WARNING, None, status=NoticeStatus.PENDING)
    _notice(c4, NoticeKind.FIRST_NOTICE, at(5, 10))
    _notice(c5, NoticeKind.FIRST_NOTICE, at(20, 1, month=10))

    for hour in (10, 11, 12):
        _report(c1, r1, "spam", at(2, hour), "fbl@feed.example")
    _report(c2, r1, "phishing", at(4, 1), "x@cert.example")
    _report(c3, r2, "spam", at(4, 13), "fbl@feed.example")
    _report(c3, r2, "spam", at(4, 14), "fbl@feed.example")
    _report(c4, b1, "spam", at(5, 1), "fbl@feed.example")
    _report(c7, b1, "scanning", at(6, 1), "=cmd@evil.example")
    _report(c6, r1, "malware", at(15, 0), "late@feed.example")  # after the period

    _climb(c1, "none", "first_notice", at(2, 11))
    _climb(c3, "none", "first_notice", at(4, 16))
    _climb(c3, "first_notice", "warning", at(5, 12))
    _climb(c3, "warning", "suspension", at(8, 9), note="three warnings ignored")
    _climb(c3, "suspension", "warning", at(9, 9), note="fixed, says the customer", kind="reinstated")
    _climb(c4, "first_notice", "warning", at(6, 12), note=INJECTION)
    _climb(c4, "suspension", "termination", at(9, 15), note="+ terminated for good")
    _climb(c5, "warning", "suspension", at(25, 0, month=10))  # before the period: cut-offs in October only
    CaseEvent.objects.create(case=c1, kind="note", note="not an escalation", at=at(3), actor_kind=ActorKind.SYSTEM)
    return {"c1": c1, "c2": c2, "c3": c3, "c4": c4, "c5": c5, "c6": c6, "c7": c7}
