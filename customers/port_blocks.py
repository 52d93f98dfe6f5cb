"""CGNAT port-block logs: which subscriber held which source ports of a public address, when.

Carrier-grade NAT hands each subscriber a block of source ports on a shared public address for a
while (bulk port allocation). The NAT logs one line per block assignment; the desk imports them as
port-block allocations (AllocationSource.PORT_BLOCK): the public address as a /32 or /128 with
port_from..port_to, so customers.resolver.resolve(ip, at, port) finds the subscriber.

The CSV (UTF-8, with a header line, columns in any order):

    ip,port_from,port_to,account,start,stop
    100.64.0.0 is never right here: ip is the PUBLIC address, inside a CGNAT pool allocation.

`stop` is empty while the block is held. Times are ISO 8601, UTC when they carry no zone.

Like the lease import: a block is keyed on (address, first port, start); seen before for the same
account it is unchanged, or updated when the file now has the stop of a block that was open; for
another account, or overlapping another block of the same ports, the row is rejected with its line
number and why. A block on an address outside every CGNAT pool is rejected (resolve() only looks
for blocks on a pool's addresses). Rows are written in batches, each in one short transaction;
created blocks carry the note "port-block import #<run>", ended ones get an AllocationChange.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from datetime import datetime

from django.db import transaction
from django.db.models import Q

from customers.imports import (
    ImportSummary,
    Progress,
    Rejected,
    RowError,
    Source,
    _open_binary,
    _rows,
    count_rows,
    parse_time,
)
from customers.models import (
    PORT_MAX,
    PORT_MIN,
    Allocation,
    AllocationChange,
    AllocationSource,
    Customer,
    ImportRun,
)
from customers.resolver import candidate_networks, normalize_ip

PORT_BLOCK_COLUMNS = ("ip", "port_from", "port_to", "account", "start", "stop")
BATCH_ROWS = 5_000

Key = tuple[str, int, datetime]  # (network, port_from, valid_from)


def _port(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise RowError(f"{what} {text!r} is not a port number") from None
    if not PORT_MIN <= value <= PORT_MAX:
        raise RowError(f"{what} {value} is outside {PORT_MIN}–{PORT_MAX}")
    return value


def _address(text: str) -> str:
    if "%" in text:
        raise RowError(f"ip {text!r} carries an IPv6 zone id, which names an interface, not a public address")
    if "/" in text:
        raise RowError(f"ip {text!r} is a network; a port block is on one public address")
    try:
        addr = normalize_ip(text)
    except ValueError:
        raise RowError(f"ip {text!r} is not an IPv4 or IPv6 address") from None
    return str(ipaddress.ip_network(addr))


def parse_row(values: list[str]) -> tuple[str, int, int, str, datetime, datetime | None]:
    ip_text, from_text, to_text, account, start_text, stop_text = values
    if any("\x00" in v for v in values):
        raise RowError("the row contains a NUL byte")
    network = _address(ip_text)
    port_from, port_to = _port(from_text, "port_from"), _port(to_text, "port_to")
    if port_from > port_to:
        raise RowError(f"port_from {port_from} is after port_to {port_to}")
    if (port_from, port_to) == (PORT_MIN, PORT_MAX):
        raise RowError("a block of every port is the whole address: allocate it, not a port block")
    if not account:
        raise RowError("account is empty")
    if not start_text:
        raise RowError("start is empty")
    start = parse_time(start_text, "start")
    stop = parse_time(stop_text, "stop") if stop_text else None
    if stop is not None and stop <= start:
        raise RowError(f"stop {stop_text} is not after start {start_text}")
    return network, port_from, port_to, account, start, stop


class _Job:
    def __init__(self, run: ImportRun, summary: ImportSummary, on_reject: Rejected | None) -> None:
        self.run = run
        self.summary = summary
        self.on_reject = on_reject
        self.label = f"port-block import #{run.pk}"
        self.customer_ids: dict[str, int] = {}
        self.in_pool: dict[str, bool] = {}

    def reject(self, line: int, reason: str) -> None:
        self.summary.reject(line, reason)
        if self.on_reject:
            self.on_reject(line, reason)

    def load(self, rows: list[tuple]) -> None:
        accounts = {r[4] for r in rows} - self.customer_ids.keys()
        if accounts:
            self.customer_ids.update(Customer.objects.filter(account__in=accounts).values_list("account", "pk"))
        unknown = {r[1] for r in rows} - self.in_pool.keys()
        if unknown:
            wanted = {net: candidate_networks(ipaddress.ip_network(net).network_address) for net in unknown}
            pools = set(
                Allocation.objects.filter(
                    network__in={n for c in wanted.values() for n in c}, source=AllocationSource.CGNAT_POOL
                ).values_list("network", flat=True)
            )
            self.in_pool.update({net: bool(pools.intersection(c)) for net, c in wanted.items()})

    def apply(self, rows: list[tuple]) -> None:
        """One batch: check every row against the database and the batch, then write it at once."""
        self.load(rows)
        nets = {r[1] for r in rows}
        earliest = min(r[5] for r in rows)
        with transaction.atomic():
            # The blocks of these addresses that a row of the batch could meet: open ones and those
            # ending after the batch's first start. Locked, so two imports of one log do not race.
            held = defaultdict(list)
            for alloc in (
                Allocation.objects.select_for_update()
                .filter(network__in=nets, source=AllocationSource.PORT_BLOCK)
                .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=earliest))
            ):
                held[alloc.network].append(alloc)
            new: list[Allocation] = []
            ended: list[tuple[Allocation, dict]] = []
            for line, network, port_from, port_to, account, start, stop in rows:
                customer_id = self.customer_ids.get(account)
                if customer_id is None:
                    self.reject(line, f"unknown account {account}")
                    continue
                if not self.in_pool[network]:
                    self.reject(line, f"{network.split('/')[0]} is not in a CGNAT pool: add the pool allocation first")
                    continue
                same = next((a for a in held[network] if a.port_from == port_from and a.valid_from == start), None)
                if same is not None:
                    self._seen_again(line, same, customer_id, port_to, stop, ended)
                    continue
                clash = next(
                    (
                        a
                        for a in held[network]
                        if a.port_from <= port_to
                        and a.port_to >= port_from
                        and (a.valid_to is None or a.valid_to > start)
                        and (stop is None or a.valid_from < stop)
                    ),
                    None,
                )
                if clash is not None:
                    self.reject(
                        line,
                        f"ports {port_from}–{port_to} of {network.split('/')[0]} overlap the block "
                        f"{clash.port_from}–{clash.port_to} held from {clash.valid_from.isoformat()}",
                    )
                    continue
                block = Allocation(
                    customer_id=customer_id,
                    network=network,
                    family=4 if ":" not in network else 6,
                    prefixlen=32 if ":" not in network else 128,
                    port_from=port_from,
                    port_to=port_to,
                    valid_from=start,
                    valid_to=stop,
                    source=AllocationSource.PORT_BLOCK,
                    note=self.label,
                )
                held[network].append(block)
                new.append(block)
            Allocation.objects.bulk_create(new, batch_size=1000)
            for alloc, _ in ended:
                Allocation.objects.filter(pk=alloc.pk).update(valid_to=alloc.valid_to)
            AllocationChange.objects.bulk_create(
                AllocationChange(
                    allocation=alloc,
                    network=alloc.network,
                    action=AllocationChange.Action.UPDATED,
                    actor_label=self.label,
                    old=old,
                    new=alloc.snapshot(),
                )
                for alloc, old in ended
            )
        self.summary.created += len(new)
        self.summary.updated += len(ended)

    def _seen_again(self, line, same: Allocation, customer_id, port_to, stop, ended) -> None:
        if same.customer_id != customer_id or same.port_to != port_to:
            self.reject(
                line,
                f"the block {same.port_from}–{same.port_to} of {same.network.split('/')[0]} from "
                f"{same.valid_from.isoformat()} is already another subscriber's or another size",
            )
        elif same.valid_to is None and stop is not None and same.pk is not None:
            old = same.snapshot()
            same.valid_to = stop
            ended.append((same, old))
        elif same.valid_to == stop or same.pk is None:
            self.summary.unchanged += 1
        else:
            self.reject(line, f"the block already ended at {same.valid_to.isoformat()}; the file says {stop}")


def import_port_blocks(
    source: Source,
    run: ImportRun,
    *,
    progress: Progress | None = None,
    on_reject: Rejected | None = None,
) -> ImportSummary:
    """Port blocks from ip,port_from,port_to,account,start,stop (see the module's docstring)."""
    summary = ImportSummary(total_rows=count_rows(source))
    job = _Job(run, summary, on_reject)
    pending: list[tuple] = []

    def flush() -> None:
        if pending:
            job.apply(pending)
            pending.clear()
        summary.processed = summary.created + summary.updated + summary.unchanged + summary.rejected
        if progress:
            progress(summary.processed, summary.total_rows)

    with _open_binary(source) as fh:
        for line, values in _rows(fh, PORT_BLOCK_COLUMNS, job.reject):
            try:
                pending.append((line, *parse_row(values)))
            except RowError as exc:
                job.reject(line, str(exc))
                continue
            if len(pending) >= BATCH_ROWS:
                flush()
    flush()
    return summary
