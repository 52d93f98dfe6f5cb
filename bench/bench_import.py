"""Benchmark: import_allocations on a customer file, and import_leases on a realistic RADIUS/DHCP session log.

    DATABASE_URL=postgres://abusedesk:abusedesk@127.0.0.1:5432/abusedesk \\
        .venv/bin/python bench/bench_import.py --rows 1000000 [--only allocations|leases|both]

import_allocations: a 60,108-row file (50,000 customers with a contact each, 10,000 business /29
blocks, 108 rows that are rejected), imported twice (the second run changes nothing); it prints
rows/s and statements per 1,000 rows for each run, the load average, and a SUMMARY line
(medians with --repeat N; --only allocations measures just this).

It never touches the database named in DATABASE_URL: it connects there only to create (and at
the end drop) a separate database, abusedesk_bench, migrates it, creates the customers, writes
a lease CSV (a pool of a few thousand addresses, each handed out session after session over 90
days, rows in start order as a log would have them), and imports it twice: the first run loads
everything, the second must change nothing. With a SQLite DATABASE_URL (or none) it uses a
throwaway SQLite file instead. Prints `name: value unit` lines.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "abusedesk_bench"


def prepare_database(url: str, workdir: Path) -> tuple[str, callable]:
    """The DATABASE_URL to benchmark on, and a function that removes that database."""
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql", "pgsql"}:
        path = workdir / "bench.sqlite3"
        return f"sqlite:///{path}", lambda: None

    import psycopg2

    def admin_connection():
        conn = psycopg2.connect(url)
        conn.autocommit = True  # CREATE/DROP DATABASE cannot run inside a transaction
        return conn

    conn = admin_connection()
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
        cursor.execute(f'CREATE DATABASE "{BENCH_DB}"')
    conn.close()

    def drop() -> None:
        from django.db import connections

        connections.close_all()
        conn = admin_connection()
        with conn.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
        conn.close()

    return urlunparse(parsed._replace(path=f"/{BENCH_DB}")), drop


def write_lease_log(path: Path, rows: int, pool: int, accounts: list[str], seed: int) -> None:
    """`rows` sessions over `pool` addresses and 90 days; the last session of each address still open."""
    rng = random.Random(seed)
    begin = datetime(2024, 1, 1, tzinfo=UTC)
    span = timedelta(days=90).total_seconds()
    per_ip = max(1, rows // pool)
    mean = span / per_ip
    sessions: list[tuple[int, str, str, str]] = []
    for n in range(pool):
        ip = f"100.{64 + n // 65536 % 64}.{n // 256 % 256}.{n % 256}"
        count = per_ip + (1 if n < rows - per_ip * pool else 0)
        at = rng.uniform(0, 600)
        for i in range(count):
            length = rng.uniform(0.3, 1.6) * mean * 0.9
            start = begin + timedelta(seconds=int(at))
            stop = start + timedelta(seconds=max(60, int(length)))
            last = i == count - 1
            sessions.append(
                (
                    int(at),
                    ip,
                    rng.choice(accounts),
                    start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "" if last else stop.strftime("%Y-%m-%dT%H:%M:%SZ"),
                )
            )
            # A short gap while the address is back in the pool.
            at = (stop - begin).total_seconds() + rng.uniform(1, 0.1 * mean)
    sessions.sort()
    with path.open("w", encoding="utf-8") as fh:
        fh.write("ip,account,start,stop\n")
        fh.writelines(f"{ip},{account},{start},{stop}\n" for _, ip, account, start, stop in sessions)


def write_allocation_file(path: Path, customers: int, blocks: int, bad: int) -> int:
    """`customers` customers with a contact each, `blocks` business /29s (each a customer of its own,
    named again with its block), and `bad` rows that are rejected (unknown kind, host bits, no name)."""
    with path.open("w", encoding="utf-8") as fh:
        fh.write("account,name,kind,email,network,valid_from,valid_to\n")
        for n in range(customers):
            fh.write(f"R{n:07d},Resident {n},residential,r{n}@mail.example,,,\n")
        for n in range(blocks):
            net = f"{100 + n // 8192}.{(n // 32) % 256}.{(n % 32) * 8}.0/29"
            fh.write(f"B{n:06d},Business {n},business,noc{n}@biz{n}.example,{net},2024-01-01T00:00:00Z,\n")
        for n in range(bad):
            fh.write((f"X{n},Bad,gold,,,,\n", f"X{n},Bad,,,192.0.2.1/29,,\n", f"X{n},,,,,,\n")[n % 3])
    return customers + blocks + bad


def empty_customer_tables(connection) -> None:
    """Start again from an empty desk, so every repeat's first run creates everything (and on
    PostgreSQL without the dead rows a DELETE would leave in the tables and indexes)."""
    from customers.models import Allocation, AllocationChange, Contact, Customer

    if connection.vendor != "postgresql":
        for model in (AllocationChange, Allocation, Contact, Customer):
            model.objects.all().delete()
        return
    models = (AllocationChange, Allocation, Contact, Customer)
    tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in models)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


def bench_allocations(args) -> None:
    """import_allocations on a 60,108-row file (50,000 customers with contacts, 10,000 business
    blocks, 108 bad rows), twice: the first run creates everything, the second must change nothing.
    With --repeat N the tables are emptied and both runs repeated; the medians are printed."""
    import statistics

    from django.core.management import call_command
    from django.db import connection

    from customers.models import Allocation, AllocationChange, Contact, Customer

    workdir = Path(tempfile.mkdtemp(prefix="abusedesk-bench-alloc-"))
    path = workdir / "allocations.csv"
    rows = write_allocation_file(path, args.alloc_customers, args.alloc_blocks, args.alloc_bad)
    print(f"allocation_rows: {rows} rows")
    statements = 0

    def count_statements(execute, sql, params, many, context):
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    rates: dict[str, list[float]] = {"first": [], "second": []}
    for attempt in range(args.repeat):
        if attempt:
            empty_customer_tables(connection)
        for label in ("first", "second"):
            out = io.StringIO()
            statements = 0
            t0 = time.perf_counter()
            with connection.execute_wrapper(count_statements):
                call_command("import_allocations", str(path), "--no-progress", stdout=out, stderr=io.StringIO())
            seconds = time.perf_counter() - t0
            rates[label].append(rows / seconds)
            prefix = "allocations_" if label == "first" else "allocations_second_run_"
            counts = {
                key: value
                for key, _, value in (line.partition(": ") for line in out.getvalue().splitlines())
                if key in {"created", "updated", "unchanged", "rejected"}
            }
            print(
                f"{prefix}seconds: {seconds:.2f} s\n"
                f"{prefix}rows_per_second: {rows / seconds:.0f} rows/s\n"
                f"{prefix}statements_per_1000_rows: {statements * 1000 / rows:.1f} statements\n"
                + "".join(f"{prefix}{key}: {value} rows\n" for key, value in counts.items()),
                end="",
                flush=True,
            )
    print(f"allocations_customers: {Customer.objects.count()} rows")
    print(f"allocations_contacts: {Contact.objects.count()} rows")
    print(f"allocations_allocations: {Allocation.objects.count()} rows")
    print(f"allocations_audit_rows: {AllocationChange.objects.count()} rows")
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load_average: {load} (1, 5, 15 min)")
    print(
        f"SUMMARY import_allocations on {connection.vendor}, {rows} rows, median of {args.repeat}: "
        f"first run {statistics.median(rates['first']):.0f} rows/s, "
        f"re-run {statistics.median(rates['second']):.0f} rows/s (target on PostgreSQL: at least 5000 rows/s)",
        flush=True,
    )
    path.unlink()
    workdir.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pool", type=int, default=3000, help="addresses in the lease pool")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument(
        "--only", choices=["leases", "allocations", "both"], default="both", help="which import to measure"
    )
    parser.add_argument("--alloc-customers", type=int, default=50_000)
    parser.add_argument("--alloc-blocks", type=int, default=10_000)
    parser.add_argument("--alloc-bad", type=int, default=108)
    parser.add_argument(
        "--repeat", type=int, default=1, help="import_allocations: runs (each from empty tables) to take the median of"
    )
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DEBUG", "true")
    os.environ["DJANGO_SETTINGS_MODULE"] = "abusedesk.settings"
    workdir = Path(tempfile.mkdtemp(prefix="abusedesk-bench-"))
    url, drop = prepare_database(os.environ.get("DATABASE_URL", ""), workdir)
    os.environ["DATABASE_URL"] = url

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from customers.models import Allocation, AllocationChange, Customer

    try:
        call_command("migrate", verbosity=0, interactive=False)
        print(f"database: {connection.vendor}", flush=True)
        if args.only in ("allocations", "both"):
            bench_allocations(args)
        if args.only == "allocations":
            return
        accounts = [f"R{n:07d}" for n in range(args.customers)]
        Customer.objects.bulk_create([Customer(account=a, name=f"Resident {a}") for a in accounts], batch_size=5000)
        csv_path = workdir / "leases.csv"
        t0 = time.perf_counter()
        write_lease_log(csv_path, args.rows, args.pool, accounts, args.seed)
        print(f"csv_write_seconds: {time.perf_counter() - t0:.1f} s", flush=True)
        print(f"csv_bytes: {csv_path.stat().st_size} bytes", flush=True)

        for label in ("first", "second"):
            out = io.StringIO()
            t0 = time.perf_counter()
            call_command("import_leases", str(csv_path), "--no-progress", stdout=out, stderr=io.StringIO())
            seconds = time.perf_counter() - t0
            counts = dict(
                line.split(": ") for line in out.getvalue().splitlines() if line.split(": ")[0] in
                {"created", "updated", "unchanged", "rejected"}
            )  # fmt: skip
            prefix = "" if label == "first" else "second_run_"
            if label == "first":
                print(f"rows: {args.rows} rows")
            print(f"{prefix}seconds: {seconds:.1f} s")
            print(f"{prefix}rows_per_second: {args.rows / seconds:.0f} rows/s")
            for key, value in counts.items():
                print(f"{prefix}{key}: {value} rows", flush=True)
        print(f"allocations: {Allocation.objects.count()} rows")
        print(f"allocation_changes: {AllocationChange.objects.count()} rows")
    finally:
        if not args.keep:
            drop()
        for child in workdir.iterdir():
            child.unlink()
        workdir.rmdir()


if __name__ == "__main__":
    main()
