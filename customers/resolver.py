"""Who held an IP address at a given instant.

Every network that can cover an address is one of its prefixes: 33 for IPv4, 129 for
IPv6. Allocation.network stores the canonical text of each network, so resolve() asks
for exactly those strings, valid at `at`, most specific first. That is a handful of
index probes on (network, valid_from) whatever the table's size, and it gives the same
answer on SQLite and PostgreSQL because it uses nothing but equality and comparison.

resolve() runs once per reported event, so it is the intake's hot path. bench/bench_resolve.py
measured the ORM version at ~1.5 ms (IPv4) and ~3 ms (IPv6) per call on PostgreSQL, of which
the database was ~0.3 ms: the rest was building the queryset and 129 IPv6Network objects.
Hence the candidate strings are formatted from integers, and the one query is plain SQL
(prepared once per session on PostgreSQL) whose row becomes model instances through Model.from_db.
"""

from __future__ import annotations

import ipaddress
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from django.db import connections, router
from django.db.models import Q
from django.utils import timezone

from customers.models import PORT_MAX, PORT_MIN, Allocation, AllocationSource, Customer

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4_ALL = (1 << 32) - 1
_V6_ALL = (1 << 128) - 1


def normalize_ip(ip: str | IPAddress) -> IPAddress:
    """An address object; IPv4-mapped IPv6 (::ffff:198.51.100.7) becomes IPv4. Raises ValueError."""
    addr = (
        ip if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address) else ipaddress.ip_address(str(ip).strip())
    )
    if addr.version == 6 and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _v6_text(value: int) -> str:
    """The same text as str(IPv6Address(value)): RFC 5952, the longest run (>= 2) of zero groups as '::'."""
    groups = [(value >> shift) & 0xFFFF for shift in (112, 96, 80, 64, 48, 32, 16, 0)]
    best_start, best_len, start, length = -1, 0, -1, 0
    for i, group in enumerate(groups):
        if group == 0:
            if length == 0:
                start = i
            length += 1
            if length > best_len:
                best_start, best_len = start, length
        else:
            length = 0
    if best_len < 2:
        return ":".join(f"{g:x}" for g in groups)
    head = ":".join(f"{g:x}" for g in groups[:best_start])
    tail = ":".join(f"{g:x}" for g in groups[best_start + best_len :])
    return f"{head}::{tail}"


def candidate_networks(addr: IPAddress) -> list[str]:
    """The canonical text of every network containing addr, most specific first."""
    value = int(addr)
    out = []
    if addr.version == 4:
        for prefixlen in range(32, -1, -1):
            net = value & (_V4_ALL ^ ((1 << (32 - prefixlen)) - 1))
            out.append(f"{net >> 24}.{(net >> 16) & 255}.{(net >> 8) & 255}.{net & 255}/{prefixlen}")
        return out
    # Clearing one more low bit often leaves the network address unchanged: format each once.
    text = ""
    previous = -1
    for prefixlen in range(128, -1, -1):
        net = value & (_V6_ALL ^ ((1 << (128 - prefixlen)) - 1))
        if net != previous:
            text, previous = _v6_text(net), net
        out.append(f"{text}/{prefixlen}")
    return out


_ALLOCATION_FIELDS = list(Allocation._meta.concrete_fields)
_CUSTOMER_FIELDS = list(Customer._meta.concrete_fields)


@lru_cache(maxsize=16)
def _resolve_sql(alias: str, networks: str, at: str, ports: tuple[str, str], tag: int | None = None) -> str:
    """SELECT of the best allocation (and its customer); `networks` is the condition on the network
    column ({col} stands for it), `at` the placeholder of the instant, `ports` those of the port range
    the allocation must cover (0..65535: whole addresses only; p..p: a port block holding port p). With
    a tag, the row starts with that number (to tell the parts of a UNION apart)."""
    postgresql = connections[alias].vendor == "postgresql"
    qn = connections[alias].ops.quote_name
    a, c = qn(Allocation._meta.db_table), qn(Customer._meta.db_table)
    # The same conditions as AllocationQuerySet.valid_at(): valid_from inclusive, valid_to exclusive.
    # The candidates are served by the allocation_unique_start index on (network, valid_from). The
    # customer is joined to the one chosen row only: joined before the LIMIT, PostgreSQL planned a
    # hash join over the whole customer table for IPv6's 129 candidates.
    alloc_cols = ", ".join(qn(f.column) for f in _ALLOCATION_FIELDS)
    # On PostgreSQL, written exactly as the expression of allocation_resolve_idx (migration 0002),
    # so that ended periods are rejected inside the index rather than by reading each row.
    if postgresql:
        ends_after = f"COALESCE({qn('valid_to')}, 'infinity'::timestamptz) > {at}"
    else:
        ends_after = f"({qn('valid_to')} IS NULL OR {qn('valid_to')} > {at})"
    columns = [f"best.{qn(f.column)}" for f in _ALLOCATION_FIELDS] + [f"{c}.{qn(f.column)}" for f in _CUSTOMER_FIELDS]
    if tag is not None:
        columns.insert(0, str(tag))
    return (
        f"SELECT {', '.join(columns)} FROM ("
        f"SELECT {alloc_cols} FROM {a} WHERE {networks.format(col=qn('network'))} AND {qn('valid_from')} <= {at} "
        f"AND {ends_after} AND {qn('port_from')} <= {ports[0]} AND {qn('port_to')} >= {ports[1]} "
        f"ORDER BY {qn('prefixlen')} DESC, {qn('valid_from')} DESC LIMIT 1"
        f") best INNER JOIN {c} ON {c}.{qn('id')} = best.{qn('customer_id')}"
    )


# On PostgreSQL the statement is prepared once per database session: planning a 129-element IN
# list cost more than running it (~0.5 ms of ~0.9 ms for IPv6, bench/bench_resolve.py). PREPARE is
# not undone by a rollback, so a session that has it keeps it until it disconnects.
# Two statements: the whole-address look-up, and the same with the port block of a CGNAT address in
# one round trip (both look-ups are index probes; a second round trip cost as much as both).
_PREPARED_NAME = "abusedesk_resolve_v2"
_PREPARED_BLOCK = "abusedesk_resolve_block_v2"
_prepared_sessions: weakref.WeakSet = weakref.WeakSet()


def _whole_and_block_sql(alias: str, whole: str, block: str, at: str, port: str) -> str:
    # SELECT * FROM (...): SQLite takes no parentheses around the parts of a UNION.
    return (
        f"SELECT * FROM ({_resolve_sql(alias, whole, at, (str(PORT_MIN), str(PORT_MAX)), tag=0)}) w UNION ALL "
        f"SELECT * FROM ({_resolve_sql(alias, block, at, (port, port), tag=1)}) b"
    )


def _execute_postgresql(cursor, alias: str, raw_connection, candidates: list[str], when: Any, port) -> None:
    if raw_connection not in _prepared_sessions:
        sql = _resolve_sql(alias, "{col} = ANY($1)", "$2", (str(PORT_MIN), str(PORT_MAX)), tag=0)
        cursor.execute(f"PREPARE {_PREPARED_NAME} (text[], timestamptz) AS {sql}")
        sql = _whole_and_block_sql(alias, "{col} = ANY($1)", "{col} = $3", "$2", "$4")
        cursor.execute(f"PREPARE {_PREPARED_BLOCK} (text[], timestamptz, text, integer) AS {sql}")
        _prepared_sessions.add(raw_connection)
    if port is None:
        cursor.execute(f"EXECUTE {_PREPARED_NAME} (%s, %s)", [candidates, when])
    else:
        cursor.execute(f"EXECUTE {_PREPARED_BLOCK} (%s, %s, %s, %s)", [candidates, when, candidates[0], port])


Converter = Callable[[Any, Any, Any], Any]
_converters: dict[str, list[list[tuple[Converter, Any]]]] = {}


def _row_converters(alias: str) -> list[list[tuple[Converter, Any]]]:
    """Per column, what the backend does to a raw value (SQLite returns datetimes as text)."""
    found = _converters.get(alias)
    if found is None:
        connection = connections[alias]
        found = []
        for model, fields in ((Allocation, _ALLOCATION_FIELDS), (Customer, _CUSTOMER_FIELDS)):
            for field in fields:
                col = field.get_col(model._meta.db_table)
                convs = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
                found.append([(conv, col) for conv in convs])
        _converters[alias] = found
    return found


# Why a CGNAT address resolved to its pool rather than to a subscriber (Allocation.resolution_note).
NO_PORT = "CGNAT address and the report gives no source port: ask the reporter for it"


def no_block(port: int) -> str:
    return f"CGNAT address: no subscriber's port block held source port {port} then"


def resolve(ip: str | IPAddress, at: datetime | None = None, port: int | None = None) -> Allocation | None:
    """The allocation (customer loaded) that held ip at instant at, or None.

    valid_from is inclusive, valid_to exclusive. The most specific network wins. An address of a
    CGNAT pool is shared: with the source port, the subscriber's port block answers; without it (or
    when no block held that port) the pool's allocation does, its resolution_note saying why.
    """
    if at is None:
        at = timezone.now()
    if timezone.is_naive(at):
        raise ValueError("resolve() needs an aware datetime")
    candidates = candidate_networks(normalize_ip(ip))
    found = _lookup(candidates, at, port)
    allocation = found.get(0)
    if allocation is None or allocation.source != AllocationSource.CGNAT_POOL:
        return allocation
    if port is None:
        allocation.resolution_note = NO_PORT
        return allocation
    block = found.get(1)
    if block is None:
        allocation.resolution_note = no_block(port)
        return allocation
    block.pool = allocation
    return block


def _lookup(candidates: list[str], at: datetime, port: int | None) -> dict[int, Allocation]:
    """{0: the best whole-address allocation, 1: the port block holding `port` on the address itself}."""
    alias = router.db_for_read(Allocation)
    connection = connections[alias]
    # Adapted exactly as the ORM adapts a DateTimeField lookup (SQLite stores naive UTC text).
    when = connection.ops.adapt_datetimefield_value(at)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            _execute_postgresql(cursor, alias, connection.connection, candidates, when, port)
        else:
            whole = "{col} IN (" + ", ".join(["%s"] * len(candidates)) + ")"
            if port is None:
                sql = _resolve_sql(alias, whole, "%s", (str(PORT_MIN), str(PORT_MAX)), tag=0)
                cursor.execute(sql, [*candidates, when, when])
            else:
                sql = _whole_and_block_sql(alias, whole, "{col} = %s", "%s", "%s")
                cursor.execute(sql, [*candidates, when, when, candidates[0], when, when, port, port])
        rows = cursor.fetchall()
    found: dict[int, Allocation] = {}
    converters = _row_converters(alias)
    split = len(_ALLOCATION_FIELDS)
    for tag, *values in rows:
        for i, column_converters in enumerate(converters):
            for convert, col in column_converters:
                values[i] = convert(values[i], col, connection)
        allocation = Allocation.from_db(alias, [f.attname for f in _ALLOCATION_FIELDS], values[:split])
        allocation.customer = Customer.from_db(alias, [f.attname for f in _CUSTOMER_FIELDS], values[split:])
        found[tag] = allocation
    return found


def history(ip: str | IPAddress, limit: int = 50) -> list[Allocation]:
    """Every allocation that ever covered ip, newest first, most specific first."""
    addr = normalize_ip(ip)
    return list(
        Allocation.objects.filter(network__in=candidate_networks(addr))
        .select_related("customer")
        .order_by("-valid_from", "-prefixlen")[:limit]
    )


# --- in bulk: what intake calls ---------------------------------------------------------------


@lru_cache(maxsize=65536)
def _candidates(ip: str) -> tuple[str, ...]:
    # A feed names the same addresses again and again; their prefixes never change.
    return tuple(candidate_networks(normalize_ip(ip)))


class Held(NamedTuple):
    """Who held an address: the allocation's id and its customer's, without loading models."""

    pk: int
    customer_id: int
    network: str
    valid_from: datetime
    valid_to: datetime | None
    source: str = ""
    # Why a CGNAT address went to its pool, not to a subscriber (see resolve()).
    note: str = ""


_HELD_COLUMNS = ("id", "customer_id", "network", "valid_from", "valid_to", "source")


def _rows_covering(networks: list[str], lo: datetime, hi: datetime) -> Iterable[tuple]:
    """Allocations of exactly these networks whose period meets [lo, hi] (SQLite's bulk look-up)."""
    return (
        Allocation.objects.using(router.db_for_read(Allocation))
        .filter(network__in=networks, valid_from__lte=hi)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=lo))
        .whole_address()
        .order_by()
        .values_list(*_HELD_COLUMNS)
    )


@lru_cache(maxsize=4)
def _best_many_sql(alias: str) -> str:
    """PostgreSQL: per pair, resolve()'s own look-up (its candidates, its instant, LIMIT 1), for a
    whole chunk in one statement.

    One IN list for the whole chunk, with the chunk's earliest and latest instants, does not use the
    index: the planner assumes each of the chunk's ~10,000 candidate networks exists (most do not), so
    it expects most of the table and reads all of it (~650 ms per 1,000 pairs at 1,000,000 rows,
    bench/bench_resolve.py), and the wide time window brings back every lease between those instants.
    A LATERAL subquery with LIMIT 1 is one small index probe per pair on allocation_resolve_idx,
    whose period end is written here exactly as in its expression (migration 0002).
    """
    qn = connections[alias].ops.quote_name
    columns = ", ".join(qn(c) for c in _HELD_COLUMNS)
    return (
        f"SELECT q.n, best.* FROM unnest(%s::text[], %s::timestamptz[]) WITH ORDINALITY AS q(cands, at, n) "
        f"CROSS JOIN LATERAL (SELECT {columns} FROM {qn(Allocation._meta.db_table)} "
        f"WHERE {qn('network')} = ANY(string_to_array(q.cands, ' ')) AND {qn('valid_from')} <= q.at "
        f"AND COALESCE({qn('valid_to')}, 'infinity'::timestamptz) > q.at "
        f"AND {qn('port_from')} <= {PORT_MIN} AND {qn('port_to')} >= {PORT_MAX} "
        f"ORDER BY {qn('prefixlen')} DESC, {qn('valid_from')} DESC LIMIT 1) best"
    )


# Pairs per statement of _resolve_many_postgresql (and at most for best_many_statement).
BEST_MANY_PAIRS = 500


def best_many_statement(pairs: list[tuple[str, datetime]]) -> tuple[str, list]:
    """PostgreSQL: resolve_many's statement for up to BEST_MANY_PAIRS distinct (ip, at) pairs, for a
    caller that runs it inside a bigger statement (filing, as a CTE of its duplicate look-up). Its rows
    are (n, id, customer_id, network, valid_from, valid_to, source); n is the pair's 1-based position.
    Read them back with held_from_rows()."""
    if len(pairs) > BEST_MANY_PAIRS:
        raise ValueError(f"at most {BEST_MANY_PAIRS} pairs per statement")
    # Candidate networks never contain a space: one string per pair, split again in SQL.
    cands = [" ".join(_candidates(ip)) for ip, _ in pairs]
    return _best_many_sql(router.db_for_read(Allocation)), [cands, [at for _, at in pairs]]


def held_from_rows(pairs: list[tuple[str, datetime]], rows: Iterable[tuple]) -> dict[tuple[str, datetime], Held | None]:
    """resolve_many's answer from best_many_statement's rows."""
    out: dict[tuple[str, datetime], Held | None] = dict.fromkeys(pairs)
    for n, *row in rows:
        out[pairs[n - 1]] = Held(*row)
    return out


def _resolve_many_postgresql(alias: str, pairs: list[tuple[str, datetime]]) -> dict[tuple[str, datetime], Held | None]:
    out: dict[tuple[str, datetime], Held | None] = {}
    for start in range(0, len(pairs), BEST_MANY_PAIRS):
        chunk = pairs[start : start + BEST_MANY_PAIRS]
        sql, params = best_many_statement(chunk)
        with connections[alias].cursor() as cursor:
            cursor.execute(sql, params)
            out.update(held_from_rows(chunk, cursor.fetchall()))
    return out


def resolve_many(pairs: Iterable[tuple[str, datetime]]) -> dict[tuple[str, datetime], Held | None]:
    """resolve() for many (ip, at) pairs with one query per 500 addresses instead of one per pair.

    The same rule as resolve(): valid_from inclusive, valid_to exclusive, most specific first.
    ip must already be normalised (str(normalize_ip(ip))); at must be aware.
    """
    pairs = list(dict.fromkeys(pairs))
    alias = router.db_for_read(Allocation)
    if connections[alias].vendor == "postgresql":
        return _resolve_many_postgresql(alias, pairs)
    out: dict[tuple[str, datetime], Held | None] = {}
    by_ip: dict[str, list[datetime]] = defaultdict(list)
    for ip, at in pairs:
        by_ip[ip].append(at)
    ips = list(by_ip)
    for start in range(0, len(ips), 500):
        chunk = ips[start : start + 500]
        cands = {ip: _candidates(ip) for ip in chunk}
        times = [t for ip in chunk for t in by_ip[ip]]
        nets = sorted({n for c in cands.values() for n in c})
        by_net: dict[str, list[Held]] = defaultdict(list)
        for row in _rows_covering(nets, min(times), max(times)):
            by_net[row[2]].append(Held(*row))
        for ip in chunk:
            for at in by_ip[ip]:
                out[(ip, at)] = _best(cands[ip], by_net, at)
    return out


def resolve_events(
    items: Iterable[tuple[str, datetime, int | None]],
    *,
    base: dict[tuple[str, datetime], Held | None] | None = None,
) -> dict[tuple[str, datetime, int | None], Held | None]:
    """resolve_many() for (ip, at, port) triples, with resolve()'s CGNAT rule: on a pool's address the
    port block that held the port answers; without a port, or without a block, the pool does, with a note.

    `base`: resolve_many's answer for these pairs when the caller already has it (held_from_rows).
    """
    items = list(dict.fromkeys(items))
    if base is None:
        base = resolve_many((ip, at) for ip, at, _ in items)
    out: dict[tuple[str, datetime, int | None], Held | None] = {}
    wanted: list[tuple[str, datetime, int]] = []
    for ip, at, port in items:
        held = base[(ip, at)]
        if held is not None and held.source == AllocationSource.CGNAT_POOL:
            if port is None:
                held = held._replace(note=NO_PORT)
            else:
                wanted.append((ip, at, port))
                held = held._replace(note=no_block(port))
        out[(ip, at, port)] = held
    if wanted:
        out.update(_port_blocks(wanted))
    return out


def _port_blocks(items: list[tuple[str, datetime, int]]) -> dict[tuple[str, datetime, int], Held]:
    """The port block that held each (ip, at, port), where one did."""
    alias = router.db_for_read(Allocation)
    found: dict[tuple[str, datetime, int], Held] = {}
    if connections[alias].vendor == "postgresql":
        qn = connections[alias].ops.quote_name
        columns = ", ".join(qn(c) for c in _HELD_COLUMNS)
        # One backward probe per item on allocation_resolve_idx (network, valid_from, end, ports).
        sql = (
            f"SELECT q.n, best.* FROM unnest(%s::text[], %s::timestamptz[], %s::int[]) WITH ORDINALITY "
            f"AS q(net, at, port, n) CROSS JOIN LATERAL (SELECT {columns} FROM {qn(Allocation._meta.db_table)} "
            f"WHERE {qn('network')} = q.net AND {qn('valid_from')} <= q.at "
            f"AND COALESCE({qn('valid_to')}, 'infinity'::timestamptz) > q.at "
            f"AND {qn('port_from')} <= q.port AND {qn('port_to')} >= q.port "
            f"ORDER BY {qn('valid_from')} DESC LIMIT 1) best"
        )
        for start in range(0, len(items), 500):
            chunk = items[start : start + 500]
            with connections[alias].cursor() as cursor:
                cursor.execute(
                    sql, [[_candidates(i)[0] for i, _, _ in chunk], [a for _, a, _ in chunk], [p for *_, p in chunk]]
                )
                for n, *row in cursor.fetchall():
                    found[chunk[n - 1]] = Held(*row)
        return found
    for ip, at, port in items:
        row = (
            Allocation.objects.using(alias)
            .filter(network=_candidates(ip)[0], port_from__lte=port, port_to__gte=port)
            .valid_at(at)
            .order_by("-valid_from")
            .values_list(*_HELD_COLUMNS)
            .first()
        )
        if row is not None:
            found[(ip, at, port)] = Held(*row)
    return found


def _best(candidates: tuple[str, ...], by_net: dict[str, list[Held]], at: datetime) -> Held | None:
    for net in candidates:  # most specific first
        for row in by_net.get(net, ()):
            if row.valid_from <= at and (row.valid_to is None or row.valid_to > at):
                return row
    return None


def are_ours(ips: Iterable[str]) -> set[str]:
    """The addresses (as given) that any allocation, at any time, covers. Invalid text is not ours.

    One query per 200 addresses: parsers rank candidate addresses with it, in one call per message.
    """
    ours: set[str] = set()
    valid = []
    for ip in dict.fromkeys(ips):
        try:
            valid.append((ip, _candidates(str(ip))))
        except ValueError:
            continue
    for start in range(0, len(valid), 200):
        chunk = valid[start : start + 200]
        wanted = {n for _, cands in chunk for n in cands}
        nets = set(
            Allocation.objects.filter(network__in=wanted).order_by().values_list("network", flat=True).distinct()
        )
        ours.update(ip for ip, cands in chunk if nets.intersection(cands))
    return ours


def covered_statement(ips: list[str]) -> tuple[str, list]:
    """PostgreSQL: are_ours() for a caller that runs it inside a bigger statement (filing, in its
    look-up's round trip). Its rows are (n): the 1-based positions in `ips` (valid addresses) that
    any allocation, at any time, covers. One probe of the network index per address."""
    qn = connections[router.db_for_read(Allocation)].ops.quote_name
    sql = (
        "SELECT q.n FROM unnest(%s::text[]) WITH ORDINALITY AS q(cands, n) WHERE EXISTS "
        f"(SELECT 1 FROM {qn(Allocation._meta.db_table)} WHERE {qn('network')} = ANY(string_to_array(q.cands, ' ')))"
    )
    return sql, [[" ".join(_candidates(ip)) for ip in ips]]


def is_ours(ip: str) -> bool:
    """Whether any allocation, at any time, covers ip."""
    return bool(are_ours([ip]))


def resolution_json(ip: str, at: datetime, allocation: Allocation | None, port: int | None = None) -> dict[str, Any]:
    """Who held ip at at (and port), as `resolve_ip --json` prints it and the API's /resolve answers.

    On a CGNAT pool's address without a matching port block, the customer is the pool's holder and
    `note` says why (no port given, or no block held that port); otherwise `note` is "".
    """
    customer = allocation.customer if allocation is not None else None
    return {
        "ip": ip,
        "at": at.isoformat(),
        "port": port,
        "note": allocation.resolution_note if allocation is not None else "",
        "customer": (
            {"account": customer.account, "name": customer.name, "kind": customer.kind}
            if customer is not None
            else None
        ),
        "allocation": (
            {
                "network": allocation.network,
                "valid_from": allocation.valid_from.isoformat(),
                "valid_to": allocation.valid_to.isoformat() if allocation.valid_to else None,
                "source": allocation.source,
                "port_from": allocation.port_from,
                "port_to": allocation.port_to,
            }
            if allocation is not None
            else None
        ),
    }
