"""How fast customers.resolver answers on PostgreSQL, at 10,000 and at 1,000,000 allocations: resolve(),
one address at a time, and resolve_many(), the bulk form intake actually calls (filing resolves a
chunk of events at once), in batches of 1 and of 1,000 (ip, at) pairs.

    DATABASE_URL=postgres://abusedesk:abusedesk@127.0.0.1:5432/abusedesk .venv/bin/python bench/bench_resolve.py

The script creates its own database on the server named in DATABASE_URL (abusedesk_bench_resolve),
migrates it, loads generated allocations with COPY, and times resolve() and resolve_many() for
random (ip, at) pairs: first with 10,000 allocations, then topped up to 1,000,000 in the same run.
The data is what an ISP has: residential /24 pools with 90 days of /32 lease history per address
(sticky, daily-reconnect and flapping sessions), business IPv4 blocks (some nested inside a pool, some
handed from one customer to another), business IPv6 /48s with /64s inside, and residential IPv6 /64
delegations with history.
Every answer in a sample is checked against a pure-Python reference built from the same rows.

Figures are printed as `name: value unit` lines. resolve_many's are per address: a batch's time divided
by its pairs (pairs are given as filing gives them: canonical ip text, aware instants). Targets (at
1,000,000): resolve() median <= 1 ms, p99 <= 3 ms, median(1M) / median(10k) <= 1.5.
"""

from __future__ import annotations

import argparse
import io
import ipaddress
import os
import random
import re
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "abusedesk_bench_resolve"

DAY = 86400
HOUR = 3600
# The end of the generated history ("now") and its 90-day start; whole minutes, like RADIUS data.
END = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
START = END - 90 * DAY
POOL_FROM = START - 400 * DAY

POOL_CUSTOMER = 1
RESIDENTIAL_CUSTOMERS = 20_000
FIRST_BUSINESS_CUSTOMER = 2 + RESIDENTIAL_CUSTOMERS
POOLS = 80  # more than 1,000,000 rows' worth; the stream is cut at the target size
BUSINESSES = 15_000
V6_DELEGATIONS_PER_POOL = 16


@dataclass(slots=True)
class Row:
    customer_id: int
    network: str
    family: int
    prefixlen: int
    valid_from: int
    valid_to: int | None
    source: str


def figure(name: str, value: float | int, unit: str) -> None:
    text = f"{value:.3f}" if isinstance(value, float) else str(value)
    print(f"{name}: {text} {unit}", flush=True)


def info(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Data


def lease_history(rng: random.Random, network: str, family: int, prefixlen: int, profile: str) -> list[Row]:
    """Back-to-back sessions over the 90 days; the last one may still be open."""
    rows = []
    t = START + rng.randrange(0, DAY // 60) * 60
    customer = rng.randrange(2, 2 + RESIDENTIAL_CUSTOMERS)
    while t < END:
        if profile == "sticky":
            duration = rng.expovariate(1 / (5 * DAY))
        elif profile == "daily":
            duration = DAY + rng.uniform(-HOUR, HOUR)  # the forced 24-hour reconnect
        else:
            duration = rng.expovariate(1 / (6 * HOUR))
        duration = max(60, int(duration) // 60 * 60)
        end: int | None = t + duration
        if end >= END:
            end = None if rng.random() < 0.9 else END
        rows.append(Row(customer, network, family, prefixlen, t, end, "lease"))
        if end is None:
            break
        # Usually re-leased at once (often to someone else); sometimes idle for a while.
        gap = rng.randrange(0, 10) * 60 if rng.random() < 0.7 else rng.randrange(1, 48) * HOUR
        t = end + gap
        if rng.random() < 0.6:
            customer = rng.randrange(2, 2 + RESIDENTIAL_CUSTOMERS)
    return rows


def unit_rows(kind: str, k: int, seed: int) -> list[Row]:
    rng = random.Random(f"{seed}:{kind}:{k}")
    if kind == "pool":
        # A residential /24 pool; .248/29 inside it is a business's static block.
        a, b = divmod(k, 256)
        return [
            Row(POOL_CUSTOMER, f"10.{a}.{b}.0/24", 4, 24, POOL_FROM, None, "pool"),
            Row(
                FIRST_BUSINESS_CUSTOMER + BUSINESSES + k, f"10.{a}.{b}.248/29", 4, 29, START - 30 * DAY, None, "static"
            ),
        ]
    if kind == "host":
        pool, host = divmod(k, 256)
        a, b = divmod(pool, 256)
        profile = rng.choices(["sticky", "daily", "flappy"], weights=[50, 40, 10])[0]
        return lease_history(rng, f"10.{a}.{b}.{host}/32", 4, 32, profile)
    if kind == "v6pool":
        prefix = 0x20010DB8_8000 + k
        rows = [Row(POOL_CUSTOMER, str(ipaddress.IPv6Network((prefix << 80, 48))), 6, 48, POOL_FROM, None, "pool")]
        for i in range(V6_DELEGATIONS_PER_POOL):
            net = str(ipaddress.IPv6Network(((prefix << 80) | (i << 64), 64)))
            rows += lease_history(rng, net, 6, 64, "sticky")
        return rows
    # A business: an IPv4 block from 172.16.0.0/12 (sometimes with a previous holder) and an IPv6
    # /48 from 2001:db8::/33, sometimes with a /64 inside it that belongs to someone else.
    customer = FIRST_BUSINESS_CUSTOMER + k
    size = rng.choice([29, 29, 28, 30, 32])
    base = int(ipaddress.IPv4Address("172.16.0.0")) + k * 16
    v4 = str(ipaddress.IPv4Network((base, size)))
    since = START - rng.randrange(0, 1000) * DAY + rng.randrange(0, DAY // 60) * 60
    if rng.random() < 0.3:
        since = START + rng.randrange(0, 89 * DAY // 60) * 60
    rows = []
    if rng.random() < 0.3:
        previous = FIRST_BUSINESS_CUSTOMER + rng.randrange(BUSINESSES)
        rows.append(Row(previous, v4, 4, size, since - 300 * DAY, since, "static"))
    rows.append(Row(customer, v4, 4, size, since, None, "static"))
    prefix = 0x20010DB8_0000 + k
    rows.append(Row(customer, str(ipaddress.IPv6Network((prefix << 80, 48))), 6, 48, since, None, "static"))
    if rng.random() < 0.5:
        inner = str(ipaddress.IPv6Network(((prefix << 80) | (rng.randrange(1 << 16) << 64), 64)))
        other = FIRST_BUSINESS_CUSTOMER + rng.randrange(BUSINESSES)
        rows.append(Row(other, inner, 6, 64, since + DAY, None, "static"))
    return rows


def generate(total: int, seed: int) -> Iterator[Row]:
    """Exactly `total` rows; units (a pool, one address's history, a business) come in a shuffled order,
    so any prefix of the stream is a smaller ISP of the same shape."""
    units = [("pool", k) for k in range(POOLS)]
    units += [("host", pool * 256 + h) for pool in range(POOLS) for h in range(1, 248)]
    units += [("v6pool", k) for k in range(POOLS)]
    units += [("business", k) for k in range(BUSINESSES)]
    random.Random(seed).shuffle(units)
    emitted = 0
    for kind, k in units:
        for row in unit_rows(kind, k, seed):
            yield row
            emitted += 1
            if emitted == total:
                return
    raise SystemExit(f"the generator ran out at {emitted} rows; raise POOLS")


# ---------------------------------------------------------------------------------------------
# Reference: most specific network valid at `at`, straight from the generated rows


class Reference:
    def __init__(self) -> None:
        self.by_network: dict[str, list[Row]] = {}
        self.rows: dict[str, list[Row]] = {"lease": [], "pool": [], "business4": [], "v6": []}

    def add(self, row: Row) -> None:
        self.by_network.setdefault(row.network, []).append(row)
        if row.family == 6:
            self.rows["v6"].append(row)
        elif row.source == "lease":
            self.rows["lease"].append(row)
        elif row.source == "pool":
            self.rows["pool"].append(row)
        else:
            self.rows["business4"].append(row)

    def resolve(self, ip: str, at: int) -> Row | None:
        addr = ipaddress.ip_address(ip)
        if addr.version == 6 and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        for prefixlen in range(addr.max_prefixlen, -1, -1):
            network = str(ipaddress.ip_network(f"{addr}/{prefixlen}", strict=False))
            valid = [
                r
                for r in self.by_network.get(network, ())
                if r.valid_from <= at and (r.valid_to is None or at < r.valid_to)
            ]
            if valid:
                return max(valid, key=lambda r: r.valid_from)
        return None


def random_address_in(rng: random.Random, network: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    net = ipaddress.ip_network(network)
    return net[rng.randrange(net.num_addresses)]


def draw_queries(rng: random.Random, ref: Reference, count: int) -> list[tuple[str, str, int]]:
    """(kind, ip text, at) pairs aimed at leases, pools, business blocks, IPv6 and misses."""
    out: list[tuple[str, str, int]] = []
    kinds = ["lease", "pool", "business4", "v6", "miss"]
    weights = [40, 15, 15, 15, 15]
    for _ in range(count):
        kind = rng.choices(kinds, weights)[0]
        if kind == "miss" or not ref.rows[kind]:
            choice = rng.randrange(3)
            if choice == 0:
                ip, at = str(ipaddress.IPv4Address(0xC6120000 + rng.randrange(1 << 17))), rng.randrange(START, END)
            elif choice == 1:
                ip, at = str(ipaddress.IPv6Address((0x20010DB9 << 96) | rng.getrandbits(96))), rng.randrange(START, END)
            else:  # a pool address before any pool existed
                ip, at = f"10.0.{rng.randrange(256)}.{rng.randrange(256)}", POOL_FROM - rng.randrange(1, 100) * DAY
            out.append(("miss", ip, at))
            continue
        row = rng.choice(ref.rows[kind])
        until = row.valid_to if row.valid_to is not None else END + 30 * DAY
        edge = rng.random()
        # Edges on purpose: the first second of a period (inclusive) and its end (exclusive).
        if edge < 0.05:
            at = row.valid_from
        elif edge < 0.10 and row.valid_to is not None:
            at = row.valid_to
        else:
            at = rng.randrange(row.valid_from, until)
        addr = random_address_in(rng, row.network)
        ip = str(addr)
        if addr.version == 4 and rng.random() < 0.05:
            ip = f"::ffff:{addr}"
        out.append((kind, ip, at))
    return out


# ---------------------------------------------------------------------------------------------
# Database


def admin_dsn(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def create_database(server_url: str) -> None:
    import psycopg2

    conn = psycopg2.connect(server_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
        cur.execute(f'CREATE DATABASE "{BENCH_DB}"')
    conn.close()


def drop_database(server_url: str) -> None:
    import psycopg2

    conn = psycopg2.connect(server_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    conn.close()


def pg_time(ts: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(ts))


def copy_customers() -> None:
    from django.db import connection

    buf = io.StringIO()
    now = pg_time(END)
    total = FIRST_BUSINESS_CUSTOMER + BUSINESSES + POOLS
    for cid in range(1, total):
        if cid == POOL_CUSTOMER:
            account, kind = "POOL", "business"
        elif cid < FIRST_BUSINESS_CUSTOMER:
            account, kind = f"R{cid:07d}", "residential"
        else:
            account, kind = f"B{cid:07d}", "business"
        buf.write(f"{cid}\t{account}\tCustomer {account}\t{kind}\tgood\t\t{now}\t{now}\n")
    buf.seek(0)
    with connection.cursor() as cur:
        cur.copy_expert(
            "COPY customers_customer (id, account, name, kind, standing, notes, created_at, updated_at) FROM STDIN",
            buf,
        )
        cur.execute(
            "SELECT setval(pg_get_serial_sequence('customers_customer', 'id'), "
            "(SELECT max(id) FROM customers_customer))"
        )


def copy_allocations(rows: list[Row]) -> None:
    from django.db import connection

    now = pg_time(END)
    batch = 200_000
    with connection.cursor() as cur:
        for i in range(0, len(rows), batch):
            buf = io.StringIO()
            for r in rows[i : i + batch]:
                valid_to = pg_time(r.valid_to) if r.valid_to is not None else "\\N"
                buf.write(
                    f"{r.customer_id}\t{r.network}\t{r.family}\t{r.prefixlen}\t{pg_time(r.valid_from)}\t"
                    f"{valid_to}\t{r.source}\t\t{now}\n"
                )
            buf.seek(0)
            cur.copy_expert(
                "COPY customers_allocation (customer_id, network, family, prefixlen, valid_from, valid_to, "
                "source, note, created_at) FROM STDIN",
                buf,
            )
        cur.execute("ANALYZE customers_allocation")
        cur.execute("ANALYZE customers_customer")


# ---------------------------------------------------------------------------------------------
# Measuring


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def measure(label: str, ref: Reference, rng: random.Random, calls: int, check: int) -> tuple[float, int]:
    """Median of `calls` timed resolve() calls, and how many of `check` further calls disagree with ref."""
    from customers.resolver import resolve

    queries = draw_queries(rng, ref, calls + 1000 + check)
    stamps = {at: datetime.fromtimestamp(at, tz=UTC) for _, _, at in queries}
    for _, ip, at in queries[:1000]:  # warm-up: connection, caches, the plan
        resolve(ip, stamps[at])

    timed = queries[1000 : 1000 + calls]
    per_kind: dict[str, list[float]] = {}
    durations = []
    for kind, ip, at in timed:
        when = stamps[at]
        t0 = time.perf_counter()
        resolve(ip, when)
        elapsed = (time.perf_counter() - t0) * 1000
        durations.append(elapsed)
        per_kind.setdefault(kind, []).append(elapsed)
    durations.sort()
    median = statistics.median(durations)
    figure(f"resolve_calls_{label}", len(durations), "count")
    figure(f"resolve_median_{label}", median, "ms")
    figure(f"resolve_p99_{label}", percentile(durations, 0.99), "ms")
    figure(f"resolve_max_{label}", durations[-1], "ms")
    for kind in sorted(per_kind):
        figure(f"resolve_median_{label}_{kind}", statistics.median(per_kind[kind]), "ms")

    mismatches = 0
    sample = queries[1000 + calls :]
    hits = 0
    for kind, ip, at in sample:
        got = resolve(ip, stamps[at])
        want = ref.resolve(ip, at)
        got_key = (got.network, int(got.valid_from.timestamp()), got.customer.pk) if got else None
        want_key = (want.network, want.valid_from, want.customer_id) if want else None
        hits += want is not None
        if got_key != want_key:
            mismatches += 1
            if mismatches <= 5:
                info(f"mismatch {label} {kind} {ip} at {pg_time(at)}: got {got_key}, want {want_key}")
    figure(f"checked_{label}", len(sample), "count")
    figure(f"checked_hits_{label}", hits, "count")
    figure(f"mismatches_{label}", mismatches, "count")
    return median, mismatches


def measure_many(
    label: str, ref: Reference, rng: random.Random, batch: int, batches: int, check: int
) -> tuple[float, int]:
    """resolve_many() in batches of `batch` pairs: the median time per address over `batches` timed
    batches, and how many of `check` further pairs (also sent in batches) disagree with ref."""
    from customers.resolver import normalize_ip, resolve_many

    warm = max(2, 1000 // batch)
    checked = -(-check // batch)
    queries = draw_queries(rng, ref, batch * (warm + batches + checked))
    # As filing passes them: ParsedEvent.ip is canonical text with IPv4-mapped unwrapped.
    pairs = [(kind, str(normalize_ip(ip)), datetime.fromtimestamp(at, tz=UTC)) for kind, ip, at in queries]
    groups = [pairs[i : i + batch] for i in range(0, len(pairs), batch)]
    for group in groups[:warm]:  # warm-up: connection, the candidate cache, plans
        resolve_many([(ip, at) for _, ip, at in group])

    per_address = []
    for group in groups[warm : warm + batches]:
        wanted = [(ip, at) for _, ip, at in group]
        t0 = time.perf_counter()
        resolve_many(wanted)
        per_address.append((time.perf_counter() - t0) * 1000 / len(group))
    per_address.sort()
    median = statistics.median(per_address)
    name = f"resolve_many_batch{batch}"
    figure(f"{name}_batches_{label}", len(per_address), "count")
    figure(f"{name}_median_per_address_{label}", median, "ms")
    figure(f"{name}_p99_per_address_{label}", percentile(per_address, 0.99), "ms")
    if batch > 1:
        figure(f"{name}_median_per_batch_{label}", median * batch, "ms")

    mismatches = 0
    hits = 0
    sample = [p for group in groups[warm + batches :] for p in group]
    for start in range(0, len(sample), batch):
        group = sample[start : start + batch]
        got_all = resolve_many([(ip, at) for _, ip, at in group])
        for kind, ip, at in group:
            got = got_all[(ip, at)]
            want = ref.resolve(ip, int(at.timestamp()))
            got_key = (got.network, int(got.valid_from.timestamp()), got.customer_id) if got else None
            want_key = (want.network, want.valid_from, want.customer_id) if want else None
            hits += want is not None
            if got_key != want_key:
                mismatches += 1
                if mismatches <= 5:
                    info(
                        f"mismatch {name} {label} {kind} {ip} at {at:%Y-%m-%d %H:%M:%S}: got {got_key}, want {want_key}"
                    )
    figure(f"{name}_checked_{label}", len(sample), "count")
    figure(f"{name}_checked_hits_{label}", hits, "count")
    figure(f"{name}_mismatches_{label}", mismatches, "count")
    return median, mismatches


def explain_sample(ref: Reference, rng: random.Random) -> None:
    """EXPLAIN ANALYZE of what resolve() sends, for a late instant on the address with the longest history."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from customers.resolver import resolve

    # The query log (DEBUG) keeps the last 9,000 queries: once full, a capture would see none.
    connection.queries_log.clear()
    network = max((r.network for r in ref.rows["lease"] if r.family == 4), key=lambda n: len(ref.by_network[n]))
    ip = network.split("/")[0]
    at = END - rng.randrange(1, DAY)
    with CaptureQueriesContext(connection) as ctx:
        resolve(ip, datetime.fromtimestamp(at, tz=UTC))
    for q in ctx.captured_queries:
        if q["sql"].startswith("PREPARE"):
            continue
        # A prepared statement may run on a generic plan after five executions: show that one too.
        modes = ["auto", "force_generic_plan"] if q["sql"].startswith("EXECUTE") else ["auto"]
        for mode in modes:
            with connection.cursor() as cur:
                cur.execute(f"SET plan_cache_mode = {mode}")
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + q["sql"])
                plan = "\n".join(r[0] for r in cur.fetchall())
                cur.execute("RESET plan_cache_mode")
            rows = len(ref.by_network[network])
            info(f"EXPLAIN ({mode}) for {ip} ({rows} rows of history) at {pg_time(at)}:\n{plan}")

    from customers.resolver import normalize_ip, resolve_many

    # resolve_many's first query for a batch of 1,000 pairs, as filing sends them.
    pairs = [(str(normalize_ip(ip)), datetime.fromtimestamp(at, tz=UTC)) for _, ip, at in draw_queries(rng, ref, 1000)]
    with CaptureQueriesContext(connection) as ctx:
        resolve_many(pairs)
    with connection.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + ctx.captured_queries[0]["sql"])
        plan = "\n".join(r[0] for r in cur.fetchall())
    # The candidate networks, thousands of them, would bury the plan.
    plan = re.sub(r"'\{[^']{200,}\}'", lambda m: f"'{{... {m.group(0).count(',') + 1} networks}}'", plan)
    info(f"EXPLAIN of resolve_many, 1,000 pairs (query 1 of {len(ctx.captured_queries)}):\n{plan}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=10_000, help="allocations in the first measurement")
    parser.add_argument("--large", type=int, default=1_000_000, help="allocations in the second measurement")
    parser.add_argument("--calls", type=int, default=5000, help="timed calls per size (after 1,000 warm-up calls)")
    parser.add_argument("--check", type=int, default=2000, help="calls checked against the reference per size")
    parser.add_argument(
        "--batch-sizes", default="1,1000", help="resolve_many() batch sizes, comma-separated (pairs per call)"
    )
    parser.add_argument(
        "--batches", type=int, default=20, help="timed resolve_many() batches per size (at least --calls pairs)"
    )
    parser.add_argument("--seed", type=int, default=20261101)
    parser.add_argument("--keep", action="store_true", help=f"keep the {BENCH_DB} database afterwards")
    parser.add_argument(
        "--explain", action="store_true", help="print EXPLAIN ANALYZE of a lease look-up and of a 1,000-pair batch"
    )
    args = parser.parse_args()
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]

    server_url = os.environ.get("DATABASE_URL", "")
    if not server_url.startswith(("postgres://", "postgresql://")):
        print("DATABASE_URL must point at a PostgreSQL server (postgres://user:pass@host:5432/db)", file=sys.stderr)
        return 2
    if args.large <= args.small:
        print("--large must be bigger than --small", file=sys.stderr)
        return 2

    create_database(server_url)
    try:
        os.environ["DATABASE_URL"] = admin_dsn(server_url, BENCH_DB)
        os.environ["DEBUG"] = "true"
        os.environ["DJANGO_SETTINGS_MODULE"] = "abusedesk.settings"
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        copy_customers()

        label = {args.small: "10k", args.large: "1m"}
        rows = generate(args.large, args.seed)
        ref = Reference()
        medians: dict[int, float] = {}
        mismatches: dict[int, int] = {}
        many_medians: dict[tuple[int, int], float] = {}
        loaded = 0
        for size in (args.small, args.large):
            t0 = time.perf_counter()
            chunk = [next(rows) for _ in range(size - loaded)]
            # Written in time order, as lease logs arrive: one address's history is spread over
            # the whole table, not packed into a few heap pages.
            chunk.sort(key=lambda r: r.valid_from)
            for row in chunk:
                ref.add(row)
            generated = time.perf_counter() - t0
            t0 = time.perf_counter()
            copy_allocations(chunk)
            loaded = size
            name = label.get(size, str(size))
            figure(f"generate_{name}", generated, "s")
            figure(f"load_{name}", time.perf_counter() - t0, "s")
            figure(f"allocations_{name}", loaded, "count")
            if args.explain:
                explain_sample(ref, random.Random(args.seed + size))
            medians[size], mismatches[size] = measure(
                name, ref, random.Random(args.seed + size), args.calls, args.check
            )
            for batch in batch_sizes:
                # Enough batches for at least --calls timed addresses, and never fewer than --batches.
                batches = max(args.batches, -(-args.calls // batch))
                many_medians[(batch, size)], missed = measure_many(
                    name, ref, random.Random(args.seed + size + batch), batch, batches, args.check
                )
                mismatches[size] += missed
        figure("resolve_median_ratio_1m_10k", medians[args.large] / medians[args.small], "x")
        for batch in batch_sizes:
            ratio = many_medians[(batch, args.large)] / many_medians[(batch, args.small)]
            figure(f"resolve_many_batch{batch}_median_ratio_1m_10k", ratio, "x")
        figure("mismatches", sum(mismatches.values()), "count")
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(server_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
