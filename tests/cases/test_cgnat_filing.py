"""Reports about a CGNAT address: the source port finds the subscriber; without it the pool holds the case."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cases.models import Case, Notice, Report
from cases.services.filing import file_chunk, record_reports
from customers import services
from customers.models import AllocationSource, Contact, Customer
from customers.resolver import NO_PORT, no_block

from .helpers import T0, event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cgnat():
    pool = Customer.objects.create(account="ISP-CGNAT", name="CGNAT pool", kind="business")
    Contact.objects.create(customer=pool, email="noc@isp.example", receives_notices=False)
    line = Customer.objects.create(account="R-7", name="Line seven", kind="residential")
    Contact.objects.create(customer=line, email="line7@example.net")
    start = T0 - timedelta(days=1)
    services.create_allocation(customer=pool, network="198.51.100.128/28", valid_from=start, source="cgnat")
    services.create_allocation(
        customer=line, network="198.51.100.130/32", valid_from=start, ports=(4096, 8191), source="ports"
    )
    return pool, line


@pytest.mark.parametrize("filer", [record_reports, lambda events: file_chunk([(e, None) for e in events])])
def test_the_port_decides_and_without_it_the_pool_holds_the_case_with_the_reason(cgnat, filer):
    pool, line = cgnat
    filer(
        [
            event("198.51.100.130", port=5000, reporter="a@fbl.example"),
            event("198.51.100.130", reporter="b@fbl.example"),
            event("198.51.100.130", port=60000, reporter="c@fbl.example"),
        ]
    )
    by_reporter = {r.reporter: r for r in Report.objects.all()}
    subscriber = by_reporter["a@fbl.example"]
    assert subscriber.customer == line and subscriber.allocation.source == AllocationSource.PORT_BLOCK
    assert subscriber.resolution_note == "" and subscriber.port == 5000
    no_port, unheld = by_reporter["b@fbl.example"], by_reporter["c@fbl.example"]
    assert (no_port.customer, no_port.resolution_note) == (pool, NO_PORT)
    assert (unheld.customer, unheld.resolution_note) == (pool, no_block(60000))
    # The pool's reports wait for a NOC member: no notice goes to the ISP's own pool account.
    assert no_port.needs_confirmation and unheld.needs_confirmation and not subscriber.needs_confirmation
    assert Case.objects.get(customer=pool).report_count == 2
    assert not Notice.objects.filter(case__customer=pool).exists()
