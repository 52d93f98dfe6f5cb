"""import_allocations works in sets: the statements of a batch do not grow with its rows, the rows it
writes without model instances are the rows the services would write (audit snapshots, actor,
defaults), and a batch the database refuses still goes through row by row."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from customers import imports
from customers.imports import execute
from customers.models import Allocation, AllocationChange, Contact, Customer, ImportRun
from tests.customers.test_imports import ALLOC_HEADER, run_command, utc, write

pytestmark = pytest.mark.django_db


def allocation_file(tmp_path, n: int, name: str) -> str:
    rows = []
    for i in range(n):
        rows.append(f"R{i:05d},Resident {i},residential,r{i}@mail.example,,,")
        rows.append(f"B{i:05d},Business {i},business,noc@b{i}.example,198.{18 + i // 256}.{i % 256}.0/29,2024-01-01,")
    return write(tmp_path, ALLOC_HEADER + "\n".join(rows) + "\n", name)


def statements(path) -> int:
    with CaptureQueriesContext(connection) as queries:
        run_command("import_allocations", path)
    return len(queries)


@pytest.mark.requires_postgres  # elsewhere bulk_create splits by the database's parameter limit
def test_a_batch_takes_the_same_statements_for_ten_rows_as_for_five_hundred(tmp_path):
    small = statements(allocation_file(tmp_path, 5, "small.csv"))
    Customer.objects.all().delete()
    big = statements(allocation_file(tmp_path, 250, "big.csv"))

    assert Customer.objects.count() == 500 and Allocation.objects.count() == 250
    assert big == small, f"{small} statements for 10 rows, {big} for 500"
    assert big <= 25


def test_written_rows_are_what_the_services_would_write(tmp_path, admin_user):
    path = write(
        tmp_path,
        ALLOC_HEADER
        + "C1,Alice,,alice@example.net,192.0.2.0/29,2024-01-01T00:00:00Z,\n"
        + "C2,Bob,business,,2001:db8:100::/48,2024-01-01,2024-06-01\n"
        + "C1,,,,192.0.2.0/29,2024-01-01T00:00:00Z,2024-02-01T00:00:00Z\n",  # ends line 2's, same batch
    )
    run = ImportRun.objects.create(kind=ImportRun.Kind.ALLOCATIONS, filename="in.csv", started_by=admin_user)
    summary = execute(run, path)

    assert (summary.created, summary.updated, summary.rejected) == (2, 1, 0)
    alice = Customer.objects.get(account="C1")
    assert (alice.kind, alice.standing, alice.notes) == ("residential", "good", "")
    contact = Contact.objects.get()
    assert (contact.customer, contact.email, contact.name, contact.receives_notices) == (
        alice,
        "alice@example.net",
        "",
        True,
    )
    for allocation in Allocation.objects.all():
        assert (allocation.source, allocation.note, allocation.port_from, allocation.port_to) == (
            "import",
            "",
            0,
            65535,
        )
        assert (allocation.family, allocation.prefixlen) == ((4, 29) if allocation.family == 4 else (6, 48))
        # One "created" row each, whose snapshot is the allocation as it now stands.
        change = AllocationChange.objects.get(allocation=allocation)
        assert change.action == "created" and change.old is None
        assert change.new == allocation.snapshot()
        assert (change.actor, change.actor_label) == (admin_user, f"customers import #{run.pk}")
    assert Allocation.objects.get(network="192.0.2.0/29").valid_to == utc(2024, 2, 1)

    # A later file ends Bob's allocation earlier: an "updated" row with both snapshots.
    later = write(tmp_path, ALLOC_HEADER + "C2,,,,2001:db8:100::/48,2024-01-01,2024-03-01\n", "later.csv")
    execute(ImportRun.objects.create(kind=ImportRun.Kind.ALLOCATIONS, filename="later.csv"), later)
    bob = Allocation.objects.get(network="2001:db8:100::/48")
    change = AllocationChange.objects.get(action="updated")
    assert (change.allocation, change.old["valid_to"], change.new) == (bob, "2024-06-01T00:00:00+00:00", bob.snapshot())
    assert change.actor is None and change.actor_label.startswith("customers import #")


def test_a_batch_the_database_refuses_goes_row_by_row(tmp_path, monkeypatch):
    """A concurrent import that creates the same customer first makes the bulk INSERT fail; the
    batch is then written through the services, one row at a time, with the same outcome."""
    real_write = imports._AllocationBatch._write

    def racing_write(self) -> None:
        real_write(self)
        raise IntegrityError("duplicate key value violates unique constraint (simulated race)")

    monkeypatch.setattr(imports._AllocationBatch, "_write", racing_write)
    path = write(
        tmp_path,
        ALLOC_HEADER
        + "C1,Alice,,alice@example.net,192.0.2.0/29,2024-01-01T00:00:00Z,\n"
        + "C2,Bob,,,192.0.2.0/29,2024-01-01T00:00:00Z,\n"  # C1 holds it
        + "C3,Carol,,,,,\n",
    )
    out, err = run_command("import_allocations", path)

    assert "created: 2\nupdated: 0\nunchanged: 0\nrejected: 1" in out, err
    assert "line 3: 192.0.2.0/29 from 2024-01-01T00:00:00+00:00 is already allocated to C1" in err
    assert sorted(Customer.objects.values_list("account", flat=True)) == ["C1", "C3"]
    assert Contact.objects.get().email == "alice@example.net"
    assert AllocationChange.objects.get().new == Allocation.objects.get().snapshot()


def test_names_with_quotes_backslashes_and_braces_are_stored_as_written(tmp_path):
    name = 'Bob "The \\ Builder", {Ltd} NULL – Zoë\ttab'
    csv_name = '"' + name.replace('"', '""') + '"'
    path = write(
        tmp_path,
        ALLOC_HEADER + f"NULL,{csv_name},,o'brien+{{x}}@example.net,192.0.2.0/29,2024-01-01,\nC2,NULL,,,,,\n",
    )
    out, err = run_command("import_allocations", path)

    assert "created: 2\nupdated: 0\nunchanged: 0\nrejected: 0" in out, err
    customer = Customer.objects.get(account="NULL")
    assert customer.name == name and Customer.objects.get(account="C2").name == "NULL"
    assert customer.notice_recipients() == ["o'brien+{x}@example.net"]
    assert AllocationChange.objects.get().new["customer"] == "NULL"
    out, err = run_command("import_allocations", path)
    assert "created: 0\nupdated: 0\nunchanged: 2\nrejected: 0" in out, err


@pytest.mark.requires_postgres  # two real connections writing at once; SQLite has one writer at a time
@pytest.mark.django_db(transaction=True)
def test_two_imports_of_the_same_new_customers_at_once_write_them_once(tmp_path, monkeypatch):
    """Both read "no such customer" before either writes: the second INSERT waits for the first
    import's commit, fails on the unique account, and that batch goes row by row: unchanged."""
    import threading

    from django.db import connections

    both_read = threading.Barrier(2, timeout=20)
    real_write = imports._AllocationBatch._write

    def write_after_both_read(self) -> None:
        both_read.wait()
        real_write(self)

    monkeypatch.setattr(imports._AllocationBatch, "_write", write_after_both_read)
    path = allocation_file(tmp_path, 20, "same.csv")
    summaries, errors = [], []

    def run_import() -> None:
        try:
            run = ImportRun.objects.create(kind=ImportRun.Kind.ALLOCATIONS, filename="same.csv")
            summaries.append(execute(run, path))
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run_import) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert not errors, errors
    outcomes = sorted((s.created, s.updated, s.unchanged, s.rejected) for s in summaries)
    assert outcomes == [(0, 0, 40, 0), (40, 0, 0, 0)]
    assert (Customer.objects.count(), Contact.objects.count(), Allocation.objects.count()) == (40, 40, 20)
    assert AllocationChange.objects.count() == 20
    assert set(ImportRun.objects.values_list("status", flat=True)) == {"done"}
