"""The allocation and lease CSV imports: rows, rejections, idempotency, summaries, exit codes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from customers.imports import ImportFileError, execute
from customers.models import Allocation, AllocationChange, Contact, Customer, ImportRun
from customers.resolver import resolve
from customers.services import create_allocation

pytestmark = pytest.mark.django_db

LEASE_HEADER = "ip,account,start,stop\n"
ALLOC_HEADER = "account,name,kind,email,network,valid_from,valid_to\n"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def write(tmp_path: Path, text: str | bytes, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def run_command(name: str, path: Path) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(name, str(path), "--no-progress", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def last_run() -> ImportRun:
    return ImportRun.objects.order_by("-pk").first()


@pytest.fixture
def customers(db) -> dict[str, Customer]:
    return {acct: Customer.objects.create(account=acct, name=f"Customer {acct}") for acct in ("A100", "A200", "A300")}


# --- leases ---------------------------------------------------------------------------


def test_leases_become_single_address_allocations(tmp_path, customers):
    path = write(
        tmp_path,
        LEASE_HEADER
        + "198.51.100.7,A100,2024-03-01T10:00:00Z,2024-03-01T12:00:00Z\n"
        + "2001:db8::1,A200,2024-03-01T10:00:00+02:00,\n"
        + "::ffff:198.51.100.8,A300,2024-03-01 10:00,2024-03-02 10:00\n",
    )
    out, _ = run_command("import_leases", path)

    assert "created: 3" in out and "rejected: 0" in out
    v4 = Allocation.objects.get(network="198.51.100.7/32")
    assert (v4.source, v4.prefixlen, v4.family) == ("lease", 32, 4)
    assert v4.valid_to == utc(2024, 3, 1, 12)
    v6 = Allocation.objects.get(network="2001:db8::1/128")
    assert v6.valid_from == utc(2024, 3, 1, 8) and v6.valid_to is None
    # An IPv4-mapped address and a time without a zone (UTC) are stored in their canonical forms.
    assert Allocation.objects.get(network="198.51.100.8/32").valid_from == utc(2024, 3, 1, 10)
    assert resolve("198.51.100.7", utc(2024, 3, 1, 11)).customer.account == "A100"
    assert resolve("198.51.100.7", utc(2024, 3, 1, 12)) is None
    # Created leases are audited through their run: the note names it.
    run = last_run()
    assert set(Allocation.objects.values_list("note", flat=True)) == {f"lease import #{run.pk}"}
    assert not AllocationChange.objects.exists()
    assert (run.status, run.created, run.processed_rows, run.total_rows) == ("done", 3, 3, 3)


def test_the_same_lease_file_twice_changes_nothing(tmp_path, customers):
    path = write(
        tmp_path,
        LEASE_HEADER
        + "198.51.100.7,A100,2024-03-01T10:00:00Z,2024-03-01T12:00:00Z\n"
        + "198.51.100.7,A200,2024-03-01T12:00:00Z,2024-03-01T13:00:00Z\n"
        + "198.51.100.7,A100,2024-03-01T13:00:00Z,\n",
    )
    run_command("import_leases", path)
    allocations = list(Allocation.objects.values_list("network", "valid_from", "valid_to", "customer__account"))
    changes = AllocationChange.objects.count()

    out, _ = run_command("import_leases", path)

    assert "created: 0\nupdated: 0\nunchanged: 3\nrejected: 0" in out
    assert list(Allocation.objects.values_list("network", "valid_from", "valid_to", "customer__account")) == (
        allocations
    )
    assert AllocationChange.objects.count() == changes


def test_a_later_file_closes_an_open_lease(tmp_path, customers):
    run_command("import_leases", write(tmp_path, LEASE_HEADER + "198.51.100.7,A100,2024-03-01T10:00:00Z,\n"))
    lease = Allocation.objects.get()
    assert lease.valid_to is None

    out, _ = run_command(
        "import_leases",
        write(
            tmp_path,
            LEASE_HEADER
            + "198.51.100.7,A100,2024-03-01T10:00:00Z,2024-03-01T18:00:00Z\n"
            + "198.51.100.7,A200,2024-03-01T18:00:00Z,\n",
            "later.csv",
        ),
    )

    assert "created: 1\nupdated: 1\nunchanged: 0\nrejected: 0" in out
    lease.refresh_from_db()
    assert lease.valid_to == utc(2024, 3, 1, 18)
    change = AllocationChange.objects.get(action="updated")
    assert change.allocation == lease and change.actor_label.startswith("leases import #")
    assert change.old["valid_to"] is None and change.new["valid_to"] == "2024-03-01T18:00:00+00:00"
    assert resolve("198.51.100.7", utc(2024, 3, 1, 19)).customer.account == "A200"

    # Reading the first (older) log again does not reopen the lease.
    out, _ = run_command("import_leases", write(tmp_path, LEASE_HEADER + "198.51.100.7,A100,2024-03-01T10:00:00Z,\n"))
    assert "unchanged: 1" in out
    lease.refresh_from_db()
    assert lease.valid_to == utc(2024, 3, 1, 18)


def test_a_start_and_a_stop_record_in_one_file_make_one_closed_lease(tmp_path, customers):
    out, _ = run_command(
        "import_leases",
        write(
            tmp_path,
            LEASE_HEADER
            + "198.51.100.7,A100,2024-03-01T10:00:00Z,\n"
            + "198.51.100.7,A100,2024-03-01T10:00:00Z,2024-03-01T11:00:00Z\n",
        ),
    )
    assert "created: 1\nupdated: 1" in out
    assert Allocation.objects.get().valid_to == utc(2024, 3, 1, 11)


def test_a_session_already_held_by_another_account_is_rejected(tmp_path, customers):
    run_command("import_leases", write(tmp_path, LEASE_HEADER + "198.51.100.7,A100,2024-03-01T10:00:00Z,\n"))
    out, err = run_command(
        "import_leases",
        write(tmp_path, LEASE_HEADER + "198.51.100.7,A200,2024-03-01T10:00:00Z,2024-03-01T11:00:00Z\n", "b.csv"),
    )
    assert "rejected: 1" in out
    assert "line 2: 198.51.100.7/32 from 2024-03-01T10:00:00+00:00 is already leased to A100" in err
    assert Allocation.objects.get().valid_to is None


def test_an_overlapping_lease_is_rejected_naming_the_holder(tmp_path, customers):
    create_allocation(
        customer=customers["A300"], network="198.51.100.9/32", valid_from=utc(2024, 3, 1), valid_to=utc(2024, 3, 2)
    )
    out, err = run_command(
        "import_leases",
        write(
            tmp_path,
            LEASE_HEADER
            + "198.51.100.9,A100,2024-03-01T23:00:00Z,2024-03-02T01:00:00Z\n"  # ends inside, starts inside
            + "198.51.100.9,A100,2024-02-29T23:00:00Z,2024-03-01T00:30:00Z\n"  # runs into it
            + "198.51.100.9,A100,2024-02-29T20:00:00Z,\n"  # open, so it overlaps everything after
            + "198.51.100.9,A100,2024-03-02T00:00:00Z,2024-03-03T00:00:00Z\n",  # starts as it ends: fine
        ),
    )
    assert "created: 1\nupdated: 0\nunchanged: 0\nrejected: 3" in out
    for line in (2, 3, 4):
        assert f"line {line}: 198.51.100.9/32 overlaps the lease of A300" in err
    assert Allocation.objects.filter(network="198.51.100.9/32").count() == 2


def test_bad_lease_rows_are_rejected_with_line_and_reason_and_the_rest_imported(tmp_path, customers):
    raw = (
        LEASE_HEADER.encode()
        + b"198.51.100.7,A100,2024-03-01T10:00:00Z,\n"  # 2 good
        + b"198.51.100.300,A100,2024-03-01T10:00:00Z,\n"  # 3 bad IP
        + b"198.51.100.0/24,A100,2024-03-01T10:00:00Z,\n"  # 4 a network, not an address
        + b"198.51.100.1/24,A100,2024-03-01T10:00:00Z,\n"  # 5 host bits set
        + b"198.51.100.10,NOPE,2024-03-01T10:00:00Z,\n"  # 6 unknown account
        + b"198.51.100.11,A100,2024-03-01T10:00:00Z,2024-03-01T09:00:00Z\n"  # 7 end before start
        + b"198.51.100.12,A100,2024-03-01T10:00:00Z\n"  # 8 missing column
        + b"198.51.100.13,A100,2024-03-01T10:00:00Z,,extra\n"  # 9 extra column
        + b"198.51.100.14,A\xe9100,2024-03-01T10:00:00Z,\n"  # 10 Latin-1, not UTF-8
        + b"198.51.100.15,A100,yesterday,\n"  # 11 not a time
        + b"198.51.100.16,A100,,\n"  # 12 no start
        + b"\n"  # 13 blank: skipped, not a row
        + b"198.51.100.17,A200,2024-03-01T10:00:00Z,2024-03-01T11:00:00Z\r\n"  # 14 good (CRLF)
    )
    out, err = run_command("import_leases", write(tmp_path, raw))

    assert "created: 2\nupdated: 0\nunchanged: 0\nrejected: 10" in out
    expected = {
        3: "'198.51.100.300' is not a valid IP address",
        4: "198.51.100.0/24 is a network; a lease is one address",
        5: "198.51.100.1/24 has host bits set",
        6: "unknown account NOPE",
        7: "stop 2024-03-01T09:00:00Z is not after start",
        8: "expected 4 columns, found 3",
        9: "expected 4 columns, found 5",
        10: "not valid UTF-8",
        11: "start 'yesterday' is not an ISO 8601 time",
        12: "start is empty",
    }
    run = last_run()
    stored = {e["line"]: e["reason"] for e in run.errors}
    assert sorted(stored) == sorted(expected)
    for line, reason in expected.items():
        assert reason in stored[line]
        assert f"line {line}: {reason}" in err
    assert set(Allocation.objects.values_list("network", flat=True)) == {"198.51.100.7/32", "198.51.100.17/32"}
    assert (run.status, run.rejected, run.created) == ("done", 10, 2)


def test_an_empty_file_is_a_successful_import_of_nothing(tmp_path, customers):
    for name, text in (("empty.csv", ""), ("header.csv", LEASE_HEADER)):
        out, _ = run_command("import_leases", write(tmp_path, text, name))
        assert "0 rows" in out and "created: 0" in out and "rejected: 0" in out
        assert last_run().status == "done"


def test_a_missing_or_unreadable_file_raises_a_command_error(tmp_path, customers):
    with pytest.raises(CommandError, match="Cannot open") as exc_info:
        run_command("import_leases", tmp_path / "nope.csv")
    assert exc_info.value.returncode != 0
    assert last_run().status == "failed" and "Cannot open" in last_run().error

    with pytest.raises(CommandError, match="Cannot open"):
        run_command("import_allocations", tmp_path)  # a directory


def test_exit_codes_from_the_command_line(tmp_path):
    """Real processes on a throwaway SQLite database: only an unreadable file exits non-zero."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3"}

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=root, env=env, capture_output=True, text=True, timeout=120
        )

    assert manage("migrate", "--no-input", "-v0").returncode == 0
    bad_rows = write(tmp_path, ALLOC_HEADER + "C1,Alice,,,,,\nC2,Bob,gold,,,,\nC3,Carol,,,,,,\n")

    result = manage("import_allocations", str(bad_rows))
    assert result.returncode == 0, result.stderr
    assert "created: 1" in result.stdout and "rejected: 2" in result.stdout
    assert "line 3: kind 'gold'" in result.stderr and "line 4: expected 7 columns" in result.stderr
    assert "rows" in result.stderr  # the tqdm bar

    missing = manage("import_leases", str(tmp_path / "missing.csv"))
    assert missing.returncode != 0
    assert "Cannot open" in missing.stderr

    wrong_header = manage("import_leases", str(bad_rows))
    assert wrong_header.returncode != 0
    assert "The header must be ip,account,start,stop" in wrong_header.stderr


def test_a_file_with_the_wrong_header_fails_as_a_whole(tmp_path, customers):
    path = write(tmp_path, "ip,account,begin,stop\n198.51.100.7,A100,2024-03-01T10:00:00Z,\n")
    with pytest.raises(CommandError, match="missing start; unexpected 'begin'"):
        run_command("import_leases", path)
    assert last_run().status == "failed"
    assert not Allocation.objects.exists()


def test_columns_may_come_in_any_order_and_a_bom_is_ignored(tmp_path, customers):
    path = write(tmp_path, "\ufeffaccount,ip,stop,start\nA100,198.51.100.7,,2024-03-01T10:00:00Z\n")
    out, _ = run_command("import_leases", path)
    assert "created: 1" in out
    assert Allocation.objects.get().customer == customers["A100"]


def test_execute_reads_a_binary_file_object_and_reports_progress(customers):
    rows = "".join(f"198.51.100.{i},A100,2024-03-01T10:00:00Z,\n" for i in range(1, 11))
    run = ImportRun.objects.create(kind=ImportRun.Kind.LEASES, filename="upload.csv")
    seen: list[tuple[int, int]] = []
    summary = execute(run, io.BytesIO((LEASE_HEADER + rows).encode()), progress=lambda p, t: seen.append((p, t)))
    assert (summary.created, summary.total_rows) == (10, 10)
    assert seen[-1] == (10, 10)
    run.refresh_from_db()
    assert (run.status, run.processed_rows, run.percent, run.finished_at is not None) == ("done", 10, 100, True)


def test_execute_raises_for_an_unreadable_file_and_marks_the_run_failed(tmp_path, db):
    run = ImportRun.objects.create(kind=ImportRun.Kind.ALLOCATIONS, filename="x.csv")
    with pytest.raises(ImportFileError):
        execute(run, tmp_path / "missing.csv")
    run.refresh_from_db()
    assert run.status == "failed" and run.error


# --- customers and allocations ------------------------------------------------------------


def test_allocation_rows_create_customers_contacts_and_allocations(tmp_path, db):
    path = write(
        tmp_path,
        ALLOC_HEADER
        + "C1,Alice Example,,alice@example.net,192.0.2.0/29,2024-01-01T00:00:00Z,\n"
        + 'C2,"Bob, Inc.",business,noc@bob.example,2001:db8:100::/48,2024-01-01,2024-06-01\n'
        + "C3,Carol,residential,,,,\n"  # no network: the customer only
        + "C4,Dave,,,198.51.100.0/30,,\n",  # no valid_from: from now, open
    )
    out, _ = run_command("import_allocations", path)

    assert "created: 4\nupdated: 0\nunchanged: 0\nrejected: 0" in out
    alice = Customer.objects.get(account="C1")
    assert (alice.name, alice.kind) == ("Alice Example", "residential")
    assert alice.notice_recipients() == ["alice@example.net"]
    bob = Customer.objects.get(account="C2")
    assert (bob.name, bob.kind) == ("Bob, Inc.", "business")
    bob_alloc = bob.allocations.get()
    assert (bob_alloc.network, bob_alloc.valid_to, bob_alloc.source) == ("2001:db8:100::/48", utc(2024, 6, 1), "import")
    assert not Customer.objects.get(account="C3").allocations.exists()
    dave = Allocation.objects.get(network="198.51.100.0/30")
    assert dave.valid_to is None and resolve("198.51.100.1").customer.account == "C4"
    assert AllocationChange.objects.filter(action="created").count() == 3

    # The same file again changes nothing, even the row whose start was "now".
    out, _ = run_command("import_allocations", path)
    assert "created: 0\nupdated: 0\nunchanged: 4\nrejected: 0" in out
    assert Allocation.objects.count() == 3 and Contact.objects.count() == 2
    assert AllocationChange.objects.count() == 3


def test_allocation_rows_update_names_kinds_contacts_and_ends(tmp_path, db):
    run_command(
        "import_allocations",
        write(tmp_path, ALLOC_HEADER + "C1,Alice,,,192.0.2.0/29,2024-01-01T00:00:00Z,\nC2,Bob,,,,,\n"),
    )
    out, _ = run_command(
        "import_allocations",
        write(
            tmp_path,
            ALLOC_HEADER
            + "C1,Alice,,,192.0.2.0/29,2024-01-01T00:00:00Z,2024-02-01T00:00:00Z\n"  # ends the allocation
            + "C2,Bob Ltd,business,,,,\n"  # name and kind change
            + "C2,,,ops@bob.example,,,\n",  # a new contact; empty name/kind keep what is there
            "second.csv",
        ),
    )
    assert "created: 0\nupdated: 3\nunchanged: 0\nrejected: 0" in out
    assert Allocation.objects.get().valid_to == utc(2024, 2, 1)
    assert AllocationChange.objects.get(action="updated").old["valid_to"] is None
    bob = Customer.objects.get(account="C2")
    assert (bob.name, bob.kind, bob.notice_recipients()) == ("Bob Ltd", "business", ["ops@bob.example"])


def test_bad_allocation_rows_are_rejected_and_nothing_of_them_is_kept(tmp_path, db):
    holder = Customer.objects.create(account="H1", name="Holder")
    create_allocation(customer=holder, network="203.0.113.0/24", valid_from=utc(2024, 1, 1))
    raw = (
        ALLOC_HEADER.encode()
        + b"C1,Alice,,,192.0.2.1/29,2024-01-01T00:00:00Z,\n"  # 2 host bits set
        + b"C2,Bob,,,203.0.113.0/24,2024-02-01T00:00:00Z,\n"  # 3 overlaps H1's open allocation
        + b"C3,Carol,gold,,,,\n"  # 4 unknown kind
        + b"C4,Dave,,,10.0.0.0/8,2024-02-01,2024-01-01\n"  # 5 end before start
        + b"C5,Eve,,,not-a-net,,\n"  # 6 bad network
        + b"C6,Fay,,,,,,\n"  # 7 extra column
        + b"C7,Gus\n"  # 8 missing columns
        + b"C8,Ren\xe9e,,,,,\n"  # 9 not UTF-8
        + b"C9,,,,,,\n"  # 10 unknown account, no name
        + b"C10,Ida,,not-an-email,,,\n"  # 11 bad email
        + b"C11,Jo,,,,,\n"  # 12 good
    )
    out, err = run_command("import_allocations", write(tmp_path, raw))
    assert "created: 1\nupdated: 0\nunchanged: 0\nrejected: 10" in out
    assert "line 2: 192.0.2.1/29 has host bits set" in err
    assert "line 3: 203.0.113.0/24 is already allocated to H1" in err
    for line, reason in (
        (4, "kind 'gold'"),
        (5, "valid_to 2024-01-01 is not after"),
        (6, "'not-a-net' is not a valid"),
        (7, "expected 7 columns, found 8"),
        (8, "expected 7 columns, found 2"),
        (9, "not valid UTF-8"),
        (10, "unknown account C9"),
        (11, "email 'not-an-email'"),
    ):
        assert f"line {line}: {reason}" in err
    # A rejected row leaves nothing behind, not even its customer.
    assert list(Customer.objects.values_list("account", flat=True)) == ["C11", "H1"]


@pytest.mark.django_db(transaction=True)
def test_leases_imported_outside_a_transaction_are_written_by_the_batch_writer(tmp_path, monkeypatch):
    """Outside a test transaction, PostgreSQL runs use the writer thread; batches must still chain."""
    monkeypatch.setattr("customers.imports.LEASE_BATCH_ROWS", 2)  # several batches, each depending on the last
    Customer.objects.create(account="A100", name="Alice")
    Customer.objects.create(account="A200", name="Bob")
    rows = [
        "198.51.100.7,A100,2024-03-01T10:00:00Z,",
        "198.51.100.8,A200,2024-03-01T10:00:00Z,",
        "198.51.100.7,A100,2024-03-01T10:00:00Z,2024-03-01T11:00:00Z",  # ends a lease from the batch before
        "198.51.100.7,A200,2024-03-01T10:30:00Z,",  # overlaps the ended lease
        "198.51.100.7,A200,2024-03-01T11:00:00Z,",
    ]
    out, _ = run_command("import_leases", write(tmp_path, LEASE_HEADER + "\n".join(rows) + "\n"))
    assert "created: 3\nupdated: 1\nunchanged: 0\nrejected: 1" in out
    assert resolve("198.51.100.7", utc(2024, 3, 1, 10, 45)).customer.account == "A100"
    assert resolve("198.51.100.7", utc(2024, 3, 1, 11)).customer.account == "A200"
    assert AllocationChange.objects.get().action == "updated"
    run = last_run()
    assert (run.status, run.created, run.updated, run.rejected, run.processed_rows) == ("done", 3, 1, 1, 5)

    out, _ = run_command("import_leases", tmp_path / "in.csv")
    assert "created: 0\nupdated: 0\nunchanged: 4\nrejected: 1" in out


@pytest.mark.django_db
def test_times_out_of_range_and_overlong_emails_are_rejected_rows_not_a_failed_run(tmp_path):
    from django.core.management import call_command

    path = tmp_path / "edge.csv"
    path.write_text(
        "account,name,kind,email,network,valid_from,valid_to\n"
        "A1,Alice,residential,,192.0.2.0/24,0001-01-01T00:00:00+01:00,\n"
        f"A2,Bob,residential,{'x' * 250}@example.net,,,\n"
        "A3,Carol,residential,carol@example.net,198.51.100.0/24,2025-01-01,\n"
    )
    call_command("import_allocations", str(path), "--no-progress")
    from customers.models import Allocation, Customer

    assert list(Customer.objects.values_list("account", flat=True)) == ["A3"]
    assert Allocation.objects.get().network == "198.51.100.0/24"
