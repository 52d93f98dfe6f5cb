"""The ladder against the database: reports filed through the real intake climb the rungs,
people's actions go through the services with their checks, and every step leaves its audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from cases.models import (
    ActorKind,
    Approval,
    ApprovalStatus,
    Case,
    CaseEvent,
    CaseStatus,
    Notice,
    NoticeKind,
    Policy,
    PolicyChange,
    ProvisioningCall,
    Report,
    ReporterSource,
    Rung,
    StepMode,
    Trust,
)
from cases.services import ladder
from cases.services.common import TransitionError
from cases.services.filing import record_reports
from cases.services.workflow import change_case_status
from customers.models import Contact, Standing, StandingChange
from tests.cases.helpers import T0, customer_with, event
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

H = timedelta(hours=1)


@pytest.fixture(autouse=True)
def _no_dns(settings):
    # Enrichment's DNS timeout is measured on the clock these tests freeze: it would never run out.
    settings.ENRICHMENT_ENABLED = False


@pytest.fixture(autouse=True)
def _fresh_policies():
    ladder._forget_policies()
    yield
    ladder._forget_policies()


@pytest.fixture
def noc(db):
    return make_user("noc-l", "noc")


@pytest.fixture
def manager(db):
    return make_user("manager-l", "manager")


@pytest.fixture
def admin(db):
    return make_user("admin-l", "admin")


def _customer(kind: str = "residential", account: str = "R-500", network: str = "198.51.100.0/24"):
    customer = customer_with(network, account, kind=kind)
    Contact.objects.create(customer=customer, email=f"{account.lower()}@home.example")
    return customer


def _file(capture, *events, at=None):
    """File events as intake does and run what it queues after commit (the ladder, the sending)."""
    when = at or max(e.occurred_at for e in events) + timedelta(minutes=5)
    with time_machine.travel(when, tick=False), capture(execute=True):
        record_reports(list(events))


def _case(customer) -> Case:
    return Case.objects.get(customer=customer)


def test_a_first_report_sends_an_automatic_first_notice(django_capture_on_commit_callbacks):
    customer = _customer()
    _file(django_capture_on_commit_callbacks, event("198.51.100.7"))
    case = _case(customer)
    assert case.rung == Rung.FIRST_NOTICE
    assert case.status == CaseStatus.WAITING
    notice = Notice.objects.get(case=case)
    assert notice.kind == NoticeKind.FIRST_NOTICE
    assert notice.recipients == ["r-500@home.example"]
    assert case.events.filter(kind="rung", old="none", new="first_notice").exists()
    assert case.escalation_due_at == case.rung_at + timedelta(hours=72)


def test_evaluating_twice_writes_one_notice(django_capture_on_commit_callbacks):
    customer = _customer()
    _file(django_capture_on_commit_callbacks, event("198.51.100.7"))
    case = _case(customer)
    with django_capture_on_commit_callbacks(execute=True):
        ladder.evaluate_case(case.pk)
        ladder.evaluate_case(case.pk)
        ladder.evaluate_cases([case.pk])
    assert Notice.objects.filter(case=case).count() == 1
    assert case.events.filter(kind="rung").count() == 1


def test_a_business_first_notice_waits_for_a_noc_member(django_capture_on_commit_callbacks, noc, manager):
    customer = _customer("business", "B-900", "203.0.113.0/24")
    _file(django_capture_on_commit_callbacks, event("203.0.113.9"))
    case = _case(customer)
    assert case.rung == Rung.NONE
    assert case.proposed_rung == Rung.FIRST_NOTICE
    assert not Notice.objects.filter(case=case).exists()
    with django_capture_on_commit_callbacks(execute=True):
        ladder.send_proposed_step(case, actor=noc)
    case.refresh_from_db()
    assert case.rung == Rung.FIRST_NOTICE and case.proposed_rung is None
    assert Notice.objects.get(case=case).kind == NoticeKind.FIRST_NOTICE
    assert case.events.get(kind="rung").actor == noc


def test_further_reports_after_the_grace_period_bring_a_warning_then_a_suspension_proposal(
    django_capture_on_commit_callbacks, noc, manager
):
    customer = _customer()
    _file(django_capture_on_commit_callbacks, event("198.51.100.7", T0))
    # Inside the 72 h grace period: nothing more.
    _file(django_capture_on_commit_callbacks, event("198.51.100.7", T0 + 20 * H, reporter="b@fbl.example"))
    assert _case(customer).rung == Rung.FIRST_NOTICE
    # After it: an automatic warning.
    _file(django_capture_on_commit_callbacks, event("198.51.100.7", T0 + 80 * H, reporter="c@fbl.example"))
    case = _case(customer)
    assert case.rung == Rung.WARNING
    customer.refresh_from_db()
    assert customer.standing == Standing.WARNED
    assert StandingChange.objects.filter(customer=customer, old="good", new="warned").exists()
    # After the warning's grace period: a suspension is proposed, never carried out by itself.
    _file(django_capture_on_commit_callbacks, event("198.51.100.7", T0 + 160 * H, reporter="d@fbl.example"))
    case = _case(customer)
    assert case.rung == Rung.WARNING
    approval = Approval.objects.get(case=case)
    assert approval.status == ApprovalStatus.PENDING and approval.rung == Rung.SUSPENSION
    assert "further report" in approval.reason

    with pytest.raises(PermissionDenied):
        ladder.approve(approval, actor=noc, reason="looks bad")
    with pytest.raises(TransitionError):
        ladder.approve(approval, actor=manager, reason="  ")
    with django_capture_on_commit_callbacks(execute=True):
        ladder.approve(approval, actor=manager, reason="three reports after a warning")
    case.refresh_from_db()
    customer.refresh_from_db()
    assert case.rung == Rung.SUSPENSION
    assert customer.standing == Standing.SUSPENDED
    assert Notice.objects.filter(case=case, kind=NoticeKind.SUSPENSION).count() == 1
    call = ProvisioningCall.objects.get(case=case, action="suspend")
    assert call.status == "manual"  # no webhook URL in the tests' settings: to be done by hand
    assert case.events.filter(kind="approved", actor=manager).exists()


def test_a_refused_proposal_is_not_proposed_again_on_the_same_reports(manager, django_capture_on_commit_callbacks):
    customer = _customer()
    _file(django_capture_on_commit_callbacks, event("198.51.100.7", T0))
    _file(django_capture_on_commit_callbacks, event("198.51.100.7", T0 + 80 * H, reporter="c@fbl.example"))
    _file(django_capture_on_commit_callbacks, event("198.51.100.7", T0 + 160 * H, reporter="d@fbl.example"))
    approval = Approval.objects.get(case__customer=customer)
    with pytest.raises(TransitionError):
        ladder.refuse(approval, actor=manager, reason="")
    with time_machine.travel(T0 + 161 * H, tick=False):
        ladder.refuse(approval, actor=manager, reason="the customer called: fixed")
        ladder.evaluate_case(approval.case_id)
    assert Approval.objects.filter(case__customer=customer).count() == 1
    assert Approval.objects.get().status == ApprovalStatus.REFUSED


def test_a_scheduled_suspension_runs_at_its_time_unless_cancelled(manager, noc, django_capture_on_commit_callbacks):
    customer = _customer()
    for hours, who in ((0, "a"), (80, "b"), (160, "c")):
        _file(django_capture_on_commit_callbacks, event("198.51.100.7", T0 + hours * H, reporter=f"{who}@fbl.example"))
    approval = Approval.objects.get(case__customer=customer)
    when = T0 + 200 * H
    with time_machine.travel(T0 + 170 * H, tick=False), django_capture_on_commit_callbacks(execute=True):
        ladder.approve(approval, actor=manager, reason="unless fixed by Friday", scheduled_for=when)
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.SCHEDULED
    case = _case(customer)
    assert case.rung == Rung.WARNING and case.escalation_due_at == when
    assert Notice.objects.filter(case=case, kind=NoticeKind.SUSPENSION, key__contains="scheduled").exists()
    # Before T nothing happens; at T the beat carries it out.
    with django_capture_on_commit_callbacks(execute=True):
        assert ladder.reevaluate_open_cases(now=when - H) == 0
        assert ladder.reevaluate_open_cases(now=when + timedelta(minutes=1)) == 1
    case.refresh_from_db()
    approval.refresh_from_db()
    assert case.rung == Rung.SUSPENSION and approval.status == ApprovalStatus.DONE


def test_a_customer_reply_can_cancel_a_scheduled_suspension(manager, django_capture_on_commit_callbacks):
    customer = _customer()
    for hours, who in ((0, "a"), (80, "b"), (160, "c")):
        _file(django_capture_on_commit_callbacks, event("198.51.100.7", T0 + hours * H, reporter=f"{who}@fbl.example"))
    approval = Approval.objects.get(case__customer=customer)
    with time_machine.travel(T0 + 170 * H, tick=False):
        ladder.approve(approval, actor=manager, reason="unless fixed", scheduled_for=T0 + 200 * H)
        ladder.cancel_scheduled(approval.case, actor=ActorKind.CUSTOMER, reason="customer says fixed")
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.CANCELLED
    assert ladder.reevaluate_open_cases(now=T0 + 201 * H) == 0
    assert _case(customer).rung == Rung.WARNING
    assert CaseEvent.objects.filter(kind="approval_cancelled", actor_kind=ActorKind.CUSTOMER).exists()


def test_reinstatement_puts_the_customer_on_probation(manager, noc, django_capture_on_commit_callbacks):
    customer = _customer()
    for hours, who in ((0, "a"), (80, "b"), (160, "c")):
        _file(django_capture_on_commit_callbacks, event("198.51.100.7", T0 + hours * H, reporter=f"{who}@fbl.example"))
    approval = Approval.objects.get(case__customer=customer)
    with time_machine.travel(T0 + 170 * H, tick=False), django_capture_on_commit_callbacks(execute=True):
        ladder.approve(approval, actor=manager, reason="repeated spam")
    case = _case(customer)
    with pytest.raises(PermissionDenied):
        ladder.reinstate(case, actor=noc, reason="fixed")
    with time_machine.travel(T0 + 200 * H, tick=False), django_capture_on_commit_callbacks(execute=True):
        ladder.reinstate(case, actor=manager, reason="machine cleaned, customer called")
    case.refresh_from_db()
    customer.refresh_from_db()
    assert case.rung == Rung.WARNING
    assert customer.standing == Standing.WARNED
    assert Notice.objects.filter(case=case, kind=NoticeKind.REINSTATEMENT).exists()
    assert ProvisioningCall.objects.filter(case=case, action="reinstate").exists()
    # Probation: one further report proposes termination to a manager.
    _file(django_capture_on_commit_callbacks, event("198.51.100.7", T0 + 210 * H, reporter="e@fbl.example"))
    proposal = Approval.objects.get(case=case, status=ApprovalStatus.PENDING)
    assert proposal.rung == Rung.TERMINATION and "probation" in proposal.reason


def test_a_repeat_offender_starts_at_a_warning(django_capture_on_commit_callbacks, noc):
    customer = _customer()
    _file(django_capture_on_commit_callbacks, event("198.51.100.7", T0))
    first = _case(customer)
    change_case_status(first, CaseStatus.RESOLVED, actor=noc)
    _file(django_capture_on_commit_callbacks, event("198.51.100.7", T0 + 10 * 24 * H, category="botnet"))
    second = Case.objects.get(customer=customer, category="botnet")
    assert second.rung == Rung.WARNING
    assert "Repeat offender" in second.events.get(kind="rung").note


def test_an_unknown_persons_complaint_counts_once_confirmed(django_capture_on_commit_callbacks, noc):
    customer = _customer()
    complaint = event("198.51.100.7", T0, reporter="joe@home.example", format="freetext")
    _file(django_capture_on_commit_callbacks, complaint)
    case = _case(customer)
    report = Report.objects.get(case=case)
    assert report.needs_confirmation
    assert case.rung == Rung.NONE
    assert "wait for confirmation" in ladder.describe_case(case, now=T0 + H).reason
    with time_machine.travel(T0 + H, tick=False), django_capture_on_commit_callbacks(execute=True):
        ladder.confirm_report(report, actor=noc)
    case.refresh_from_db()
    assert case.rung == Rung.FIRST_NOTICE


def test_a_listed_reporter_source_decides_trust(django_capture_on_commit_callbacks):
    ReporterSource.objects.create(pattern="cert.example", trust=Trust.COUNTS, name="National CERT")
    ReporterSource.objects.create(pattern="noisy.example", trust=Trust.IGNORE)
    customer = _customer()
    _file(
        django_capture_on_commit_callbacks,
        event("198.51.100.7", T0, reporter="incident@team.cert.example", format="freetext"),
        event("198.51.100.8", T0, reporter="bot@noisy.example", format="arf"),
    )
    trusted = Report.objects.get(ip="198.51.100.7")
    ignored = Report.objects.get(ip="198.51.100.8")
    assert not trusted.needs_confirmation
    assert ignored.rejected_at is not None
    assert _case(customer).rung == Rung.FIRST_NOTICE


def test_a_hold_stops_escalation_until_it_ends(django_capture_on_commit_callbacks, noc):
    customer = _customer()
    _file(django_capture_on_commit_callbacks, event("198.51.100.7", T0))
    case = _case(customer)
    with time_machine.travel(T0 + H, tick=False):
        with pytest.raises(TransitionError):
            ladder.hold_case(case, until=T0, reason="past", actor=noc)
        ladder.hold_case(case, until=T0 + 200 * H, reason="customer rebuilding the server", actor=noc)
    _file(django_capture_on_commit_callbacks, event("198.51.100.7", T0 + 100 * H, reporter="b@fbl.example"))
    assert _case(customer).rung == Rung.FIRST_NOTICE
    with django_capture_on_commit_callbacks(execute=True):
        ladder.reevaluate_open_cases(now=T0 + 201 * H)
    case.refresh_from_db()
    assert case.hold_until is None
    assert case.rung == Rung.WARNING
    assert case.events.filter(kind="hold_expired").exists()


def test_de_escalation_steps_down_and_lifts_a_restriction(django_capture_on_commit_callbacks, noc, admin):
    ladder.update_policy(Policy.default_for("residential"), {"restriction_categories": ["spam"]}, actor=admin)
    customer = _customer()
    _file(django_capture_on_commit_callbacks, event("198.51.100.7", T0))
    _file(django_capture_on_commit_callbacks, event("198.51.100.7", T0 + 80 * H, reporter="b@fbl.example"))
    case = _case(customer)
    assert case.rung == Rung.WARNING and case.restricted == "port25"
    assert Notice.objects.filter(case=case, kind=NoticeKind.RESTRICTION).exists()
    customer.refresh_from_db()
    assert customer.standing == Standing.RESTRICTED
    with pytest.raises(TransitionError):
        ladder.de_escalate(case, actor=noc, reason="")
    ladder.de_escalate(case, actor=noc, reason="the warning went out on a false report")
    case.refresh_from_db()
    customer.refresh_from_db()
    assert case.rung == Rung.FIRST_NOTICE and case.restricted == ""
    assert customer.standing == Standing.GOOD
    assert list(ProvisioningCall.objects.filter(case=case).values_list("action", flat=True).order_by("pk")) == [
        "restrict",
        "unrestrict",
    ]


def test_resolving_a_case_lifts_its_restriction(django_capture_on_commit_callbacks, noc, admin):
    ladder.update_policy(Policy.default_for("residential"), {"restriction_categories": ["spam"]}, actor=admin)
    customer = _customer()
    _file(django_capture_on_commit_callbacks, event("198.51.100.7", T0))
    _file(django_capture_on_commit_callbacks, event("198.51.100.7", T0 + 80 * H, reporter="b@fbl.example"))
    change_case_status(_case(customer), CaseStatus.RESOLVED, actor=noc)
    customer.refresh_from_db()
    assert customer.standing == Standing.GOOD
    assert ProvisioningCall.objects.filter(action="unrestrict").exists()


def test_merging_moves_reports_and_keeps_the_higher_rung(django_capture_on_commit_callbacks, noc):
    customer = _customer()
    _file(django_capture_on_commit_callbacks, event("198.51.100.7", T0))
    _file(django_capture_on_commit_callbacks, event("198.51.100.7", T0 + H, category="botnet"))
    spam = Case.objects.get(customer=customer, category="spam")
    botnet = Case.objects.get(customer=customer, category="botnet")
    other = _customer(account="R-501", network="192.0.2.0/24")
    _file(django_capture_on_commit_callbacks, event("192.0.2.5", T0))
    with pytest.raises(TransitionError):
        ladder.merge_cases(spam, _case(other), actor=noc, reason="x")
    ladder.merge_cases(botnet, spam, actor=noc, reason="one infected machine")
    botnet.refresh_from_db()
    spam.refresh_from_db()
    assert botnet.status == CaseStatus.RESOLVED and botnet.merged_into == spam
    assert spam.reports.count() == 2 and spam.report_count == 2
    assert spam.events.filter(kind="merged_from").exists()


def test_nobody_but_a_manager_approves(noc, django_capture_on_commit_callbacks):
    customer = _customer()
    _file(django_capture_on_commit_callbacks, event("198.51.100.7", T0))
    case = _case(customer)
    case.rung = Rung.WARNING
    case.save()
    approval = ladder.propose_step(case, Rung.SUSPENSION, actor=noc, reason="customer ignores us")
    for who in (noc, ActorKind.CUSTOMER, None):
        with pytest.raises(PermissionDenied):
            ladder.approve(approval, actor=who, reason="x")
        with pytest.raises(PermissionDenied):
            ladder.refuse(approval, actor=who, reason="x")
    assert "approve" not in ladder.allowed_actions(case, noc)


def test_a_policy_change_is_audited_and_one_report_never_suspends(admin, noc):
    policy = Policy.default_for("residential")
    with pytest.raises(PermissionDenied):
        ladder.update_policy(policy, {"grace_hours": 1}, actor=noc)
    policy = ladder.update_policy(policy, {"grace_hours": 24, "warning_mode": StepMode.NOC}, actor=admin)
    change = PolicyChange.objects.get(policy=policy)
    assert change.actor == admin
    assert change.changes["grace_hours"] == [72, 24]
    with pytest.raises(ValidationError):
        ladder.update_policy(policy, {"reports_for_suspension": 0}, actor=admin)
    with pytest.raises(ValidationError):
        ladder.update_policy(policy, {"restriction_categories": ["not-a-category"]}, actor=admin)


def test_the_queue_of_due_cases_uses_the_due_time(django_capture_on_commit_callbacks):
    customer = _customer()
    _file(django_capture_on_commit_callbacks, event("198.51.100.7", T0))
    case = _case(customer)
    assert ladder.reevaluate_open_cases(now=case.escalation_due_at - H) == 0
    assert timezone.is_aware(case.escalation_due_at)
