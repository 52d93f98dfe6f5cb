"""import_allocations writes in batches: later rows see what earlier rows did, across and within
batches; a row that clashes with one earlier in the same batch is refused with the holder named;
audit rows are written for every created and changed allocation; a second run changes nothing."""

from __future__ import annotations

import pytest

from customers import imports
from customers.models import Allocation, AllocationChange, Contact, Customer
from tests.customers.test_imports import ALLOC_HEADER, run_command, utc, write

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_batches(monkeypatch):
    monkeypatch.setattr(imports, "ALLOCATION_BATCH_ROWS", 3)


def test_rows_depend_on_earlier_rows_in_and_across_batches(tmp_path):
    rows = [
        "C1,Alice,,alice@example.net,192.0.2.0/29,2024-01-01T00:00:00Z,",
        "C1,,,ALICE@example.net,,,",  # the same contact, other case: nothing new
        "C1,,,ops@example.net,,,",  # a second contact for a customer created in this batch
        "C1,Alice Ltd,business,,,,",  # next batch: renames the customer the first batch created
        "C1,,,,192.0.2.0/29,2024-01-01T00:00:00Z,2024-03-01T00:00:00Z",  # ends its allocation
        "C2,Bob,,,192.0.2.0/29,2024-02-01T00:00:00Z,",  # overlaps C1's until March: refused
        "C2,Bob,,,192.0.2.0/29,2024-03-01T00:00:00Z,",  # after it: allowed
        "C3,Carol,,,192.0.2.8/29,2024-01-01T00:00:00Z,",
        "C4,Dan,,,192.0.2.8/29,2024-01-01T00:00:00Z,",  # the same start as the row before: C3 holds it
    ]
    out, err = run_command("import_allocations", write(tmp_path, ALLOC_HEADER + "\n".join(rows) + "\n"))
    assert "created: 3\nupdated: 3\nunchanged: 1\nrejected: 2" in out, err
    assert "line 7: 192.0.2.0/29 is already allocated to C1 for an overlapping period" in err
    assert (
        "line 10: 192.0.2.0/29" not in err
        and "line 10: 192.0.2.8/29 from 2024-01-01T00:00:00+00:00 is already allocated to C3" in err
    )
    alice = Customer.objects.get(account="C1")
    assert (alice.name, alice.kind) == ("Alice Ltd", "business")
    assert sorted(alice.notice_recipients()) == ["alice@example.net", "ops@example.net"]
    assert Allocation.objects.get(customer=alice).valid_to == utc(2024, 3, 1)
    assert list(Customer.objects.order_by("account").values_list("account", flat=True)) == ["C1", "C2", "C3"]
    assert AllocationChange.objects.filter(action="created").count() == 3
    ended = AllocationChange.objects.get(action="updated")
    assert (ended.old["valid_to"], ended.new["valid_to"]) == (None, "2024-03-01T00:00:00+00:00")
    assert ended.actor_label.startswith("customers import #")

    # Again: nothing changes. Line 2 now asks to reopen the allocation line 6 ended, which C2's
    # (from March) forbids, as the row-by-row services would say.
    out, err = run_command("import_allocations", tmp_path / "in.csv")
    assert "created: 0\nupdated: 0\nunchanged: 6\nrejected: 3" in out, err
    assert "line 2: 192.0.2.0/29 is already allocated to C2" in err
    assert (Allocation.objects.count(), Contact.objects.count(), AllocationChange.objects.count()) == (3, 2, 4)
