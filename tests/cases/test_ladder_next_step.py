"""next_step() over a table of histories: a pure function, so no database and a fixed clock."""

from __future__ import annotations

import copy
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from cases.models import Policy, Rung, StepMode
from cases.services.ladder import CaseFacts, OpenApproval, ReportFact, next_step

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)

RES = Policy.default_for("residential")
BIZ = Policy.default_for("business")


def feed(at: datetime, reporter: str = "fbl@mail.example") -> ReportFact:
    return ReportFact(at, reporter, trusted=True)


def person(at: datetime, reporter: str) -> ReportFact:
    return ReportFact(at, reporter, trusted=False)


def facts(rung: int = Rung.NONE, *reports: ReportFact, kind: str = "residential", **kw) -> CaseFacts:
    since = kw.pop("since", None)
    return CaseFacts(
        status=kw.pop("status", "open"),
        rung=rung,
        customer_kind=kind,
        category="spam",
        rung_at=since,
        counted_from=since,
        reports=tuple(reports),
        **kw,
    )


# (name, facts, policy, expected rung, expected mode, ready, words the reason must hold)
TABLE = [
    (
        "first report, residential: automatic first notice",
        facts(Rung.NONE, feed(NOW - H)),
        RES,
        Rung.FIRST_NOTICE,
        StepMode.AUTO,
        True,
        "1 report from 1 reporter",
    ),
    (
        "first report, business: a NOC member confirms",
        facts(Rung.NONE, feed(NOW - H), kind="business"),
        BIZ,
        Rung.FIRST_NOTICE,
        StepMode.NOC,
        True,
        "1 report",
    ),
    (
        "an unknown individual's complaint waits for confirmation",
        facts(Rung.NONE, person(NOW - H, "joe@home.example")),
        RES,
        Rung.FIRST_NOTICE,
        StepMode.AUTO,
        False,
        "wait for confirmation",
    ),
    (
        "complaints from two distinct people count",
        facts(Rung.NONE, person(NOW - 2 * H, "joe@home.example"), person(NOW - H, "ann@else.example")),
        RES,
        Rung.FIRST_NOTICE,
        StepMode.AUTO,
        True,
        "2 reports from 2 reporters",
    ),
    (
        "the same person twice is still one voice",
        facts(Rung.NONE, person(NOW - 2 * H, "joe@home.example"), person(NOW - H, "JOE@home.example")),
        RES,
        Rung.FIRST_NOTICE,
        StepMode.AUTO,
        False,
        "2 reports from unknown reporters",
    ),
    (
        "further report inside the grace period: wait for it to end",
        facts(Rung.FIRST_NOTICE, feed(NOW - 30 * H), feed(NOW - H), since=NOW - 40 * H),
        RES,
        Rung.WARNING,
        StepMode.AUTO,
        False,
        "Grace period",
    ),
    (
        "further report after the 72 h grace: automatic warning",
        facts(
            Rung.FIRST_NOTICE,
            feed(NOW - 100 * H),
            feed(NOW - H, "other@fbl.example"),
            feed(NOW - 2 * H),
            since=NOW - 100 * H,
        ),
        RES,
        Rung.WARNING,
        StepMode.AUTO,
        True,
        "2 further reports from 2 reporters since the first notice 4 days ago",
    ),
    (
        "business: the same report is still inside its 120 h grace",
        facts(Rung.FIRST_NOTICE, feed(NOW - H), since=NOW - 100 * H, kind="business"),
        BIZ,
        Rung.WARNING,
        StepMode.AUTO,
        False,
        "Grace period",
    ),
    (
        "no further report after the grace period: nothing to do",
        facts(Rung.FIRST_NOTICE, feed(NOW - 100 * H), since=NOW - 100 * H),
        RES,
        Rung.WARNING,
        StepMode.AUTO,
        False,
        "0 of 1 further report",
    ),
    (
        "further report after the warning's grace: a manager is asked for a suspension",
        facts(Rung.WARNING, feed(NOW - H), since=NOW - 80 * H),
        RES,
        Rung.SUSPENSION,
        StepMode.MANAGER,
        True,
        "since the warning",
    ),
    (
        "after a suspension, further reports propose termination to a manager",
        facts(Rung.SUSPENSION, feed(NOW - H), since=NOW - 80 * H),
        RES,
        Rung.TERMINATION,
        StepMode.MANAGER,
        True,
        "since the suspension",
    ),
    (
        "repeat offender: an earlier notice 10 days ago starts at a warning",
        facts(Rung.NONE, feed(NOW - H), earlier_notice_at=NOW - 10 * D),
        RES,
        Rung.WARNING,
        StepMode.AUTO,
        True,
        "Repeat offender",
    ),
    (
        "an earlier notice 40 days ago is outside the repeat window",
        facts(Rung.NONE, feed(NOW - H), earlier_notice_at=NOW - 40 * D),
        RES,
        Rung.FIRST_NOTICE,
        StepMode.AUTO,
        True,
        "1 report",
    ),
    (
        "probation: a report within 90 days of a reinstatement proposes termination",
        facts(Rung.WARNING, feed(NOW - H), since=NOW - 20 * D, reinstated_at=NOW - 20 * D),
        RES,
        Rung.TERMINATION,
        StepMode.MANAGER,
        True,
        "probation",
    ),
    (
        "probation over after 90 days: the ordinary ladder again",
        facts(Rung.NONE, feed(NOW - H), reinstated_at=NOW - 100 * D),
        RES,
        Rung.FIRST_NOTICE,
        StepMode.AUTO,
        True,
        "1 report",
    ),
    (
        "on hold: nothing until the hold ends",
        facts(Rung.FIRST_NOTICE, feed(NOW - H), since=NOW - 100 * H, hold_until=NOW + D, hold_reason="customer fixing"),
        RES,
        None,
        None,
        False,
        "On hold until 2026-12-01 12:00 UTC: customer fixing",
    ),
    (
        "a hold that ended no longer holds",
        facts(Rung.FIRST_NOTICE, feed(NOW - H), since=NOW - 100 * H, hold_until=NOW - H),
        RES,
        Rung.WARNING,
        StepMode.AUTO,
        True,
        "further report",
    ),
    (
        "a customer's reply waits for review",
        facts(Rung.FIRST_NOTICE, feed(NOW - H), since=NOW - 100 * H, awaiting_review=True),
        RES,
        None,
        None,
        False,
        "reviews the reply",
    ),
    (
        "a pending approval waits for the manager",
        facts(Rung.WARNING, feed(NOW - H), since=NOW - 80 * H, open_approval=OpenApproval(Rung.SUSPENSION, "pending")),
        RES,
        Rung.SUSPENSION,
        StepMode.MANAGER,
        False,
        "waits for a manager's decision",
    ),
    (
        "a scheduled suspension whose time has come is carried out",
        facts(Rung.WARNING, since=NOW - 80 * H, open_approval=OpenApproval(Rung.SUSPENSION, "scheduled", NOW - H)),
        RES,
        Rung.SUSPENSION,
        StepMode.MANAGER,
        True,
        "unless fixed",
    ),
    (
        "a scheduled suspension before its time waits",
        facts(Rung.WARNING, since=NOW - 80 * H, open_approval=OpenApproval(Rung.SUSPENSION, "scheduled", NOW + H)),
        RES,
        Rung.SUSPENSION,
        StepMode.MANAGER,
        False,
        "unless fixed",
    ),
    (
        "a rejected report never counts",
        facts(Rung.NONE, ReportFact(NOW - H, "fbl@mail.example", trusted=True, rejected=True)),
        RES,
        Rung.FIRST_NOTICE,
        StepMode.AUTO,
        False,
        "0 of 1",
    ),
    (
        "reports older than the window do not count",
        facts(Rung.NONE, feed(NOW - 40 * D)),
        RES,
        Rung.FIRST_NOTICE,
        StepMode.AUTO,
        False,
        "0 of 1",
    ),
    (
        "after a refusal, only reports since the refusal count",
        replace(facts(Rung.WARNING, feed(NOW - 5 * D), since=NOW - 10 * D), counted_from=NOW - 2 * D),
        RES,
        Rung.SUSPENSION,
        StepMode.MANAGER,
        False,
        "Grace period",
    ),
    (
        "de-escalated to no notice: a new report starts the ladder again",
        facts(Rung.NONE, feed(NOW - H), since=NOW - 2 * H),
        RES,
        Rung.FIRST_NOTICE,
        StepMode.AUTO,
        True,
        "1 report",
    ),
    (
        "a closed case has no next step",
        facts(Rung.WARNING, feed(NOW - H), status="resolved"),
        RES,
        None,
        None,
        False,
        "closed",
    ),
    (
        "termination is the last rung",
        facts(Rung.TERMINATION, feed(NOW - H), since=NOW - 10 * D),
        RES,
        None,
        None,
        False,
        "last rung",
    ),
]


@pytest.mark.parametrize(
    ("name", "case_facts", "policy", "rung", "mode", "ready", "words"), TABLE, ids=[row[0] for row in TABLE]
)
def test_next_step_over_a_table_of_histories(name, case_facts, policy, rung, mode, ready, words):
    step = next_step(case_facts, policy, NOW)
    assert step.rung == rung, step
    assert step.mode == mode, step
    assert step.ready is ready, step
    assert words in step.reason, step.reason


def test_the_grace_period_says_when_it_ends():
    step = next_step(facts(Rung.FIRST_NOTICE, feed(NOW - H), since=NOW - 10 * H), RES, NOW)
    assert step.due_at == NOW - 10 * H + timedelta(hours=72)
    biz = next_step(facts(Rung.FIRST_NOTICE, feed(NOW - H), since=NOW - 10 * H, kind="business"), BIZ, NOW)
    assert biz.due_at == NOW - 10 * H + timedelta(hours=120)


def test_suspension_needs_a_manager_under_any_policy():
    lax = copy.copy(RES)
    lax.warning_mode = lax.first_notice_mode = StepMode.AUTO
    step = next_step(facts(Rung.WARNING, feed(NOW - H), since=NOW - 100 * H), lax, NOW)
    assert (step.rung, step.mode) == (Rung.SUSPENSION, StepMode.MANAGER)


def _random_policy(rng: random.Random) -> Policy:
    return Policy(
        customer_kind=rng.choice(["residential", "business"]),
        window_days=rng.randint(0, 400),
        reports_for_first_notice=rng.randint(0, 5),
        reports_for_warning=rng.randint(0, 5),
        reports_for_suspension=rng.randint(0, 5),
        reports_for_termination=rng.randint(0, 5),
        grace_hours=rng.randint(0, 500),
        first_notice_mode=rng.choice(StepMode.values),
        warning_mode=rng.choice(StepMode.values),
        repeat_window_days=rng.randint(0, 400),
        probation_days=rng.randint(0, 400),
        distinct_reporters_to_count=rng.randint(0, 5),
    )


def test_one_report_never_suspends_anybody_under_any_policy():
    """Walk a case with a single report through time, climbing whenever the ladder says so,
    under 300 random policies (including zeros an admin might save): it never reaches suspension."""
    rng = random.Random(6)
    for _ in range(300):
        policy = _random_policy(rng)
        report_at = NOW - timedelta(hours=rng.randint(0, 2000))
        earlier = NOW - timedelta(days=rng.randint(0, 60)) if rng.random() < 0.5 else None
        case = facts(Rung.NONE, feed(report_at), earlier_notice_at=earlier)
        clock = report_at
        for _ in range(40):
            clock += timedelta(hours=rng.randint(1, 300))
            step = next_step(case, policy, clock)
            assert step.rung is None or step.rung < Rung.SUSPENSION or not step.ready, (policy.__dict__, step)
            if step.ready and step.rung is not None:
                case = replace(case, rung=step.rung, rung_at=clock, counted_from=clock)
