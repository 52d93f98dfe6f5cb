"""CGNAT resolution at scale: public address + source port + time -> subscriber, with 10,000,000 port blocks.

    DATABASE_URL=postgres://abusedesk:abusedesk@127.0.0.1:5432/abusedesk .venv/bin/python bench/bench_cgnat.py

Makes its own database (<name>_bench_cgnat), migrates it, and loads, inside PostgreSQL (generate_series):
16 CGNAT pools (/24, 4,096 public addresses) held by the ISP's pool account, 200,000 subscribers, and
port blocks of 1,024 ports (1024-65535: 63 per address) re-dealt every 6 hours, generation after
generation (258,048 blocks each) until the table holds about --blocks rows (default 10,000,000: 39
generations, 10,063,872 rows, nearly 10 days), the last generation still open.
Then it times, on random (address, time, port) triples across the whole history:
  - resolve(ip, at, port)    the subscriber's block (the answer is checked against the generator's rule);
  - resolve(ip, at)          no port: the pool answers and says the port is needed;
  - resolve(ip, at) of an ordinary (non-CGNAT) business address, the path every other report takes;
  - resolve_events()         in batches of 1,000 triples, per triple (what filing calls).
Figures are `name: value unit` lines; medians and p99 over --calls calls. Target: median <= 1 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_database  # noqa: E402

SUBSCRIBERS = 200_000
POOLS = 16
ADDRESSES = POOLS * 256
BLOCK = 1024
BLOCKS_PER_ADDRESS = (65536 - 1024) // BLOCK  # 63
GENERATION = timedelta(hours=6)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
POOL_CUSTOMER = 1
SHOP_CUSTOMER = 2
FIRST_SUBSCRIBER = 3


def figure(name: str, value: float | int, unit: str) -> None:
    print(f"{name}: {value:.3f} {unit}" if isinstance(value, float) else f"{name}: {value} {unit}", flush=True)


def subscriber(address_index: int, block: int, generation: int) -> int:
    """The generator's rule, also the reference the answers are checked against."""
    return FIRST_SUBSCRIBER + (address_index * 7919 + block * 104729 + generation * 1299709) % SUBSCRIBERS


def address(index: int) -> str:
    return f"203.{index // 256}.113.{index % 256}"


def load(blocks: int) -> tuple[int, int]:
    from django.db import connection

    # Whole generations only, so every (address, block, time) drawn below has its holder.
    generations = max(1, round(blocks / (ADDRESSES * BLOCKS_PER_ADDRESS)))
    with connection.cursor() as cur:
        # Bulk load without the secondary indexes, then build them once (as a restore would).
        cur.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'customers_allocation' AND indexname <> %s",
            ["customers_allocation_pkey"],
        )
        rebuild = [row[0] for row in cur.fetchall() if "allocation_unique_start" not in row[0]]
        cur.execute("ALTER TABLE customers_allocation DROP CONSTRAINT allocation_unique_start")
        for statement in rebuild:
            cur.execute(f"DROP INDEX {statement.split(' INDEX ')[1].split(' ON ')[0]}")
        cur.execute(
            "INSERT INTO customers_customer (id, account, name, kind, standing, notes, created_at, updated_at) "
            "SELECT i, 'S-' || i, 'Subscriber ' || i, 'residential', 'good', '', now(), now() "
            "FROM generate_series(1, %s) i",
            [FIRST_SUBSCRIBER + SUBSCRIBERS],
        )
        cur.execute("UPDATE customers_customer SET account = 'ISP-CGNAT', kind = 'business' WHERE id = 1")
        cur.execute("UPDATE customers_customer SET account = 'B-SHOP', kind = 'business' WHERE id = 2")
        cur.execute(
            "INSERT INTO customers_allocation (customer_id, network, family, prefixlen, valid_from, valid_to, source, "
            "note, created_at, port_from, port_to) "
            "SELECT 1, '203.' || p || '.113.0/24', 4, 24, %s, NULL, 'cgnat', '', now(), 0, 65535 "
            "FROM generate_series(0, %s) p",
            [T0 - timedelta(days=365), POOLS - 1],
        )
        cur.execute(
            "INSERT INTO customers_allocation (customer_id, network, family, prefixlen, valid_from, valid_to, source, "
            "note, created_at, port_from, port_to) VALUES (2, '198.51.100.0/24', 4, 24, %s, NULL, 'static', '', now(), "
            "0, 65535)",
            [T0 - timedelta(days=365)],
        )
        # Generation by generation, as a NAT's log arrives: each address's history spreads over the table.
        for g in range(generations):
            cur.execute(
                "INSERT INTO customers_allocation (customer_id, network, family, prefixlen, valid_from, valid_to, "
                "source, note, created_at, port_from, port_to) "
                "SELECT 3 + ((a * 7919 + b * 104729 + %(g)s * 1299709) %% %(subs)s), "
                "'203.' || (a / 256) || '.113.' || (a %% 256) || '/32', 4, 32, %(start)s, %(stop)s, 'ports', '', "
                "now(), 1024 + b * 1024, 1024 + b * 1024 + 1023 "
                "FROM generate_series(0, %(addrs)s - 1) a CROSS JOIN generate_series(0, %(per)s - 1) b",
                {
                    "g": g,
                    "subs": SUBSCRIBERS,
                    "start": T0 + g * GENERATION,
                    "stop": None if g == generations - 1 else T0 + (g + 1) * GENERATION,
                    "addrs": ADDRESSES,
                    "per": BLOCKS_PER_ADDRESS,
                },
            )
            print(f"  generation {g + 1}/{generations}", file=sys.stderr, flush=True)
        for statement in rebuild:
            cur.execute(statement)
        cur.execute(
            "ALTER TABLE customers_allocation ADD CONSTRAINT allocation_unique_start "
            "UNIQUE (network, valid_from, port_from)"
        )
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE customers_allocation")
        cur.execute("SELECT count(*) FROM customers_allocation WHERE source = 'ports'")
        return cur.fetchone()[0], generations


def stats(label: str, samples: list[float]) -> float:
    samples.sort()
    median = statistics.median(samples)
    figure(f"{label}_median", median * 1000, "ms")
    figure(f"{label}_p99", samples[int(len(samples) * 0.99) - 1] * 1000, "ms")
    return median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=10_000_000)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument(
        "--reuse", action="store_true", help="time the database a previous run left (loading 10M rows takes minutes)"
    )
    args = parser.parse_args()
    server = os.environ.get("DATABASE_URL", "")
    if not server.startswith(("postgres://", "postgresql://")):
        print("DATABASE_URL must point at a PostgreSQL server", file=sys.stderr)
        return 2
    if args.reuse:
        os.environ["DATABASE_URL"] = server.rsplit("/", 1)[0] + "/" + server.rsplit("/", 1)[1] + "_bench_cgnat"
    else:
        os.environ["DATABASE_URL"] = bench_database(server, "_bench_cgnat")
    os.environ["DEBUG"] = "true"
    os.environ["DJANGO_SETTINGS_MODULE"] = "abusedesk.settings"
    import django

    django.setup()
    from django.core.management import call_command

    from customers.resolver import NO_PORT, resolve, resolve_events

    call_command("migrate", verbosity=0)
    if args.reuse:
        from django.db import connection

        with connection.cursor() as cur:
            cur.execute("SELECT count(*), count(DISTINCT valid_from) FROM customers_allocation WHERE source = 'ports'")
            count, generations = cur.fetchone()
    else:
        t = time.perf_counter()
        count, generations = load(args.blocks)
        figure("load", time.perf_counter() - t, "s")
    figure("port_blocks", count, "rows")
    last_end = T0 + generations * GENERATION
    rng = random.Random(args.seed)

    def triple():
        index = rng.randrange(ADDRESSES)
        g = rng.randrange(generations)
        at = T0 + g * GENERATION + timedelta(seconds=rng.randrange(int(GENERATION.total_seconds())))
        block = rng.randrange(BLOCKS_PER_ADDRESS)
        port = 1024 + block * BLOCK + rng.randrange(BLOCK)
        return index, g, at, block, port

    for _ in range(500):  # warm-up: the prepared statement, the cache
        index, g, at, block, port = triple()
        resolve(address(index), at, port)
    with_port, no_port, ordinary, wrong = [], [], [], 0
    for _ in range(args.calls):
        index, g, at, block, port = triple()
        ip = address(index)
        t = time.perf_counter()
        held = resolve(ip, at, port)
        with_port.append(time.perf_counter() - t)
        wrong += held is None or held.customer_id != subscriber(index, block, g)
        t = time.perf_counter()
        pool = resolve(ip, at)
        no_port.append(time.perf_counter() - t)
        wrong += pool is None or pool.customer_id != POOL_CUSTOMER or pool.resolution_note != NO_PORT
        t = time.perf_counter()
        shop = resolve(f"198.51.100.{rng.randrange(256)}", at)
        ordinary.append(time.perf_counter() - t)
        wrong += shop is None or shop.customer_id != SHOP_CUSTOMER
    median = stats("resolve_with_port", with_port)
    stats("resolve_without_port", no_port)
    stats("resolve_ordinary_address", ordinary)
    per_triple = []
    for _ in range(max(5, args.calls // 1000)):
        batch = [triple() for _ in range(1000)]
        items = [(address(i), at, port) for i, g, at, b, port in batch]
        t = time.perf_counter()
        answers = resolve_events(items)
        per_triple.append((time.perf_counter() - t) / len(items))
        for (i, g, _at, b, _port), item in zip(batch, items, strict=True):
            held = answers[item]
            wrong += held is None or held.customer_id != subscriber(i, b, g)
    stats("resolve_events_batch1000_per_triple", per_triple)
    figure("history_days", (last_end - T0).days, "days")
    figure("wrong_answers", wrong, "count")
    figure("target_median_le_1ms", int(median <= 0.001), "bool")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
