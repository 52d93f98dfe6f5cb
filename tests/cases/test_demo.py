import pytest
from django.core.management import call_command

from cases.models import Case, InboundMessage, ParseStatus, Report


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
