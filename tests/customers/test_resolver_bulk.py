"""The bulk look-ups intake calls: resolve_many() answers as resolve() does, are_ours() asks once per
batch, and on PostgreSQL resolve_many's query is served by allocation_resolve_idx (migration 0002)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.models import Allocation
from customers.resolver import are_ours, normalize_ip, resolve, resolve_many
from tests.customers.factories import T0, make_allocation, make_customer

pytestmark = pytest.mark.django_db

TICK = timedelta(microseconds=1)
H = timedelta(hours=1)
D = timedelta(days=1)


@pytest.fixture
def isp():
    """A pool with a business /29 nested in it, leases that end and change hands, an inner block that
    ended, and an IPv6 /48 with a /64 inside that starts later."""
    make_allocation("198.51.100.0/24", customer=make_customer("POOL"), source="pool")
    make_allocation("198.51.100.248/29", customer=make_customer("B-29", kind="business"), valid_from=T0 - 30 * D)
    make_allocation(
        "198.51.100.7/32", customer=make_customer("R-MORNING"), valid_from=T0, valid_to=T0 + 8 * H, source="lease"
    )
    make_allocation(
        "198.51.100.7/32", customer=make_customer("R-EVENING"), valid_from=T0 + 8 * H, valid_to=T0 + D, source="lease"
    )
    make_allocation("198.51.100.16/29", customer=make_customer("B-GONE", kind="business"), valid_to=T0)
    make_allocation("2001:db8:42::/48", customer=make_customer("B-48", kind="business"))
    make_allocation("2001:db8:42:7::/64", customer=make_customer("B-64", kind="business"), valid_from=T0 + D)


# (address as reported, instant, account that held it or None)
CASES = [
    # the /29 inside the /24: the more specific wins, at its edges too
    ("198.51.100.248", T0, "B-29"),
    ("198.51.100.255", T0, "B-29"),
    ("198.51.100.247", T0, "POOL"),
    ("198.51.100.250", T0 - 30 * D - TICK, "POOL"),  # before the /29 began
    ("198.51.100.250", T0 - 30 * D, "B-29"),  # valid_from is inclusive
    # a /32 lease inside the pool, handed over at T0 + 8 h, ended at T0 + 1 d
    ("198.51.100.7", T0 - TICK, "POOL"),
    ("198.51.100.7", T0, "R-MORNING"),
    ("198.51.100.7", T0 + 8 * H - TICK, "R-MORNING"),
    ("198.51.100.7", T0 + 8 * H, "R-EVENING"),  # valid_to is exclusive: the new holder has it
    ("198.51.100.7", T0 + D - TICK, "R-EVENING"),
    ("198.51.100.7", T0 + D, "POOL"),  # the lease ended: back to the pool
    ("::ffff:198.51.100.7", T0 + H, "R-MORNING"),  # IPv4-mapped IPv6 is the IPv4 address
    ("::ffff:198.51.100.250", T0, "B-29"),
    # an inner block that ended at T0
    ("198.51.100.17", T0 - TICK, "B-GONE"),
    ("198.51.100.17", T0, "POOL"),
    # IPv6: the /64 inside the /48 from T0 + 1 d on
    ("2001:db8:42:7::1", T0, "B-48"),
    ("2001:db8:42:7::1", T0 + D, "B-64"),
    ("2001:0db8:0042:0007:ffff:ffff:ffff:ffff", T0 + 2 * D, "B-64"),
    ("2001:db8:42:8::1", T0 + 2 * D, "B-48"),
    ("2001:db8:43::1", T0, None),
    # nobody's
    ("203.0.113.9", T0, None),
    ("198.51.100.7", datetime(2019, 12, 31, tzinfo=UTC), None),  # before the pool existed
]


def _account(held) -> str | None:
    return None if held is None else Allocation.objects.get(pk=held.pk).customer.account


def test_resolve_many_gives_the_same_answers_as_resolve_in_one_query(isp, django_assert_num_queries):
    pairs = [(str(normalize_ip(ip)), at) for ip, at, _ in CASES]
    resolve("198.51.100.1", T0)  # on PostgreSQL resolve() PREPAREs on its first call; not counted below
    with django_assert_num_queries(1):
        got = resolve_many(pairs)
    for (ip, at, account), pair in zip(CASES, pairs, strict=True):
        held = got[pair]
        one = resolve(ip, at)
        assert _account(held) == account, (ip, at)
        assert (held.pk if held else None) == (one.pk if one else None), (ip, at)
        if held:
            assert (held.customer_id, held.network, held.valid_from, held.valid_to) == (
                one.customer_id,
                one.network,
                one.valid_from,
                one.valid_to,
            )


def test_resolve_many_answers_each_pair_once_however_often_it_is_asked(isp):
    pair = ("198.51.100.7", T0 + H)
    got = resolve_many([pair, pair, ("198.51.100.7", T0 + 9 * H), pair])
    assert len(got) == 2
    assert _account(got[pair]) == "R-MORNING"
    assert _account(got[("198.51.100.7", T0 + 9 * H)]) == "R-EVENING"
    assert resolve_many([]) == {}


def test_resolve_many_asks_once_per_500_addresses(django_assert_num_queries):
    pool = make_allocation("10.20.0.0/22", customer=make_customer("POOL"), source="pool")
    lease = make_allocation("10.20.1.44/32", customer=make_customer("R-LEASE"), valid_from=T0, source="lease")
    addresses = [f"10.20.{i // 256}.{i % 256}" for i in range(600)]
    with django_assert_num_queries(2):
        got = resolve_many([(ip, T0 + H) for ip in addresses])
    assert {held.pk for held in got.values()} == {pool.pk, lease.pk}
    assert got[("10.20.1.44", T0 + H)].pk == lease.pk
    assert got[("10.20.1.45", T0 + H)].pk == pool.pk


def test_are_ours_asks_once_for_a_batch_and_returns_the_addresses_as_given(django_assert_num_queries):
    make_allocation("198.51.100.0/24", source="pool")
    make_allocation("192.0.2.8/29", valid_to=T0 - 365 * D)  # ended long ago: it was ours, so it is
    make_allocation("2001:db8:42::/48")
    ours = ["198.51.100.1", "198.51.100.254", "192.0.2.9", "2001:db8:42:ffff::1", "::ffff:198.51.100.9"]
    theirs = ["203.0.113.5", "192.0.2.16", "2001:db8:43::1", "::ffff:203.0.113.5"]
    invalid = ["not an ip", "198.51.100.300", "198.51.100.0/24", ""]
    filler = [f"203.0.113.{i}" for i in range(100, 250)]  # a long free-text message's worth of addresses
    with django_assert_num_queries(1):
        found = are_ours(ours + theirs + invalid + filler)
    assert found == set(ours)


def test_are_ours_asks_once_per_200_addresses(django_assert_num_queries):
    make_allocation("198.51.100.0/24", source="pool")
    with django_assert_num_queries(2):
        found = are_ours([f"198.51.{100 + i // 256}.{i % 256}" for i in range(300)])
    assert found == {f"198.51.100.{i}" for i in range(256)}
    with django_assert_num_queries(0):
        assert are_ours(["not an ip"]) == set()


def _plan_nodes(node: dict):
    yield node
    for child in node.get("Plans", ()):
        yield from _plan_nodes(child)


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="PostgreSQL only: allocation_resolve_idx (customers/0002) is an expression index SQLite does not have",
)
def test_resolve_many_is_served_by_the_resolve_index_on_postgresql():
    # An ISP's shape, small: 16 residential /24 pools, each address with 30 days of daily leases
    # (~123,000 rows), so that a batch names a small part of the table and an index that could not
    # skip ended leases would fetch ~30 rows per address. Written with one INSERT: the factories
    # would take minutes for this many rows, and the rows need no validation to be plans' input.
    pool = make_customer("POOL")
    customers = [make_customer(f"R-{i:03d}") for i in range(20)]
    start = T0 - 30 * D
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO customers_allocation (customer_id, network, family, prefixlen, valid_from, valid_to, "
            "source, note, created_at) "
            "SELECT %s, '10.0.' || p || '.0/24', 4, 24, %s, NULL, 'pool', '', now() FROM generate_series(0, 15) p",
            [pool.pk, start - 365 * D],
        )
        cursor.execute(
            "INSERT INTO customers_allocation (customer_id, network, family, prefixlen, valid_from, valid_to, "
            "source, note, created_at) "
            "SELECT (%s::int[])[1 + (p + h + d) %% 20], '10.0.' || p || '.' || h || '/32', 4, 32, "
            "%s + d * interval '1 day', %s + (d + 1) * interval '1 day', 'lease', '', now() "
            "FROM generate_series(0, 15) p, generate_series(1, 254) h, generate_series(0, 29) d",
            [[c.pk for c in customers], start, start],
        )
        cursor.execute("ANALYZE customers_allocation")
    assert Allocation.objects.count() > 120_000

    # One feed's chunk: 200 of the 4,064 leased addresses, reported within the last hour.
    rng = random.Random(4)
    pairs = [
        (f"10.0.{rng.randrange(16)}.{rng.randrange(1, 255)}", T0 - H + i * timedelta(seconds=15)) for i in range(200)
    ]
    with CaptureQueriesContext(connection) as ctx:
        got = resolve_many(pairs)
    for ip, at in pairs:
        one = resolve(ip, at)
        assert one.prefixlen == 32 and got[(ip, at)].pk == one.pk, (ip, at)

    assert len(ctx.captured_queries) == 1
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + ctx.captured_queries[0]["sql"])
        raw = cursor.fetchone()[0]
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    scans = [n for n in _plan_nodes(plan) if n.get("Relation Name") == "customers_allocation" or "Index Name" in n]
    summary = [(n["Node Type"], n.get("Index Name")) for n in scans]
    assert any(n.get("Index Name") == "allocation_resolve_idx" for n in scans), summary
    assert not any(n["Node Type"] == "Seq Scan" for n in scans), summary
    # The index skips ended leases: the heap is read for the rows valid at each pair's instant, not
    # for the ~6,000 rows of these addresses' 30 days, nor the whole table.
    fetched = sum(n.get("Actual Rows", 0) * n.get("Actual Loops", 1) for n in scans if n["Node Type"] != "Seq Scan")
    assert fetched < 2_000, summary
