"""The escalation ladder: first notice -> warning -> suspension -> termination, and back.

`next_step()` is a pure function of what is known about a case (CaseFacts), the customer kind's
Policy and the time: it says which rung comes next, who must act (automatic, a NOC member, a
manager), when, and why in words. Everything else here applies its answer or a person's action,
each in one transaction that locks the case, writes a CaseEvent, and writes any notice or
provisioning call as an outbox row in that same transaction.

The house rules it enforces, whatever an admin saves in a Policy:
- one report never suspends anybody: suspension is only ever proposed from a warning, for
  further reports after the warning's grace period; a new case starts at most at a warning;
- suspension and termination happen only on a manager's approval (an Approval row);
- reports count only when trusted (feeds), confirmed by a NOC member, or sent by enough
  distinct reporters; rejected reports never count.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from abusedesk.roles import ADMIN, MANAGER, NOC, has_role
from cases.models import (
    OPEN_APPROVAL_STATUSES,
    OPEN_STATUSES,
    RUNG_NOTICE,
    ActorKind,
    Approval,
    ApprovalStatus,
    Case,
    CaseEvent,
    CaseStatus,
    Notice,
    NoticeKind,
    NoticeStatus,
    Policy,
    PolicyChange,
    ProvisioningAction,
    Report,
    Rung,
    StepMode,
    rung_key,
)
from cases.services import notices, provisioning
from cases.services.common import TransitionError, actor_kwargs, actor_label, execute_prepared
from customers.models import Customer, CustomerKind, Standing
from customers.services import change_standing

log = logging.getLogger(__name__)

NEXT_RUNG = {
    Rung.NONE: Rung.FIRST_NOTICE,
    Rung.FIRST_NOTICE: Rung.WARNING,
    Rung.WARNING: Rung.SUSPENSION,
    Rung.SUSPENSION: Rung.TERMINATION,
}
# Rungs a manager must approve, under any policy.
MANAGER_RUNGS = (Rung.SUSPENSION, Rung.TERMINATION)
# Restrictions a warning may carry (Policy.restriction_categories), by category.
RESTRICTION_FOR = {"spam": "port25", "botnet": "walled_garden", "malware": "walled_garden"}
# Customer notices (not the reporter's acknowledgement) that make a later case a repeat offence.
CUSTOMER_NOTICE_KINDS = (
    NoticeKind.FIRST_NOTICE,
    NoticeKind.WARNING,
    NoticeKind.RESTRICTION,
    NoticeKind.SUSPENSION,
    NoticeKind.TERMINATION,
)


# --- the pure part ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportFact:
    occurred_at: datetime
    reporter: str
    trusted: bool  # counts at once (a feed, a listed source) or was confirmed by a NOC member
    rejected: bool = False


@dataclass(frozen=True)
class OpenApproval:
    rung: int
    status: str
    scheduled_for: datetime | None = None


@dataclass(frozen=True)
class CaseFacts:
    """What next_step() reads about a case and its customer's history. Built by load_facts()."""

    status: str
    rung: int
    customer_kind: str
    category: str = ""
    rung_at: datetime | None = None
    counted_from: datetime | None = None
    reports: tuple[ReportFact, ...] = ()
    hold_until: datetime | None = None
    hold_reason: str = ""
    awaiting_review: bool = False
    open_approval: OpenApproval | None = None
    # The latest customer notice of this customer on ANOTHER case (repeat offenders).
    earlier_notice_at: datetime | None = None
    # The latest reinstatement of this customer (probation).
    reinstated_at: datetime | None = None
    standing: str = Standing.GOOD


@dataclass(frozen=True)
class Step:
    """The ladder's answer. rung None: nothing to climb to. ready: act now (mode says who)."""

    rung: int | None
    mode: str | None
    due_at: datetime | None
    reason: str
    ready: bool = False

    @property
    def label(self) -> str:
        return Rung(self.rung).label if self.rung is not None else ""


def mode_for(rung: int, policy: Policy) -> str:
    if rung in MANAGER_RUNGS:
        return StepMode.MANAGER
    if rung == Rung.FIRST_NOTICE:
        return policy.first_notice_mode
    return policy.warning_mode


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _ago(then: datetime, now: datetime) -> str:
    seconds = max(0, (now - then).total_seconds())
    if seconds < 3600:
        return f"{int(seconds // 60)} minutes ago" if seconds >= 120 else "just now"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)} hours ago"
    return f"{int(seconds // 86400)} days ago"


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def counting_reports(facts: CaseFacts, policy: Policy, now: datetime) -> tuple[list[ReportFact], int]:
    """The reports that count toward the ladder now, and how many wait for confirmation."""
    window_start = now - timedelta(days=policy.window_days)
    live = [r for r in facts.reports if not r.rejected and window_start <= r.occurred_at <= now]
    # An unknown individual's complaint counts once enough distinct reporters say the same.
    enough_voices = len({r.reporter.lower() for r in live if r.reporter}) >= max(1, policy.distinct_reporters_to_count)
    counted = [r for r in live if r.trusted or enough_voices]
    return counted, len(live) - len(counted)


def next_step(facts: CaseFacts, policy: Policy, now: datetime) -> Step:
    """The next rung for a case, who must act, when, and why. Pure: no database, no clock."""
    if facts.status not in OPEN_STATUSES:
        return Step(None, None, None, "The case is closed.")
    if facts.open_approval is not None:
        approval = facts.open_approval
        label = Rung(approval.rung).label.lower()
        if approval.status == ApprovalStatus.SCHEDULED and approval.scheduled_for:
            return Step(
                approval.rung,
                StepMode.MANAGER,
                approval.scheduled_for,
                f"Approved: {label} at {_when(approval.scheduled_for)} unless fixed before then.",
                ready=approval.scheduled_for <= now,
            )
        return Step(approval.rung, StepMode.MANAGER, None, f"A {label} waits for a manager's decision.")
    if facts.hold_until and facts.hold_until > now:
        why = f": {facts.hold_reason}" if facts.hold_reason else ""
        return Step(None, None, facts.hold_until, f"On hold until {_when(facts.hold_until)}{why}.")
    if facts.awaiting_review:
        return Step(None, None, None, "The customer replied; escalation waits until a NOC member reviews the reply.")
    if facts.rung >= Rung.TERMINATION:
        return Step(None, None, None, "The customer is at the last rung (termination).")

    counted, unconfirmed = counting_reports(facts, policy, now)
    waiting = f"; {_plural(unconfirmed, 'report')} from unknown reporters wait for confirmation" if unconfirmed else ""

    # Probation: reports after a reinstatement, within the probation period, propose termination.
    if facts.reinstated_at and now - facts.reinstated_at <= timedelta(days=policy.probation_days):
        after = [r for r in counted if r.occurred_at > facts.reinstated_at]
        if after:
            return Step(
                Rung.TERMINATION,
                StepMode.MANAGER,
                now,
                f"{_plural(len(after), 'report')} within the {policy.probation_days}-day probation after the "
                f"reinstatement {_ago(facts.reinstated_at, now)}.",
                ready=True,
            )

    if facts.rung == Rung.NONE:
        if len(counted) < policy.reports_for_first_notice:
            have = f"{len(counted)} of {policy.reports_for_first_notice} reports needed for a first notice"
            return Step(Rung.FIRST_NOTICE, mode_for(Rung.FIRST_NOTICE, policy), None, f"{have}{waiting}.")
        reporters = len({r.reporter.lower() for r in counted})
        seen = f"{_plural(len(counted), 'report')} from {_plural(reporters, 'reporter')}"
        if facts.earlier_notice_at and now - facts.earlier_notice_at <= timedelta(days=policy.repeat_window_days):
            return Step(
                Rung.WARNING,
                mode_for(Rung.WARNING, policy),
                now,
                f"Repeat offender: {seen}, and a notice on another case {_ago(facts.earlier_notice_at, now)} "
                f"(within {policy.repeat_window_days} days).",
                ready=True,
            )
        return Step(Rung.FIRST_NOTICE, mode_for(Rung.FIRST_NOTICE, policy), now, f"{seen}{waiting}.", ready=True)

    target = NEXT_RUNG[Rung(facts.rung)]
    needed = {
        Rung.WARNING: policy.reports_for_warning,
        Rung.SUSPENSION: policy.reports_for_suspension,
        Rung.TERMINATION: policy.reports_for_termination,
    }[target]
    needed = max(1, needed)  # one further report at the very least, whatever was saved
    since = facts.counted_from or facts.rung_at
    rung_name = Rung(facts.rung).label.lower()
    if since is None:  # a rung with no time (data from before the ladder): count from now on
        return Step(target, mode_for(target, policy), None, f"No record of when the {rung_name} was sent.")
    grace_end = since + timedelta(hours=policy.grace_hours)
    further = [r for r in counted if r.occurred_at > grace_end]
    mode = mode_for(target, policy)
    if now < grace_end:
        return Step(
            target,
            mode,
            grace_end,
            f"Grace period after the {rung_name} ({since and _ago(since, now)}) runs until {_when(grace_end)}; "
            f"then {_plural(needed, 'further report')} bring a {target.label.lower()}{waiting}.",
        )
    reporters = len({r.reporter.lower() for r in further})
    if len(further) >= needed:
        return Step(
            target,
            mode,
            now,
            f"{_plural(len(further), 'further report')} from {_plural(reporters, 'reporter')} since the "
            f"{rung_name} {_ago(since, now)}.",
            ready=True,
        )
    return Step(
        target,
        mode,
        None,
        f"{len(further)} of {_plural(needed, 'further report')} needed for a {target.label.lower()} "
        f"since the grace period ended {_ago(grace_end, now)}{waiting}.",
    )


# --- facts from the database ---------------------------------------------------------------------


def policy_for(kind: str, *, fresh: bool = False) -> Policy:
    """The policy for a customer kind (Policy.cached: a minute per process); fresh=True re-reads it."""
    return Policy.cached(kind, fresh=fresh)


def _forget_policies() -> None:
    Policy.forget_cached()


def load_facts(cases: Iterable[Case], now: datetime) -> dict[int, CaseFacts]:
    """CaseFacts for many cases with five queries, whatever their number (the beat's batches).

    The cases must have their customer loaded (select_related("customer")).
    """
    cases = list(cases)
    if not cases:
        return {}
    ids = [c.pk for c in cases]
    customer_ids = {c.customer_id for c in cases}
    policies = {kind: policy_for(kind) for kind in CustomerKind.values}
    oldest = now - timedelta(days=max(p.window_days for p in policies.values()))

    reports: dict[int, list[ReportFact]] = defaultdict(list)
    for case_id, at, reporter, needs, confirmed, rejected, fmt in Report.objects.filter(
        case_id__in=ids, duplicate_of__isnull=True, occurred_at__gte=oldest
    ).values_list("case_id", "occurred_at", "reporter", "needs_confirmation", "confirmed_at", "rejected_at", "format"):
        # A DMARC aggregate row is nobody's complaint: it is no voice toward distinct_reporters_to_count,
        # so DMARC reports alone never start a notice (they count once a NOC member confirms them).
        voice = "" if fmt == "dmarc" else reporter
        reports[case_id].append(
            ReportFact(at, voice, trusted=not needs or confirmed is not None, rejected=rejected is not None)
        )

    approvals = {
        case_id: OpenApproval(rung, status, scheduled_for)
        for case_id, rung, status, scheduled_for in Approval.objects.open()
        .filter(case_id__in=ids)
        .values_list("case_id", "rung", "status", "scheduled_for")
    }

    # Customer notices per (customer, case): the latest on another case makes a repeat offender.
    notices_by_customer: dict[int, list[tuple[int, datetime]]] = defaultdict(list)
    for row in (
        Notice.objects.filter(case__customer_id__in=customer_ids, kind__in=CUSTOMER_NOTICE_KINDS)
        .exclude(status=NoticeStatus.FAILED)
        .values("case__customer_id", "case_id")
        .annotate(last=Max("created_at"))
        .order_by()
    ):
        notices_by_customer[row["case__customer_id"]].append((row["case_id"], row["last"]))

    reinstated = dict(
        CaseEvent.objects.filter(kind="reinstated", case__customer_id__in=customer_ids)
        .values("case__customer_id")
        .annotate(last=Max("at"))
        .values_list("case__customer_id", "last")
    )

    out = {}
    for case in cases:
        earlier = [at for pk, at in notices_by_customer.get(case.customer_id, ()) if pk != case.pk and at]
        out[case.pk] = _case_facts(
            case,
            tuple(reports.get(case.pk, ())),
            approvals.get(case.pk),
            max(earlier) if earlier else None,
            reinstated.get(case.customer_id),
        )
    return out


def _case_facts(case: Case, reports: tuple[ReportFact, ...], approval, earlier_notice_at, reinstated_at) -> CaseFacts:
    """CaseFacts from a case (with its customer loaded) and what was read about its history."""
    return CaseFacts(
        status=case.status,
        rung=case.rung,
        customer_kind=case.customer.kind,
        category=case.category,
        rung_at=case.rung_at,
        counted_from=case.counted_from,
        reports=reports,
        hold_until=case.hold_until,
        hold_reason=case.hold_reason,
        awaiting_review=case.awaiting_review,
        open_approval=approval,
        earlier_notice_at=earlier_notice_at,
        reinstated_at=reinstated_at,
        standing=case.customer.standing,
    )


@cache
def _columns(model, alias: str) -> tuple[list[str], list]:
    """The model's columns for a hand-written SELECT, and the converters Django would apply to them."""
    quote = connection.ops.quote_name
    fields = model._meta.concrete_fields
    converters = [
        f.get_db_converters(connection) + connection.ops.get_db_converters(f.get_col(model._meta.db_table))
        for f in fields
    ]
    return [f"{alias}.{quote(f.column)}" for f in fields], converters


def _from_row(model, values: list, converters: list):
    for n, convert in enumerate(converters):
        for converter in convert:
            values[n] = converter(values[n], None, connection)
    return model.from_db(connection.alias, None, values)


def _lock_with_facts_postgresql(case_id: int, now: datetime) -> tuple[Case, CaseFacts]:
    """_lock() and load_facts() for one case in one round trip.

    Two statements in one call. The lock comes first, on its own, so the facts (read by the next
    statement, with a new snapshot) include whatever the lock's previous holder committed, as
    when _lock and load_facts ran one after the other.
    """
    return _case_with_facts_postgresql(case_id, now, lock=True)


def _facts_statement(case_id: int, now: datetime) -> tuple[str, list]:
    """The statement (and its parameters) that reads one case, its customer and its facts."""
    case_columns, _ = _columns(Case, "c")
    customer_columns, _ = _columns(Customer, "cu")
    quote = connection.ops.quote_name
    case_t, customer_t = quote(Case._meta.db_table), quote(Customer._meta.db_table)
    report_t, approval_t = quote(Report._meta.db_table), quote(Approval._meta.db_table)
    notice_t, event_t = quote(Notice._meta.db_table), quote(CaseEvent._meta.db_table)
    policies = {kind: policy_for(kind) for kind in CustomerKind.values}
    oldest = now - timedelta(days=max(p.window_days for p in policies.values()))
    sql = (
        f"SELECT {', '.join(case_columns + customer_columns)}, "
        "rf.ats, rf.voices, rf.trusted, rf.rejected, ap.rung, ap.status, ap.scheduled_for, "
        f"(SELECT max(n.created_at) FROM {notice_t} n JOIN {case_t} o ON o.id = n.case_id "
        " WHERE o.customer_id = c.customer_id AND o.id <> c.id AND n.kind = ANY(%s) AND n.status <> %s), "
        f"(SELECT max(e.at) FROM {event_t} e JOIN {case_t} o ON o.id = e.case_id "
        " WHERE o.customer_id = c.customer_id AND e.kind = 'reinstated') "
        # The customer by its key for the one case (OFFSET 0 keeps the sub-select apart): as a plain
        # join, the prepared statement's generic plan merge-joined the case with the customer table
        # read in key order up to the case's customer, a read that grows with the customer table.
        f"FROM {case_t} c CROSS JOIN LATERAL (SELECT * FROM {customer_t} cx WHERE cx.id = c.customer_id OFFSET 0) cu "
        "CROSS JOIN LATERAL (SELECT "
        # As load_facts: a DMARC aggregate row is nobody's voice.
        "array_agg(r.occurred_at ORDER BY r.occurred_at DESC, r.id DESC) AS ats, "
        "array_agg(CASE WHEN r.format = 'dmarc' THEN '' ELSE r.reporter END ORDER BY r.occurred_at DESC, r.id DESC) "
        "AS voices, "
        "array_agg(NOT r.needs_confirmation OR r.confirmed_at IS NOT NULL ORDER BY r.occurred_at DESC, r.id DESC) "
        "AS trusted, "
        "array_agg(r.rejected_at IS NOT NULL ORDER BY r.occurred_at DESC, r.id DESC) AS rejected "
        f"FROM {report_t} r WHERE r.case_id = c.id AND r.duplicate_of_id IS NULL AND r.occurred_at >= %s) rf "
        f"LEFT JOIN LATERAL (SELECT a.rung, a.status, a.scheduled_for FROM {approval_t} a "
        "WHERE a.case_id = c.id AND a.status = ANY(%s) ORDER BY a.proposed_at DESC, a.id DESC LIMIT 1) ap ON true "
        "WHERE c.id = %s"
    )
    params = [
        [str(k) for k in CUSTOMER_NOTICE_KINDS],
        str(NoticeStatus.FAILED),
        oldest,
        [str(s) for s in OPEN_APPROVAL_STATUSES],
        case_id,
    ]
    return sql, params


def _case_with_facts_postgresql(case_id: int, now: datetime, *, lock: bool) -> tuple[Case, CaseFacts]:
    """A case, its customer and its CaseFacts in one statement (after the lock's, with lock=True)."""
    case_columns, case_converters = _columns(Case, "c")
    customer_columns, customer_converters = _columns(Customer, "cu")
    sql, params = _facts_statement(case_id, now)
    case_t = connection.ops.quote_name(Case._meta.db_table)
    head = f"SELECT 1 FROM {case_t} WHERE id = %s FOR UPDATE; " if lock else ""
    with connection.cursor() as cursor:
        execute_prepared(cursor, sql, params, head=head, head_params=[case_id] if lock else [])
        row = cursor.fetchone()
    if row is None:
        raise Case.DoesNotExist(f"No case {case_id}.")
    row = list(row)
    n_case, n_customer = len(case_columns), len(customer_columns)
    case = _from_row(Case, row[:n_case], case_converters)
    case.customer = _from_row(Customer, row[n_case : n_case + n_customer], customer_converters)
    ats, voices, trusted, rejected, ap_rung, ap_status, ap_scheduled, earlier, reinstated = row[n_case + n_customer :]
    reports = tuple(
        ReportFact(at, voice, trusted=ok, rejected=gone)
        for at, voice, ok, gone in zip(ats or (), voices or (), trusted or (), rejected or (), strict=True)
    )
    approval = None if ap_status is None else OpenApproval(ap_rung, ap_status, ap_scheduled)
    return case, _case_facts(case, reports, approval, earlier, reinstated)


def describe_case(case: Case, *, now: datetime | None = None) -> Step:
    """What the ladder would do with this case now (the case page's panel). Reads only."""
    now = now or timezone.now()
    facts = load_facts([case], now)[case.pk]
    return next_step(facts, policy_for(case.customer.kind, fresh=True), now)


# --- applying a step ---------------------------------------------------------------------------------


def _event(case: Case, kind: str, *, actor, old: str = "", new: str = "", note: str = "", at=None, report=None):
    return CaseEvent.objects.create(
        case=case,
        kind=kind,
        old=old[:64],
        new=new[:64],
        note=note[:10000],
        report=report,
        at=at or timezone.now(),
        **actor_kwargs(actor),
    )


def _lock(case_or_id) -> Case:
    pk = case_or_id.pk if isinstance(case_or_id, Case) else case_or_id
    # of=("self",): lock the case row only, not the customer row the join reads.
    return Case.objects.select_for_update(of=("self",)).select_related("customer").get(pk=pk)


def _require(actor, role: str, what: str) -> None:
    # The system and customers (ActorKind values, None) hold no role.
    if not getattr(actor, "is_authenticated", False) or not has_role(actor, role):
        raise PermissionDenied(f"Only {role} staff can {what}.")


def _next_text(rung: int, deadline: datetime) -> str:
    after = {
        Rung.FIRST_NOTICE: "we will send a formal warning",
        Rung.WARNING: "your service may be suspended",
        Rung.SUSPENSION: "your contract may be terminated",
        Rung.TERMINATION: "",
    }.get(rung, "")
    if not after:
        return ""
    return f"If we receive further reports about your connection after {_when(deadline)}, {after}."


def _climb(case: Case, rung: int, *, policy: Policy, actor, reason: str, now: datetime) -> None:
    """Put a locked case on `rung`: audit, notice and provisioning rows, standing. One transaction."""
    old = case.rung
    # How many times this case reached this rung before: a fresh key per climb, the same key on a retry.
    times = CaseEvent.objects.filter(case=case, kind="rung", new=rung_key(rung)).count()
    case.rung = rung
    case.rung_at = now
    case.counted_from = now
    case.proposed_rung = None
    case.proposal_reason = ""
    deadline = now + timedelta(hours=policy.grace_hours)
    case.escalation_due_at = deadline if rung < Rung.TERMINATION else None
    fields = ["rung", "rung_at", "counted_from", "proposed_rung", "proposal_reason", "escalation_due_at"]
    if case.status == CaseStatus.OPEN:
        case.status = CaseStatus.WAITING
        fields.append("status")
        _event(
            case,
            "status",
            actor=actor,
            old=CaseStatus.OPEN,
            new=CaseStatus.WAITING,
            note="waiting on the customer",
            at=now,
        )
    _event(case, "rung", actor=actor, old=rung_key(old), new=rung_key(rung), note=reason, at=now)

    kind = RUNG_NOTICE[Rung(rung)]
    restriction = ""
    if rung == Rung.WARNING and case.category in (policy.restriction_categories or []):
        restriction = RESTRICTION_FOR.get(case.category, "")
    if restriction:
        kind = NoticeKind.RESTRICTION
        case.restricted = restriction
        fields.append("restricted")
        provisioning.request_provisioning(case, ProvisioningAction.RESTRICT, actor=actor, detail=restriction)
    elif rung == Rung.SUSPENSION:
        provisioning.request_provisioning(case, ProvisioningAction.SUSPEND, actor=actor)
    elif rung == Rung.TERMINATION:
        provisioning.request_provisioning(case, ProvisioningAction.TERMINATE, actor=actor)
    case.save(update_fields=[*fields, "updated_at"])
    notices.issue_notice(
        case,
        kind,
        key=f"case:{case.pk}:{rung_key(rung)}:{times + 1}",
        actor=actor,
        reason=reason,
        context={"next_step": _next_text(rung, deadline), "deadline": deadline, "restriction": restriction},
    )
    sync_standing(case.customer, actor=actor, reason=reason, case=case)


def sync_standing(customer: Customer, *, actor, reason: str = "", case: Case | None = None) -> None:
    """Derive the customer's standing from the ladder: the worst rung any case has reached.

    Suspension and termination stay with the customer after their case closes (until a manager
    reinstates); a restriction or a warning lasts while its case is open.
    """
    open_q = Q(status__in=OPEN_STATUSES)
    agg = Case.objects.filter(customer_id=customer.pk).aggregate(
        top=Max("rung"),
        top_open=Max("rung", filter=open_q),
        restricted=Count("pk", filter=open_q & ~Q(restricted="")),
    )
    top, top_open = agg["top"] or 0, agg["top_open"] or 0
    if top >= Rung.TERMINATION:
        standing = Standing.TERMINATED
    elif top >= Rung.SUSPENSION:
        standing = Standing.SUSPENDED
    elif agg["restricted"]:
        standing = Standing.RESTRICTED
    elif top_open >= Rung.WARNING:
        standing = Standing.WARNED
    else:
        standing = Standing.GOOD
    change_standing(
        customer,
        standing,
        actor=actor,
        actor_label=actor_label(actor),
        reason=reason,
        case_id=case.pk if case else None,
    )


def _apply(case: Case, step: Step, *, policy: Policy, actor, now: datetime) -> None:
    """Act on a step for a locked case: climb, propose to a NOC member, or ask a manager."""
    due = None if step.ready else step.due_at
    if step.ready and step.rung is not None:
        approval = case.approvals.filter(status__in=[ApprovalStatus.PENDING, ApprovalStatus.SCHEDULED]).first()
        if approval is not None and approval.status == ApprovalStatus.SCHEDULED:
            approval.status = ApprovalStatus.DONE
            approval.carried_out_at = now
            approval.save(update_fields=["status", "carried_out_at"])
            _climb(case, approval.rung, policy=policy, actor=actor, reason=approval.reason, now=now)
            return
        if approval is not None:
            pass  # waiting for a manager: nothing to do
        elif step.mode == StepMode.AUTO:
            _climb(case, step.rung, policy=policy, actor=actor, reason=step.reason, now=now)
            return
        elif step.mode == StepMode.NOC:
            if case.proposed_rung != step.rung:
                case.proposed_rung = step.rung
                case.proposal_reason = step.reason[:500]
                case.save(update_fields=["proposed_rung", "proposal_reason", "updated_at"])
                _event(case, "proposed", actor=actor, new=rung_key(step.rung), note=step.reason, at=now)
        else:
            Approval.objects.create(case=case, rung=step.rung, reason=step.reason[:500], proposed_at=now)
            _event(case, "approval_requested", actor=actor, new=rung_key(step.rung), note=step.reason, at=now)
    if case.escalation_due_at != due:
        case.escalation_due_at = due
        case.save(update_fields=["escalation_due_at", "updated_at"])


def _expire_hold(case: Case, *, actor, now: datetime) -> None:
    if case.hold_until and case.hold_until <= now:
        _event(case, "hold_expired", actor=actor, old=case.hold_until.isoformat()[:64], note=case.hold_reason)
        case.hold_until = None
        case.hold_reason = ""
        case.save(update_fields=["hold_until", "hold_reason", "updated_at"])


def _evaluate_locked(case: Case, *, actor, now: datetime, facts: CaseFacts | None = None) -> Step:
    _expire_hold(case, actor=actor, now=now)
    if facts is not None:
        facts = replace(facts, hold_until=case.hold_until, hold_reason=case.hold_reason)
    policy = policy_for(case.customer.kind)
    step = next_step(facts or load_facts([case], now)[case.pk], policy, now)
    _apply(case, step, policy=policy, actor=actor, now=now)
    return step


@transaction.atomic
def evaluate_case(case_id: int, *, actor=None, now: datetime | None = None) -> Step:
    """Re-evaluate one case and act on the answer. Safe to run twice: the case row is locked and
    the answer recomputed inside the lock, so a second run sees the rung the first one reached."""
    now = now or timezone.now()
    if connection.vendor == "postgresql":
        case, facts = _lock_with_facts_postgresql(case_id, now)
        return _evaluate_locked(case, actor=actor, now=now, facts=facts)
    return _evaluate_locked(_lock(case_id), actor=actor, now=now)


# Up to this many cases, evaluate_cases reads each one's facts with the prepared statement (PostgreSQL).
FEW_CASES = 5


def evaluate_cases(case_ids: Iterable[int], *, now: datetime | None = None, chunk: int = 1000) -> int:
    """Re-evaluate many cases: facts in bulk, a locked transaction only where something is to be done.

    Returns how many cases were acted on. Used after filing and by the beat.
    """
    now = now or timezone.now()
    ids = sorted(set(case_ids))
    if len(ids) == 1 or (connection.vendor == "postgresql" and len(ids) <= FEW_CASES):
        # A worker that took two or three waiting messages files them together: one prepared
        # statement per case costs less than the bulk pass's five queries built by the ORM.
        return sum(_evaluate_one(case_id, now) for case_id in ids)
    acted = 0
    for start in range(0, len(ids), chunk):
        batch = list(Case.objects.select_related("customer").filter(pk__in=ids[start : start + chunk]))
        facts = load_facts(batch, now)
        quiet: list[Case] = []
        for case in batch:
            step = next_step(facts[case.pk], policy_for(case.customer.kind), now)
            if _must_act(case, step, now):
                try:
                    evaluate_case(case.pk, now=now)
                except Exception:  # one bad case must not stop the batch; the next run tries again
                    log.exception("could not evaluate case %s", case.pk)
                    continue
                acted += 1
            elif case.escalation_due_at != (None if step.ready else step.due_at):
                case.escalation_due_at = None if step.ready else step.due_at
                quiet.append(case)
        # Most quiet cases wait for reports (no due time): one UPDATE for them, bulk_update's
        # CASE expression only for the few with a time of their own.
        cleared = [c.pk for c in quiet if c.escalation_due_at is None]
        if cleared:
            Case.objects.filter(pk__in=cleared).update(escalation_due_at=None)
        timed = [c for c in quiet if c.escalation_due_at is not None]
        if timed:
            Case.objects.bulk_update(timed, ["escalation_due_at"], batch_size=1000)
    return acted


def _must_act(case: Case, step: Step, now: datetime) -> bool:
    """Whether a case's step needs the locked evaluation: a hold ran out, a rung to climb or to ask a
    manager for, a new proposal for a NOC member. Otherwise at most its due time changes."""
    hold_over = case.hold_until is not None and case.hold_until <= now
    proposal_changed = step.ready and step.mode == StepMode.NOC and case.proposed_rung != step.rung
    return hold_over or (step.ready and step.mode != StepMode.NOC) or proposal_changed


def _evaluate_one(case_id: int, now: datetime) -> int:
    """Mail filed one message at a time touches one case. On PostgreSQL its facts are read in one
    statement, without a lock (and so without a transaction of its own); the locked evaluation
    (which reads them again, under the lock) runs only when there is something to do, as in
    evaluate_cases' bulk pass. Returns 1 when the case was acted on (on PostgreSQL: the locked
    evaluation ran, as the bulk pass counts)."""
    try:
        if connection.vendor == "postgresql":
            case, facts = _case_with_facts_postgresql(case_id, now, lock=False)
            step = next_step(facts, policy_for(case.customer.kind), now)
            if not _must_act(case, step, now):
                due = None if step.ready else step.due_at
                if case.escalation_due_at != due:
                    Case.objects.filter(pk=case_id).update(escalation_due_at=due)
                return 0
            evaluate_case(case_id, now=now)
            return 1
        # Elsewhere the locked evaluation is the only read: a step ready to go counts.
        return int(evaluate_case(case_id, now=now).ready)
    except Exception:  # as in the bulk pass: the next run tries again
        log.exception("could not evaluate case %s", case_id)
        return 0


def reevaluate_open_cases(*, now: datetime | None = None, only_due: bool = True, chunk: int = 1000) -> int:
    """The beat's pass: open cases whose grace period, hold or scheduled step has come due.

    only_due=False looks at every open case (after a policy change). Returns the cases acted on.
    """
    now = now or timezone.now()
    qs = Case.objects.open()
    if only_due:
        qs = qs.filter(escalation_due_at__lte=now)  # case_escalation_due_idx
    acted = 0
    last = 0
    while True:
        ids = list(qs.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:chunk])
        if not ids:
            return acted
        acted += evaluate_cases(ids, now=now, chunk=chunk)
        last = ids[-1]


# --- people's actions ------------------------------------------------------------------------------


@transaction.atomic
def send_proposed_step(case: Case, *, actor) -> Case:
    """A NOC member confirms the notice the ladder proposed (business customers' first notice)."""
    _require(actor, NOC, "send a proposed notice")
    case = _lock(case)
    if case.proposed_rung is None:
        raise TransitionError("There is no proposed notice on this case.")
    now = timezone.now()
    policy = policy_for(case.customer.kind, fresh=True)
    step = next_step(load_facts([case], now)[case.pk], policy, now)
    if step.rung != case.proposed_rung or not step.ready:
        raise TransitionError(f"The proposal is out of date: {step.reason}")
    reason = f"{case.proposal_reason} Confirmed by {actor.get_username()}."
    _climb(case, case.proposed_rung, policy=policy, actor=actor, reason=reason, now=now)
    return case


@transaction.atomic
def propose_step(case: Case, rung: int, *, actor, reason: str) -> Approval:
    """A NOC member asks a manager for a suspension (from a warning) or a termination (from a suspension)."""
    _require(actor, NOC, "propose a suspension or termination")
    reason = (reason or "").strip()
    if not reason:
        raise TransitionError("Say why.")
    case = _lock(case)
    if not case.is_open:
        raise TransitionError("The case is closed.")
    if rung not in MANAGER_RUNGS or NEXT_RUNG.get(Rung(case.rung)) != rung:
        raise TransitionError(
            f"From {Rung(case.rung).label.lower()} the next rung is not {Rung(rung).label.lower()}: "
            "a suspension is proposed from a warning, a termination from a suspension."
        )
    if case.approvals.open().exists():
        raise TransitionError("A proposal for this case is already waiting.")
    approval = Approval.objects.create(case=case, rung=rung, reason=reason[:500], proposed_by=actor)
    _event(case, "approval_requested", actor=actor, new=rung_key(rung), note=reason)
    return approval


def _lock_approval(approval: Approval) -> tuple[Approval, Case]:
    case = _lock(approval.case_id)
    return Approval.objects.select_for_update().get(pk=approval.pk), case


@transaction.atomic
def approve(
    approval: Approval, *, actor, reason: str, scheduled_for: datetime | None = None, now: datetime | None = None
) -> Approval:
    """A manager approves a suspension or termination: at once, or scheduled ("at T unless fixed")."""
    _require(actor, MANAGER, "approve a suspension or termination")
    reason = (reason or "").strip()
    if not reason:
        raise TransitionError("Approving takes a reason.")
    approval, case = _lock_approval(approval)
    if approval.status != ApprovalStatus.PENDING:
        raise TransitionError(f"This proposal is already {approval.get_status_display().lower()}.")
    if not case.is_open:
        raise TransitionError("The case is closed.")
    now = now or timezone.now()
    if scheduled_for is not None and timezone.is_naive(scheduled_for):
        raise TransitionError("The scheduled time needs a time zone.")
    approval.decided_by = actor
    approval.decided_at = now
    approval.decision_reason = reason
    policy = policy_for(case.customer.kind, fresh=True)
    if scheduled_for is not None and scheduled_for > now:
        approval.status = ApprovalStatus.SCHEDULED
        approval.scheduled_for = scheduled_for
        approval.save()
        case.escalation_due_at = scheduled_for
        case.save(update_fields=["escalation_due_at", "updated_at"])
        _event(
            case, "approved", actor=actor, old="pending", new="scheduled", note=f"{reason} (at {_when(scheduled_for)})"
        )
        notices.issue_notice(
            case,
            RUNG_NOTICE[Rung(approval.rung)],
            key=f"case:{case.pk}:scheduled:{approval.pk}",
            actor=actor,
            reason=reason,
            context={
                "scheduled_for": scheduled_for,
                "deadline": scheduled_for,
                "next_step": f"Unless the problem is fixed before {_when(scheduled_for)}, "
                f"we will carry out the {Rung(approval.rung).label.lower()} then.",
            },
        )
        return approval
    approval.status = ApprovalStatus.DONE
    approval.carried_out_at = now
    approval.save()
    _event(case, "approved", actor=actor, old="pending", new="done", note=reason, at=now)
    _climb(case, approval.rung, policy=policy, actor=actor, reason=f"{approval.reason} Approved: {reason}", now=now)
    return approval


@transaction.atomic
def refuse(approval: Approval, *, actor, reason: str) -> Approval:
    """A manager refuses a proposal. Reports so far no longer count toward it."""
    _require(actor, MANAGER, "refuse a suspension or termination")
    reason = (reason or "").strip()
    if not reason:
        raise TransitionError("Refusing takes a reason.")
    approval, case = _lock_approval(approval)
    if approval.status != ApprovalStatus.PENDING:
        raise TransitionError(f"This proposal is already {approval.get_status_display().lower()}.")
    now = timezone.now()
    approval.status = ApprovalStatus.REFUSED
    approval.decided_by = actor
    approval.decided_at = now
    approval.decision_reason = reason
    approval.save()
    case.counted_from = now
    case.escalation_due_at = None
    case.save(update_fields=["counted_from", "escalation_due_at", "updated_at"])
    _event(case, "refused", actor=actor, old="pending", new="refused", note=reason)
    return approval


@transaction.atomic
def cancel_scheduled(case: Case, *, actor, reason: str) -> Approval:
    """Cancel an approved step before its time: a customer's reply, or a NOC member."""
    if actor != ActorKind.CUSTOMER:
        _require(actor, NOC, "cancel a scheduled step")
    case = _lock(case)
    approval = case.approvals.select_for_update().filter(status=ApprovalStatus.SCHEDULED).first()
    if approval is None:
        raise TransitionError("Nothing is scheduled on this case.")
    now = timezone.now()
    approval.status = ApprovalStatus.CANCELLED
    approval.decision_reason = f"{approval.decision_reason}\nCancelled: {reason}".strip()
    approval.save(update_fields=["status", "decision_reason"])
    case.counted_from = now
    case.escalation_due_at = None
    case.save(update_fields=["counted_from", "escalation_due_at", "updated_at"])
    _event(case, "approval_cancelled", actor=actor, old="scheduled", new="cancelled", note=reason)
    return approval


@transaction.atomic
def reinstate(case: Case, *, actor, reason: str, now: datetime | None = None) -> Case:
    """A manager reinstates a suspended customer: back to a warning, on probation."""
    _require(actor, MANAGER, "reinstate a customer")
    reason = (reason or "").strip()
    if not reason:
        raise TransitionError("Reinstating takes a reason.")
    case = _lock(case)
    if case.rung != Rung.SUSPENSION:
        raise TransitionError("Only a suspended case can be reinstated.")
    now = now or timezone.now()
    times = CaseEvent.objects.filter(case=case, kind="reinstated").count()
    case.rung = Rung.WARNING
    case.rung_at = now
    case.counted_from = now
    fields = ["rung", "rung_at", "counted_from"]
    if case.restricted:
        provisioning.request_provisioning(case, ProvisioningAction.UNRESTRICT, actor=actor, detail=case.restricted)
        case.restricted = ""
        fields.append("restricted")
    case.save(update_fields=[*fields, "updated_at"])
    _event(
        case, "reinstated", actor=actor, old=rung_key(Rung.SUSPENSION), new=rung_key(Rung.WARNING), note=reason, at=now
    )
    provisioning.request_provisioning(case, ProvisioningAction.REINSTATE, actor=actor)
    policy = policy_for(case.customer.kind, fresh=True)
    notices.issue_notice(
        case,
        NoticeKind.REINSTATEMENT,
        key=f"case:{case.pk}:reinstatement:{times + 1}",
        actor=actor,
        reason=reason,
        context={
            "next_step": f"Your service is restored. For the next {policy.probation_days} days, "
            "any further report may lead to termination.",
        },
    )
    sync_standing(case.customer, actor=actor, reason=reason, case=case)
    return case


@transaction.atomic
def hold_case(case: Case, *, until: datetime, reason: str, actor) -> Case:
    """Stop escalation until a date (the customer is working on it, a known false alarm)."""
    _require(actor, NOC, "hold a case")
    reason = (reason or "").strip()
    if not reason:
        raise TransitionError("A hold takes a reason.")
    if until is None or timezone.is_naive(until):
        raise TransitionError("A hold needs an end date with a time zone.")
    now = timezone.now()
    if until <= now:
        raise TransitionError("The hold must end in the future.")
    if until > now + timedelta(days=366):
        raise TransitionError("A hold can last a year at most.")
    case = _lock(case)
    if not case.is_open:
        raise TransitionError("The case is closed.")
    case.hold_until = until
    case.hold_reason = reason[:500]
    case.escalation_due_at = until
    case.save(update_fields=["hold_until", "hold_reason", "escalation_due_at", "updated_at"])
    _event(case, "hold", actor=actor, new=until.isoformat()[:64], note=reason)
    return case


@transaction.atomic
def release_hold(case: Case, *, actor) -> Case:
    _require(actor, NOC, "release a hold")
    case = _lock(case)
    if case.hold_until is None:
        raise TransitionError("The case is not on hold.")
    _event(case, "hold_released", actor=actor, old=case.hold_until.isoformat()[:64])
    case.hold_until = None
    case.hold_reason = ""
    case.save(update_fields=["hold_until", "hold_reason", "updated_at"])
    _evaluate_locked(case, actor=actor, now=timezone.now())
    return case


@transaction.atomic
def de_escalate(case: Case, *, actor, reason: str) -> Case:
    """One rung down (a warning sent in error, a fixed problem). Suspensions need reinstate()."""
    _require(actor, NOC, "de-escalate a case")
    reason = (reason or "").strip()
    if not reason:
        raise TransitionError("De-escalating takes a reason.")
    case = _lock(case)
    if case.rung not in (Rung.FIRST_NOTICE, Rung.WARNING):
        raise TransitionError(
            "Only a first notice or a warning can be stepped down; a suspension is lifted by a manager's reinstatement."
        )
    old = case.rung
    case.rung = Rung.FIRST_NOTICE if old == Rung.WARNING else Rung.NONE
    now = timezone.now()
    case.rung_at = now
    case.counted_from = now
    case.proposed_rung = None
    case.proposal_reason = ""
    case.escalation_due_at = None
    fields = ["rung", "rung_at", "counted_from", "proposed_rung", "proposal_reason", "escalation_due_at"]
    if case.restricted:
        provisioning.request_provisioning(case, ProvisioningAction.UNRESTRICT, actor=actor, detail=case.restricted)
        case.restricted = ""
        fields.append("restricted")
    case.save(update_fields=[*fields, "updated_at"])
    _event(case, "de_escalated", actor=actor, old=rung_key(old), new=rung_key(case.rung), note=reason)
    sync_standing(case.customer, actor=actor, reason=reason, case=case)
    return case


def _lock_report(report: Report) -> tuple[Report, Case]:
    if report.case_id is None:
        raise TransitionError("The report is not on a case.")
    case = _lock(report.case_id)
    return Report.objects.select_for_update().get(pk=report.pk), case


@transaction.atomic
def confirm_report(report: Report, *, actor) -> Report:
    """A NOC member vouches for a complaint from an unknown reporter: it now counts."""
    _require(actor, NOC, "confirm a report")
    report, case = _lock_report(report)
    if report.rejected_at:
        raise TransitionError("The report was rejected as false.")
    if not report.needs_confirmation or report.confirmed_at:
        raise TransitionError("The report already counts.")
    report.confirmed_by = actor
    report.confirmed_at = timezone.now()
    report.save(update_fields=["confirmed_by", "confirmed_at"])
    _event(case, "report_confirmed", actor=actor, new=str(report.pk), report=report)
    _evaluate_locked(case, actor=actor, now=timezone.now())
    return report


@transaction.atomic
def reject_report(report: Report, *, actor, reason: str) -> Report:
    """A NOC member marks a report false: it stays on file and never counts."""
    _require(actor, NOC, "reject a report")
    reason = (reason or "").strip()
    if not reason:
        raise TransitionError("Rejecting a report takes a reason.")
    report, case = _lock_report(report)
    if report.rejected_at:
        raise TransitionError("The report is already rejected.")
    report.rejected_at = timezone.now()
    report.rejected_reason = reason[:500]
    report.save(update_fields=["rejected_at", "rejected_reason"])
    _event(case, "report_rejected", actor=actor, new=str(report.pk), note=reason, report=report)
    return report


@transaction.atomic
def merge_cases(source: Case, target: Case, *, actor, reason: str) -> Case:
    """Fold source into target (one customer, one problem filed twice). Source closes, pointing at target."""
    _require(actor, NOC, "merge cases")
    if source.pk == target.pk:
        raise TransitionError("A case cannot be merged into itself.")
    first, second = sorted([source.pk, target.pk])
    locked = {c.pk: c for c in (_lock(first), _lock(second))}
    source, target = locked[source.pk], locked[target.pk]
    if source.customer_id != target.customer_id:
        raise TransitionError("Only cases of the same customer can be merged.")
    if not (source.is_open and target.is_open):
        raise TransitionError("Both cases must be open.")
    now = timezone.now()
    moved = Report.objects.filter(case=source).update(case=target)
    target.report_count += source.report_count
    target.duplicate_count += source.duplicate_count
    target.first_report_at = min(target.first_report_at, source.first_report_at)
    target.last_report_at = max(target.last_report_at, source.last_report_at)
    fields = ["report_count", "duplicate_count", "first_report_at", "last_report_at"]
    if source.rung > target.rung:
        target.rung, target.rung_at, target.counted_from = source.rung, source.rung_at, source.counted_from
        fields += ["rung", "rung_at", "counted_from"]
    if source.restricted and not target.restricted:
        target.restricted = source.restricted
        fields.append("restricted")
    target.save(update_fields=[*fields, "updated_at"])
    _cancel_open_approvals(source, actor=actor, why=f"case merged into {target.reference}")
    old_status = source.status
    source.status = CaseStatus.RESOLVED
    source.closed_at = now
    source.merged_into = target
    source.escalation_due_at = None
    source.save(update_fields=["status", "closed_at", "merged_into", "escalation_due_at", "updated_at"])
    _event(
        source, "status", actor=actor, old=old_status, new=CaseStatus.RESOLVED, note=f"merged into {target.reference}"
    )
    _event(source, "merged_into", actor=actor, new=str(target.pk), note=reason)
    _event(target, "merged_from", actor=actor, new=str(source.pk), note=f"{_plural(moved, 'report')} moved. {reason}")
    _evaluate_locked(target, actor=actor, now=now)
    return target


def _cancel_open_approvals(case: Case, *, actor, why: str) -> None:
    """What waited on a case that closes or merges away is cancelled, each with its audit row."""
    for approval in case.approvals.open().select_for_update():
        old = approval.status
        approval.status = ApprovalStatus.CANCELLED
        approval.decision_reason = f"{approval.decision_reason}\nCancelled: {why}".strip()
        approval.save(update_fields=["status", "decision_reason"])
        _event(case, "approval_cancelled", actor=actor, old=old, new=ApprovalStatus.CANCELLED, note=why)


def on_case_closed(case: Case, *, actor) -> None:
    """Called (inside the transaction) when a case is resolved or rejected: lift its restriction,
    drop what was waiting, and let the standing follow."""
    fields = []
    if case.restricted:
        provisioning.request_provisioning(case, ProvisioningAction.UNRESTRICT, actor=actor, detail=case.restricted)
        case.restricted = ""
        fields.append("restricted")
    if case.escalation_due_at or case.proposed_rung is not None:
        case.escalation_due_at = None
        case.proposed_rung = None
        fields += ["escalation_due_at", "proposed_rung"]
    if fields:
        case.save(update_fields=[*fields, "updated_at"])
    _cancel_open_approvals(case, actor=actor, why="the case was closed")
    sync_standing(case.customer, actor=actor, reason=f"{case.reference} closed", case=case)


# --- policy ----------------------------------------------------------------------------------------


POLICY_FIELDS = [
    f.name for f in Policy._meta.concrete_fields if f.name not in ("id", "customer_kind", "updated_at") and f.editable
]


@transaction.atomic
def update_policy(policy: Policy, changes: dict, *, actor) -> Policy:
    """An admin changes a policy: validated (one report never suspends), audited field by field."""
    _require(actor, ADMIN, "change the escalation policy")
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown policy fields: {', '.join(sorted(unknown))}")
    created = policy.pk is None
    if not created:
        policy = Policy.objects.select_for_update().get(pk=policy.pk)
    before = {name: getattr(policy, name) for name in POLICY_FIELDS}
    for name, value in changes.items():
        setattr(policy, name, value)
    policy.full_clean(validate_unique=False)
    diff = {
        name: [before[name], getattr(policy, name)] for name in POLICY_FIELDS if before[name] != getattr(policy, name)
    }
    policy.save()
    if diff or created:
        PolicyChange.objects.create(policy=policy, actor=actor, changes=diff)
    _forget_policies()
    return policy


# --- who may do what --------------------------------------------------------------------------------


def allowed_actions(case: Case, user) -> set[str]:
    """The ladder actions this user may take on this case now (the case page shows these)."""
    actions: set[str] = set()
    if not has_role(user, NOC):
        return actions
    manager = has_role(user, MANAGER)
    open_approval = next(
        (a for a in case.approvals.all() if a.status in (ApprovalStatus.PENDING, ApprovalStatus.SCHEDULED)), None
    )
    if case.is_open:
        actions |= {"hold", "merge", "confirm_report", "reject_report"}
        if case.hold_until:
            actions.add("release_hold")
        if case.proposed_rung is not None:
            actions.add("send_proposed")
        if open_approval is None and NEXT_RUNG.get(Rung(case.rung)) in MANAGER_RUNGS and case.rung >= Rung.WARNING:
            actions.add("propose")
        if case.rung in (Rung.FIRST_NOTICE, Rung.WARNING):
            actions.add("de_escalate")
        if open_approval is not None and open_approval.status == ApprovalStatus.SCHEDULED:
            actions.add("cancel_scheduled")
        if manager and open_approval is not None and open_approval.status == ApprovalStatus.PENDING:
            actions |= {"approve", "refuse"}
    if manager and case.rung == Rung.SUSPENSION:
        actions.add("reinstate")
    return actions
