import pytest
from django.core.management import call_command

from cases.models import (
    Approval,
    ApprovalStatus,
    Case,
    CustomerReply,
    InboundMessage,
    Notice,
    NoticeKind,
    NoticeStatus,
    ParseStatus,
    Report,
    Rung,
)
from customers.models import Customer


@pytest.mark.django_db
def test_seed_demo_fills_the_queue_through_the_real_intake(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", "--customers", "40", "--days", "10", "--password", "pw-demo-1")
    formats = set(InboundMessage.objects.values_list("format", flat=True))
    assert {"arf", "shadowserver"} <= formats
    assert InboundMessage.objects.filter(status=ParseStatus.UNPARSED).count() == 1
    assert Case.objects.open().count() >= 5
    # Every demo report lands on the customer who held its address at its time.
    for report in Report.objects.filter(customer__isnull=False).select_related("allocation")[:50]:
        alloc = report.allocation
        assert alloc.valid_from <= report.occurred_at and (
            alloc.valid_to is None or report.occurred_at < alloc.valid_to
        )


@pytest.mark.django_db
def test_seed_demo_shows_the_ladder_at_every_rung(django_capture_on_commit_callbacks, settings):
    settings.ENRICHMENT_ENABLED = False
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", "--customers", "60", "--days", "70", "--password", "pw-demo-1")
    rungs = set(Case.objects.values_list("rung", flat=True))
    assert {Rung.FIRST_NOTICE, Rung.WARNING, Rung.SUSPENSION, Rung.TERMINATION} <= rungs
    assert Approval.objects.filter(status=ApprovalStatus.PENDING, rung=Rung.SUSPENSION).exists()
    assert Approval.objects.filter(status=ApprovalStatus.SCHEDULED).exists()
    assert CustomerReply.objects.exists()
    assert Case.objects.filter(proposed_rung=Rung.FIRST_NOTICE, customer__kind="business").exists()
    assert Notice.objects.filter(status=NoticeStatus.SENT, kind=NoticeKind.REINSTATEMENT).exists()
    assert set(Customer.objects.values_list("standing", flat=True)) >= {"good", "warned", "suspended", "terminated"}
