"""CSV imports of customers/allocations and of RADIUS/DHCP lease logs.

Both imports share one shape: read the file line by line as bytes, decode each line on its
own (so one line of Latin-1 rejects that line, not the file), check every row, write what is
new or changed, and keep counters on the ImportRun as they go so the admin can show progress.
A bad row is rejected with its line number and a reason and never stops the rest; only a file
that cannot be opened or read, or whose header is not the expected one, fails the whole run.

Allocation files (customers, contacts, networks; tens of thousands of rows) are checked on the
text first (the checks full_clean would make, networks parsed once with ipaddress), then in
batches of ALLOCATION_BATCH_ROWS against the customers, contacts and allocations the batch locks,
read as tuples in one query per table; the batch's new and changed rows and their AllocationChange
rows are written with one statement per table (PostgreSQL: INSERT/UPDATE from unnest() of one
array per column; elsewhere bulk_create/bulk_update). A batch the database refuses (a concurrent
writer got there first) goes through the allocation services row by row instead.

Lease files are big (a million sessions a day is normal for a mid-size ISP), so they are checked
in memory against the existing allocations of the same addresses and written in batches:
PostgreSQL gets COPY (from a writer thread, so Python and the server work at once), other
databases bulk_create. Audit: every lease an import ends or changes gets its AllocationChange
row (old and new); the leases it creates are audited by their ImportRun instead — each carries
the note "lease import #<run id>", and the run records who, when, which file and the counts.
One AllocationChange per created lease doubled the write cost and put the import over its
time budget (60 s for a million rows on two cores).

Entry points: execute(run, source, ...) runs a whole import for an ImportRun (status,
counters, errors) and is what the management commands and the Celery task call;
import_allocations() and import_leases() do the row work.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import ipaddress
import json
import os
import queue
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import BinaryIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import JSONField
from django.utils import timezone

from abusedesk.lib import dates
from customers import services
from customers.models import (
    PORT_MAX,
    PORT_MIN,
    Allocation,
    AllocationChange,
    AllocationSource,
    Contact,
    Customer,
    CustomerKind,
    ImportRun,
    parse_network,
)

ALLOCATION_COLUMNS = ("account", "name", "kind", "email", "network", "valid_from", "valid_to")
LEASE_COLUMNS = ("ip", "account", "start", "stop")
# ImportRun.errors keeps the first rejections only, so one broken 1M-row file cannot make
# a multi-megabyte JSON value that the admin page then has to load and render.
MAX_STORED_ERRORS = 1000
LEASE_BATCH_ROWS = 50_000
# Allocation rows are checked in memory and written in batches this big (bulk look-ups, bulk
# writes, audit rows in bulk): 60,000 rows one by one through the services took 284 s.
ALLOCATION_BATCH_ROWS = 2000

Progress = Callable[[int, int], None]  # (processed rows, total rows; 0 when unknown)
Rejected = Callable[[int, str], None]  # (line number, reason)
Source = str | os.PathLike | BinaryIO


class ImportFileError(Exception):
    """The file as a whole cannot be read: missing, unreadable, or not the expected columns."""


class RowError(Exception):
    """One row is rejected; the message is the reason shown to the user."""


@dataclass
class ImportSummary:
    total_rows: int = 0
    processed: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: list[dict] = field(default_factory=list)

    def reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_STORED_ERRORS:
            self.errors.append({"line": line, "reason": reason})

    def as_text(self) -> str:
        return (
            f"{self.processed} rows: {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.rejected} rejected"
        )


# --- reading ---------------------------------------------------------------------------


@contextmanager
def _open_binary(source: Source) -> Iterator[BinaryIO]:
    if isinstance(source, str | os.PathLike):
        try:
            fh = open(source, "rb")  # noqa: SIM115 - closed below, errors become ImportFileError
        except OSError as exc:
            raise ImportFileError(f"Cannot open {os.fspath(source)}: {exc.strerror or exc}") from None
        try:
            yield fh
        finally:
            fh.close()
    else:
        yield source


def count_rows(source: Source) -> int:
    """Data rows in the file (lines less the header), cheaply, for the progress bar; 0 if unknown."""
    with _open_binary(source) as fh:
        if not fh.seekable():
            return 0
        start = fh.tell()
        lines = 0
        last = b"\n"
        try:
            while block := fh.read(1 << 20):
                lines += block.count(b"\n")
                last = block[-1:]
        except OSError as exc:
            raise ImportFileError(f"Cannot read the file: {exc.strerror or exc}") from None
        finally:
            fh.seek(start)
        if last != b"\n":
            lines += 1
        return max(0, lines - 1)


def _split(text: str) -> list[str]:
    # Most lines have no quotes at all; str.split is several times faster than csv for them.
    if '"' not in text:
        return [part.strip() for part in text.split(",")]
    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise RowError(f"malformed CSV quoting ({exc})") from None
    return [part.strip() for part in rows[0]] if rows else []


def _rows(fh: BinaryIO, columns: tuple[str, ...], reject: Rejected) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) for each data row with the right column count, in the order of `columns`.

    Rows that cannot be decoded or split, have too few or too many fields, or hold a NUL byte go to
    `reject`. Blank lines are skipped.
    """
    order: list[int] | None = None
    lineno = 0
    try:
        for raw in fh:
            lineno += 1
            if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                if order is None:
                    raise ImportFileError(f"Line {lineno} (the header) is not valid UTF-8.") from None
                reject(lineno, f"not valid UTF-8 (byte {exc.start + 1} of the line)")
                continue
            if not text.strip():
                continue
            try:
                fields = _split(text)
            except RowError as exc:
                if order is None:
                    raise ImportFileError(f"Line {lineno} (the header) is not valid CSV: {exc}") from None
                reject(lineno, str(exc))
                continue
            if order is None:
                order = _header_order(fields, columns)
                continue
            if len(fields) != len(order):
                reject(lineno, f"expected {len(order)} columns, found {len(fields)}")
                continue
            values = [fields[i] for i in order]
            if "\x00" in text:
                # PostgreSQL text cannot hold NUL: written, it would fail the batch (and the same
                # file again on every re-run). Refused here, it costs only this row.
                column = next((columns[i] for i, value in enumerate(values) if "\x00" in value), "the row")
                reject(lineno, f"{column} contains a NUL byte")
                continue
            yield lineno, values
    except OSError as exc:
        raise ImportFileError(f"Cannot read the file after line {lineno}: {exc.strerror or exc}") from None


def _header_order(header: list[str], columns: tuple[str, ...]) -> list[int]:
    names = [name.strip().lower() for name in header]
    missing = [c for c in columns if c not in names]
    extra = [n for n in names if n not in columns]
    if missing or extra or len(set(names)) != len(names):
        detail = []
        if missing:
            detail.append("missing " + ", ".join(missing))
        if extra:
            detail.append("unexpected " + ", ".join(repr(n) for n in extra))
        if len(set(names)) != len(names):
            detail.append("repeated column names")
        raise ImportFileError(f"The header must be {','.join(columns)} ({'; '.join(detail)}).")
    return [names.index(c) for c in columns]


def parse_time(text: str, what: str) -> datetime:
    """An aware UTC datetime from ISO 8601; a time without a zone is UTC (abusedesk.lib.dates)."""
    try:
        return dates.parse_iso(text)
    except ValueError as exc:
        raise RowError(f"{what} {exc}") from None


def _validation_text(exc: ValidationError) -> str:
    return " ".join(exc.messages)


# --- running an ImportRun ----------------------------------------------------------------


def _save_counters(run: ImportRun, summary: ImportSummary, **extra) -> None:
    values = {
        "total_rows": max(summary.total_rows, summary.processed),
        "processed_rows": summary.processed,
        "created": summary.created,
        "updated": summary.updated,
        "unchanged": summary.unchanged,
        "rejected": summary.rejected,
        "errors": summary.errors,
        **extra,
    }
    # A conditional UPDATE, not save(): the run row may be read by the admin meanwhile, and
    # the file field must not be rewritten.
    ImportRun.objects.filter(pk=run.pk).update(**values)
    for name, value in values.items():
        setattr(run, name, value)


def execute(
    run: ImportRun,
    source: Source,
    *,
    progress: Progress | None = None,
    on_reject: Rejected | None = None,
) -> ImportSummary:
    """Run the import `run.kind` from `source` (a path or a binary file), recording everything on `run`.

    Raises ImportFileError (after marking the run failed) when the file cannot be read.
    """
    from customers.port_blocks import import_port_blocks  # it builds on this module's readers

    importer = {ImportRun.Kind.LEASES: import_leases, ImportRun.Kind.PORT_BLOCKS: import_port_blocks}.get(
        run.kind, import_allocations
    )
    _save_counters(run, ImportSummary(), status=ImportRun.Status.RUNNING, error="")
    try:
        summary = importer(source, run, progress=progress, on_reject=on_reject)
    except ImportFileError as exc:
        ImportRun.objects.filter(pk=run.pk).update(
            status=ImportRun.Status.FAILED, error=str(exc), finished_at=timezone.now()
        )
        run.status, run.error = ImportRun.Status.FAILED, str(exc)
        raise
    except Exception as exc:
        # Anything unexpected still leaves the run in a final state for the admin page.
        ImportRun.objects.filter(pk=run.pk).update(
            status=ImportRun.Status.FAILED, error=f"Internal error: {exc!r}", finished_at=timezone.now()
        )
        raise
    _save_counters(run, summary, status=ImportRun.Status.DONE, finished_at=timezone.now())
    return summary


def _actor_label(run: ImportRun) -> str:
    return f"{run.get_kind_display().split(' ')[0].lower()} import #{run.pk}"


# --- customers and allocations -----------------------------------------------------------


def import_allocations(
    source: Source,
    run: ImportRun,
    *,
    progress: Progress | None = None,
    on_reject: Rejected | None = None,
) -> ImportSummary:
    """Customers, contacts and allocations from account,name,kind,email,network,valid_from,valid_to.

    Per row: the customer is created, or its name/kind updated when given and different; the email
    becomes a Contact if the customer has none with that address; the network (if any) becomes an
    allocation (source=import) matched on (network, valid_from) — or, when valid_from is empty, on
    the customer's current allocation of that network — so the same file twice changes nothing.
    A row counts as created when its allocation (or, without a network, its customer) is new,
    updated when anything else changed, unchanged otherwise. The row is all or nothing.
    """
    summary = ImportSummary(total_rows=count_rows(source))
    now = timezone.now()  # one "now" for the run, so empty valid_from means the same instant throughout
    label = _actor_label(run)
    actor = run.started_by

    def reject(line: int, reason: str) -> None:
        summary.reject(line, reason)
        if on_reject:
            on_reject(line, reason)

    def count(outcome: str) -> None:
        setattr(summary, outcome, getattr(summary, outcome) + 1)

    def flush(batch: list[tuple[int, list[str]]]) -> None:
        _import_allocation_batch(batch, now=now, actor=actor, label=label, count=count, reject=reject)
        summary.processed = summary.created + summary.updated + summary.unchanged + summary.rejected
        _save_counters(run, summary)
        if progress:
            progress(summary.processed, summary.total_rows)

    batch: list[tuple[int, list[str]]] = []
    with _open_binary(source) as fh:
        for lineno, values in _rows(fh, ALLOCATION_COLUMNS, reject):
            batch.append((lineno, values))
            if len(batch) >= ALLOCATION_BATCH_ROWS:
                flush(batch)
                batch = []
    if batch:
        flush(batch)
    summary.processed = summary.created + summary.updated + summary.unchanged + summary.rejected
    if progress:
        progress(summary.processed, summary.total_rows)
    return summary


@dataclass(slots=True)
class _AllocationRow:
    """One allocation-file row, checked: what it asks for, before anything is looked up."""

    line: int
    account: str
    name: str
    kind: str
    email: str
    network: str | None
    valid_from: datetime | None
    valid_to: datetime | None
    from_text: str


_KINDS = frozenset(CustomerKind.values)  # CustomerKind.values builds a new list on every access
# validate_email's own two patterns, compiled once: an address matching both is one validate_email
# accepts, without its lazy-object look-ups (a third of the row check); any other address gets
# validate_email's own verdict (its IP-literal and allow-list forms included).
_EMAIL_USER = re.compile(validate_email.user_regex.pattern, validate_email.user_regex.flags)
_EMAIL_DOMAIN = re.compile(validate_email.domain_regex.pattern, validate_email.domain_regex.flags)


def _min_prefix(version: int) -> int:
    if version == 4:
        return getattr(settings, "ALLOCATION_MIN_PREFIX_V4", 8)
    return getattr(settings, "ALLOCATION_MIN_PREFIX_V6", 16)


def _allocation_network(text: str) -> str:
    """The canonical network of a row's `network` field, checked once with ipaddress (RowError if not).

    A zone id names an interface on someone's own machine, and a network broader than the
    settings' minimum prefix (0.0.0.0/0, ::/0, a /4) is a typo or an attack: allocated, it would make
    every address in it resolve to one customer.
    """
    if "%" in text:
        raise RowError(f"network {text!r} carries an IPv6 zone id, which names an interface, not a network")
    try:
        net = parse_network(text)
    except ValidationError as exc:
        raise RowError(_validation_text(exc)) from None
    widest = _min_prefix(net.version)
    if net.prefixlen < widest:
        raise RowError(
            f"network {net} is broader than /{widest}, the widest IPv{net.version} allocation the desk accepts"
        )
    return str(net)


def _check_allocation_row(values: list[str], *, now: datetime, line: int = 0) -> _AllocationRow:
    """The checks a row passes on its own (RowError otherwise); the database is not asked.

    These are the checks full_clean() would make of the customer, contact and allocation (lengths,
    choices, email, network, end after start), done once on the text instead of on model instances.
    """
    account, name, kind, email, network_text, from_text, to_text = values
    if not account:
        raise RowError("account is empty")
    if len(account) > 64:
        raise RowError("account is longer than 64 characters")
    if len(name) > 200:
        raise RowError("name is longer than 200 characters")
    if kind:
        kind = kind.lower()
        if kind not in _KINDS:
            raise RowError(f"kind {kind!r} is not one of {', '.join(CustomerKind.values)}")
    if email:
        if len(email) > 254:  # Contact.email's column; validate_email allows up to 320
            raise RowError("email is longer than 254 characters")
        user, _, domain = email.rpartition("@")
        if not (user and _EMAIL_USER.match(user) and _EMAIL_DOMAIN.match(domain)):
            try:
                validate_email(email)
            except ValidationError:
                raise RowError(f"email {email!r} is not a valid address") from None
    network = None
    if network_text:
        network = _allocation_network(network_text)
    elif from_text or to_text:
        raise RowError("valid_from/valid_to given without a network")
    valid_from = parse_time(from_text, "valid_from") if from_text else None
    valid_to = parse_time(to_text, "valid_to") if to_text else None
    if valid_to is not None and valid_to <= (valid_from or now):
        raise RowError(f"valid_to {to_text} is not after valid_from {from_text or '(now)'}")
    return _AllocationRow(line, account, name, kind, email, network, valid_from, valid_to, from_text)


def _import_allocation_row(values: list[str], *, now: datetime, actor, label: str) -> str:
    """One row through the allocation services (locks, full_clean, audit row): the slow path, for
    a batch that could not be written at once."""
    row = _check_allocation_row(values, now=now)
    account, name, kind, email = row.account, row.name, row.kind, row.email
    network, valid_from, valid_to = row.network, row.valid_from, row.valid_to

    created = updated = False
    try:
        with transaction.atomic():
            customer = Customer.objects.select_for_update().filter(account=account).first()
            if customer is None:
                if not name:
                    raise RowError(f"unknown account {account} and no name to create it with")
                customer = Customer.objects.create(account=account, name=name, kind=kind or CustomerKind.RESIDENTIAL)
                created = network is None
            else:
                # Empty name/kind mean "not given" for an existing customer: a partial file
                # (account + network only) must not blank names or flip business customers.
                changed = []
                if name and customer.name != name:
                    customer.name = name
                    changed.append("name")
                if kind and customer.kind != kind:
                    customer.kind = kind
                    changed.append("kind")
                if changed:
                    customer.save(update_fields=[*changed, "updated_at"])
                    updated = True
            if email and not Contact.objects.filter(customer=customer, email__iexact=email).exists():
                Contact.objects.create(customer=customer, email=email)
                updated = updated or not created
            if network is not None:
                allocation_outcome = _upsert_allocation(
                    customer, network, valid_from, valid_to, now=now, actor=actor, label=label
                )
                if allocation_outcome == "created":
                    created = True
                elif allocation_outcome == "updated":
                    updated = True
    except ValidationError as exc:
        raise RowError(_validation_text(exc)) from None
    if created:
        return "created"
    return "updated" if updated else "unchanged"


def _upsert_allocation(
    customer: Customer,
    network: str,
    valid_from: datetime | None,
    valid_to: datetime | None,
    *,
    now: datetime,
    actor,
    label: str,
) -> str:
    if valid_from is not None:
        existing = Allocation.objects.select_related("customer").filter(network=network, valid_from=valid_from).first()
    else:
        # No start given means "from now": match the customer's current allocation of the
        # network, or a second run would start a new one (and clash with the first).
        existing = (
            Allocation.objects.select_related("customer")
            .filter(network=network, customer=customer)
            .valid_at(now)
            .order_by("-valid_from")
            .first()
        )
    if existing is None:
        services.create_allocation(
            customer=customer,
            network=network,
            valid_from=valid_from or now,
            valid_to=valid_to,
            source=AllocationSource.IMPORT,
            actor=actor,
            actor_label=label,
        )
        return "created"
    if existing.customer_id != customer.pk:
        raise RowError(
            f"{network} from {existing.valid_from.isoformat()} is already allocated to {existing.customer.account}"
        )
    if existing.valid_to == valid_to:
        return "unchanged"
    if valid_to is not None and valid_to <= existing.valid_from:
        raise RowError(f"valid_to {valid_to.isoformat()} is not after the allocation's start")
    services.update_allocation(existing, valid_to=valid_to, actor=actor, actor_label=label)
    return "updated"


def _import_allocation_batch(
    batch: list[tuple[int, list[str]]],
    *,
    now: datetime,
    actor,
    label: str,
    count: Callable[[str], None],
    reject: Rejected,
) -> None:
    """A batch of allocation rows: decided in memory against the rows it locks, written in bulk.

    The same rules and messages as the row-by-row services: each row is all or nothing (a row's
    customer, contact and allocation are written only when the whole row passed), later rows see
    what earlier rows of the file did, and every created or changed allocation gets its
    AllocationChange. A batch the database refuses (a concurrent writer) goes row by row.
    """
    checked: list[_AllocationRow] = []
    for line, values in batch:
        try:
            checked.append(_check_allocation_row(values, now=now, line=line))
        except RowError as exc:
            reject(line, str(exc))
    if not checked:
        return
    try:
        with transaction.atomic():
            outcomes = _AllocationBatch(checked, now=now, actor=actor, label=label).run()
    except (IntegrityError, ValidationError):
        for row in checked:
            values = [row.account, row.name, row.kind, row.email, row.network or "", row.from_text, ""]
            values[6] = row.valid_to.isoformat() if row.valid_to else ""
            try:
                count(_import_allocation_row(values, now=now, actor=actor, label=label))
            except RowError as exc:
                reject(row.line, str(exc))
        return
    for row, outcome in outcomes:
        if isinstance(outcome, RowError):
            reject(row.line, str(outcome))
        else:
            count(outcome)


# Set-based reads and writes for the batch: tuples in, tuples out, no model instance per row. On
# PostgreSQL each is one statement per table and batch, whatever its size: one array per column,
# unnest()ed. Each array goes as one '{...}' literal, which the server reads with array_in; a list
# (ARRAY[...] of one parameter per value) made the INSERT of 2,000 customers take 70 ms instead of
# 45. Elsewhere the ORM's bulk operations, portable and fast enough for SQLite.


def _array_text(value: str) -> str:
    if "\\" in value or '"' in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{value}"'


def _array_element(field) -> Callable[[object], str]:
    """How one value of `field` is written inside a PostgreSQL array literal."""
    if field.is_relation:
        field = field.target_field
    if isinstance(field, JSONField):
        return lambda value: "NULL" if value is None else _array_text(json.dumps(value))
    kind = field.get_internal_type()
    if kind == "DateTimeField":
        # Most times of a batch are the same few (its "now", the file's starts): format each once.
        formatted: dict[datetime, str] = {}

        def element(value) -> str:
            if value is None:
                return "NULL"
            text = formatted.get(value)
            if text is None:
                text = formatted[value] = f'"{value.isoformat()}"'
            return text

        return element
    if kind == "BooleanField":
        return lambda value: "NULL" if value is None else ("t" if value else "f")
    if kind.endswith(("IntegerField", "AutoField")):
        return lambda value: "NULL" if value is None else str(int(value))
    return lambda value: "NULL" if value is None else _array_text(str(value))


def _pg_array(model, name: str, values) -> tuple[str, str]:
    """(placeholder, parameter) for the column `name` of model as one array: `%s::type[]`, '{...}'."""
    field = model._meta.get_field(name)
    # The column's own type, except text for varchar(n): a cast to varchar(n) silently cuts an
    # over-long value, where the column itself refuses it.
    db_type = field.db_type(connection)
    if db_type.startswith("varchar"):
        db_type = "text"
    if db_type == "text" and all(type(value) is str for value in values):
        # Names, emails, networks: nearly always plain text, quoted all at once.
        body = '","'.join(values)
        if "\\" not in body and body.count('"') == 2 * (len(values) - 1):
            return "%s::text[]", '{"' + body + '"}'
    element = _array_element(field)
    return f"%s::{db_type}[]", "{" + ",".join(map(element, values)) + "}"


def _fetch(model, columns: tuple[str, ...], key: str, values, *, lock: bool = False) -> list[tuple]:
    """`columns` of model's rows whose `key` is one of `values`, in primary key order (FOR UPDATE with lock).

    On PostgreSQL a join with the list, not `IN (...)`: while an import fills the table its
    statistics still say "empty", and a sequential scan comparing every row with a 2,000-item
    list made each batch slower than the one before (60,000 rows took 149 s).
    """
    values = sorted(values)
    if not values:
        return []
    if connection.vendor != "postgresql":
        query = model._default_manager.filter(**{f"{key}__in": values}).order_by("pk")
        if lock:
            query = query.select_for_update()
        return list(query.values_list(*columns))
    meta, qn = model._meta, connection.ops.quote_name
    select = ", ".join(f"t.{qn(meta.get_field(name).column)}" for name in columns)
    placeholder, array = _pg_array(model, key, values)
    sql = (
        f"SELECT {select} FROM {qn(meta.db_table)} AS t "
        f"JOIN unnest({placeholder}) AS v(value) ON t.{qn(meta.get_field(key).column)} = v.value "
        f"ORDER BY t.{qn(meta.pk.column)}"
    )
    if lock:
        sql += " FOR UPDATE OF t"
    with connection.cursor() as cursor:
        cursor.execute(sql, [array])
        return cursor.fetchall()


def _insert(model, columns: tuple[str, ...], rows: list[tuple], *, returning: tuple[str, ...] = ()) -> list[tuple]:
    """INSERT `rows` (tuples in the order of `columns`); the model's other columns get their defaults.

    With `returning`, (id, *those columns) of every inserted row, in no promised order.
    """
    if not rows:
        return []
    meta = model._meta
    if connection.vendor != "postgresql":
        objs = [model(**dict(zip(columns, row, strict=True))) for row in rows]
        model._default_manager.bulk_create(objs, batch_size=500)
        return [(obj.pk, *(getattr(obj, name) for name in returning)) for obj in objs]
    qn = connection.ops.quote_name
    names = list(columns)
    columns_values = list(zip(*rows, strict=True))
    for model_field in meta.concrete_fields:
        if model_field.primary_key or model_field.attname in columns:
            continue
        default = model_field.get_default()
        names.append(model_field.attname)
        columns_values.append([default.value if isinstance(default, Enum) else default] * len(rows))
    arrays = [_pg_array(model, name, values) for name, values in zip(names, columns_values, strict=True)]
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(meta.get_field(name).column) for name in names)}) "
        f"SELECT * FROM unnest({', '.join(placeholder for placeholder, _ in arrays)})"
    )
    if returning:
        sql += f" RETURNING {', '.join(qn(meta.get_field(name).column) for name in ('id', *returning))}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [array for _, array in arrays])
        return cursor.fetchall() if returning else []


def _update(model, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """UPDATE `columns` of the rows given as (pk, *values)."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        objs = [model(pk=row[0], **dict(zip(columns, row[1:], strict=True))) for row in rows]
        model._default_manager.bulk_update(objs, columns, batch_size=500)
        return
    meta, qn = model._meta, connection.ops.quote_name
    names = ("id", *columns)
    arrays = [_pg_array(model, name, values) for name, values in zip(names, zip(*rows, strict=True), strict=True)]
    sets = ", ".join(f"{qn(meta.get_field(name).column)} = v.c{i}" for i, name in enumerate(names) if i)
    sql = (
        f"UPDATE {qn(meta.db_table)} AS t SET {sets} "
        f"FROM unnest({', '.join(placeholder for placeholder, _ in arrays)}) "
        f"AS v({', '.join(f'c{i}' for i in range(len(names)))}) WHERE t.{qn(meta.pk.column)} = v.c0"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [array for _, array in arrays])


class _Customer:
    """A customer as the batch sees it: a locked row (pk set) or one this batch creates."""

    __slots__ = ("pk", "account", "name", "kind")

    def __init__(self, pk: int | None, account: str, name: str, kind: str) -> None:
        self.pk, self.account, self.name, self.kind = pk, account, name, kind


class _Held:
    """A whole-address allocation of one network: a locked row (pk set) or one this batch creates."""

    __slots__ = ("pk", "account", "network", "valid_from", "valid_to", "source", "note")

    def __init__(self, pk, account: str, network: str, valid_from: datetime, valid_to, source: str, note: str):
        self.pk, self.account, self.network = pk, account, network
        self.valid_from, self.valid_to, self.source, self.note = valid_from, valid_to, source, note

    def snapshot(self) -> dict:
        """Allocation.snapshot(), for the audit rows."""
        return {
            "customer": self.account,
            "network": self.network,
            "valid_from": self.valid_from.isoformat(),
            "valid_to": self.valid_to.isoformat() if self.valid_to else None,
            "source": self.source,
            "note": self.note,
        }


class _AllocationBatch:
    def __init__(self, rows: list[_AllocationRow], *, now: datetime, actor, label: str) -> None:
        self.rows = rows
        self.now = now
        user = actor if getattr(actor, "is_authenticated", False) else None
        self.actor_id = user.pk if user else None
        self.label = label or (user.get_username() if user else "system")
        # Locked as the services lock them: the customers by account, the allocations by network.
        self.customers: dict[str, _Customer] = {
            account: _Customer(pk, account, name, kind)
            for pk, account, name, kind in _fetch(
                Customer, ("id", "account", "name", "kind"), "account", {r.account for r in rows}, lock=True
            )
        }
        accounts = {c.pk: c.account for c in self.customers.values()}
        # (account, lower-cased email) of every contact, known or added by this batch.
        self.contacts: set[tuple[str, str]] = {
            (accounts[customer_id], email.lower())
            for customer_id, email in _fetch(Contact, ("customer_id", "email"), "customer_id", accounts)
        }
        networks = {r.network for r in rows if r.network}
        locked = _fetch(
            Allocation,
            ("id", "customer_id", "network", "valid_from", "valid_to", "source", "note", "port_from", "port_to"),
            "network",
            networks,
            lock=True,
        )
        holders = {row[1] for row in locked} - accounts.keys()
        accounts.update(_fetch(Customer, ("id", "account"), "id", holders))
        self.held: dict[str, list[_Held]] = {network: [] for network in networks}
        for pk, customer_id, network, start, stop, source, note, port_from, port_to in locked:
            if (port_from, port_to) == (PORT_MIN, PORT_MAX):  # port blocks never clash with an import's networks
                self.held[network].append(_Held(pk, accounts[customer_id], network, start, stop, source, note))
        self.new_customers: list[_Customer] = []
        self.changed_customers: dict[str, _Customer] = {}
        self.new_contacts: list[tuple[str, str]] = []  # (account, email as written)
        self.new_allocations: list[_Held] = []
        self.ended: dict[int, tuple[_Held, dict]] = {}  # pk -> (allocation, its snapshot before)

    def run(self) -> list[tuple[_AllocationRow, str | RowError]]:
        outcomes = []
        for row in self.rows:
            try:
                outcomes.append((row, self._row(row)))
            except RowError as exc:
                outcomes.append((row, exc))
        self._write()
        return outcomes

    def _row(self, row: _AllocationRow) -> str:
        # Decide everything first, change the in-memory state only when the row passes.
        customer = self.customers.get(row.account)
        creating = customer is None
        changes = {}
        if creating:
            if not row.name:
                raise RowError(f"unknown account {row.account} and no name to create it with")
            customer = _Customer(None, row.account, row.name, row.kind or CustomerKind.RESIDENTIAL.value)
        else:
            # Empty name/kind mean "not given" for an existing customer: a partial file
            # (account + network only) must not blank names or flip business customers.
            if row.name and customer.name != row.name:
                changes["name"] = row.name
            if row.kind and customer.kind != row.kind:
                changes["kind"] = row.kind
        email = row.email.lower()
        email_new = bool(email) and (row.account, email) not in self.contacts
        allocation_outcome = "unchanged"
        plan = None
        if row.network is not None:
            allocation_outcome, plan = self._allocation(row)

        # The row passed: apply it.
        if creating:
            self.customers[row.account] = customer
            self.new_customers.append(customer)
        elif changes:
            for name, value in changes.items():
                setattr(customer, name, value)
            if customer.pk is not None:  # one this batch creates is written with its last values
                self.changed_customers[row.account] = customer
        if email_new:
            self.new_contacts.append((row.account, row.email))
            self.contacts.add((row.account, email))
        if plan is not None:
            plan()
        if creating or allocation_outcome == "created":
            return "created"
        return "updated" if (changes or email_new or allocation_outcome == "updated") else "unchanged"

    def _allocation(self, row: _AllocationRow) -> tuple[str, Callable[[], None] | None]:
        held = self.held[row.network]
        account = row.account
        if row.valid_from is not None:
            existing = next((a for a in held if a.valid_from == row.valid_from), None)
        else:
            # No start given means "from now": match the customer's current allocation of the
            # network, or a second run would start a new one (and clash with the first).
            now = self.now
            current = [
                a
                for a in held
                if a.account == account and a.valid_from <= now and (a.valid_to is None or a.valid_to > now)
            ]
            existing = max(current, key=lambda a: a.valid_from) if current else None
        if existing is None:
            allocation = _Held(
                None, account, row.network, row.valid_from or self.now, row.valid_to, AllocationSource.IMPORT.value, ""
            )
            self._refuse_overlap(allocation, held, skip=None)

            def plan() -> None:
                held.append(allocation)
                self.new_allocations.append(allocation)

            return "created", plan
        if existing.account != account:
            raise RowError(
                f"{row.network} from {existing.valid_from.isoformat()} is already allocated to {existing.account}"
            )
        if existing.valid_to == row.valid_to:
            return "unchanged", None
        if row.valid_to is not None and row.valid_to <= existing.valid_from:
            raise RowError(f"valid_to {row.valid_to.isoformat()} is not after the allocation's start")
        probe = _Held(existing.pk, account, existing.network, existing.valid_from, row.valid_to, "", "")
        self._refuse_overlap(probe, held, skip=existing)

        def plan() -> None:
            if existing.pk is not None and existing.pk not in self.ended:
                self.ended[existing.pk] = (existing, existing.snapshot())
            existing.valid_to = row.valid_to

        return "updated", plan

    @staticmethod
    def _refuse_overlap(allocation: _Held, held: list[_Held], *, skip: _Held | None) -> None:
        # Allocation.clean()'s rule and message, against the locked rows and this batch's own.
        for other in held:
            if other is skip:
                continue
            if other.valid_to is not None and other.valid_to <= allocation.valid_from:
                continue
            if allocation.valid_to is not None and other.valid_from >= allocation.valid_to:
                continue
            until = other.valid_to.strftime("%Y-%m-%d %H:%M") if other.valid_to else "open"
            raise RowError(
                f"{allocation.network} is already allocated to {other.account} for an overlapping "
                f"period ({other.valid_from:%Y-%m-%d %H:%M} – {until})."
            )

    def _write(self) -> None:
        now = self.now
        if self.new_customers:
            created = _insert(
                Customer,
                ("account", "name", "kind", "created_at", "updated_at"),
                [(c.account, c.name, c.kind, now, now) for c in self.new_customers],
                returning=("account",),
            )
            ids = {account: pk for pk, account in created}
            for customer in self.new_customers:
                customer.pk = ids[customer.account]
        _update(
            Customer,
            ("name", "kind", "updated_at"),
            [(c.pk, c.name, c.kind, now) for c in self.changed_customers.values()],
        )
        customers = self.customers
        _insert(
            Contact,
            ("customer_id", "email"),
            [(customers[account].pk, email) for account, email in self.new_contacts],
        )
        if self.new_allocations:
            created = _insert(
                Allocation,
                ("customer_id", "network", "family", "prefixlen", "valid_from", "valid_to", "source", "created_at"),
                [
                    (
                        customers[a.account].pk,
                        a.network,
                        6 if ":" in a.network else 4,
                        int(a.network.rpartition("/")[2]),
                        a.valid_from,
                        a.valid_to,
                        a.source,
                        now,
                    )
                    for a in self.new_allocations
                ],
                returning=("network", "valid_from"),
            )
            ids = {(network, start): pk for pk, network, start in created}
            for allocation in self.new_allocations:
                allocation.pk = ids[allocation.network, allocation.valid_from]
        created_action, updated_action = AllocationChange.Action.CREATED.value, AllocationChange.Action.UPDATED.value
        audit = [(a.pk, a.network, created_action, None, a.snapshot()) for a in self.new_allocations]
        ended = []
        for allocation, old in self.ended.values():
            new = allocation.snapshot()
            if new != old:  # a later row may have put the end back
                ended.append((allocation.pk, allocation.valid_to))
                audit.append((allocation.pk, allocation.network, updated_action, old, new))
        _update(Allocation, ("valid_to",), ended)
        _insert(
            AllocationChange,
            ("allocation_id", "network", "action", "old", "new", "actor_id", "actor_label", "at"),
            [(*change, self.actor_id, self.label, now) for change in audit],
        )


# --- leases ------------------------------------------------------------------------------


class _Lease:
    """One allocation of one address, as the lease import sees it (disjoint per address)."""

    __slots__ = ("start", "stop", "customer_id", "pk", "line")

    def __init__(self, start: datetime, stop: datetime | None, customer_id: int, pk: int | None, line: int = 0):
        self.start = start
        self.stop = stop
        self.customer_id = customer_id
        self.pk = pk
        self.line = line


class _Address:
    """The allocations of one /32 or /128, sorted by start. `starts` mirrors `leases` for bisect."""

    __slots__ = ("starts", "leases")

    def __init__(self) -> None:
        self.starts: list[datetime] = []
        self.leases: list[_Lease] = []


class _Stream:
    """A read()-able view of an iterator of strings, so COPY streams while Python formats."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines

    def read(self, size: int = -1) -> str:
        out: list[str] = []
        length = 0
        for line in self.lines:
            out.append(line)
            length += len(line)
            if 0 <= size <= length:
                break
        return "".join(out)


class _LeaseImport:
    def __init__(self, run: ImportRun, summary: ImportSummary, on_reject: Rejected | None) -> None:
        self.run = run
        self.summary = summary
        self.on_reject = on_reject
        self.label = _actor_label(run)
        self.note = f"lease import #{run.pk}"
        self.actor_id = run.started_by_id
        self.addresses: dict[str, _Address] = {}
        self.ip_cache: dict[str, str | RowError] = {}
        self.customer_ids: dict[str, int | None] = {}
        self.accounts: dict[int, str] = {}
        # Per batch: new leases (network, lease) and persisted leases whose stop changed.
        self.creates: list[tuple[str, _Lease]] = []
        self.updates: dict[int, tuple[str, _Lease]] = {}
        self.use_copy = connection.vendor == "postgresql"
        self.writer: _Writer | None = None

    def reject(self, line: int, reason: str) -> None:
        self.summary.reject(line, reason)
        if self.on_reject:
            self.on_reject(line, reason)

    # parsing

    def network_of(self, text: str) -> str:
        cached = self.ip_cache.get(text)
        if cached is None:
            cached = self._parse_ip(text)
            if len(self.ip_cache) < 1_000_000:
                self.ip_cache[text] = cached
        if isinstance(cached, RowError):
            raise cached
        return cached

    @staticmethod
    def _parse_ip(text: str) -> str | RowError:
        if not text:
            return RowError("ip is empty")
        if "%" in text:  # ipaddress reads "fe80::1%eth0" as an address; the zone names an interface
            return RowError(f"ip {text!r} carries an IPv6 zone id, which names an interface, not an address")
        if "/" in text:
            try:
                net = parse_network(text)
            except ValidationError as exc:
                return RowError(_validation_text(exc))
            if net.prefixlen != net.max_prefixlen:
                return RowError(f"{text} is a network; a lease is one address (/32 or /128)")
            return str(net)
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            return RowError(f"{text!r} is not a valid IP address")
        if addr.version == 6 and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return f"{addr}/{addr.max_prefixlen}"

    def load_customers(self, accounts: set[str]) -> None:
        missing = [a for a in accounts if a not in self.customer_ids]
        for i in range(0, len(missing), 5000):
            part = missing[i : i + 5000]
            found = dict(Customer.objects.filter(account__in=part).values_list("account", "pk"))
            for account in part:
                pk = found.get(account)
                self.customer_ids[account] = pk
                if pk is not None:
                    self.accounts[pk] = account

    def load_addresses(self, networks: set[str]) -> None:
        missing = [n for n in networks if n not in self.addresses]
        for network in missing:
            self.addresses[network] = _Address()
        holders: set[int] = set()
        for i in range(0, len(missing), 2000):
            rows = (
                Allocation.objects.filter(network__in=missing[i : i + 2000])
                .order_by("network", "valid_from")
                .values_list("network", "valid_from", "valid_to", "customer_id", "pk")
            )
            for network, start, stop, customer_id, pk in rows.iterator(chunk_size=20_000):
                address = self.addresses[network]
                address.starts.append(start)
                address.leases.append(_Lease(start, stop, customer_id, pk))
                holders.add(customer_id)
        unknown = [pk for pk in holders if pk not in self.accounts]
        for i in range(0, len(unknown), 5000):
            self.accounts.update(Customer.objects.filter(pk__in=unknown[i : i + 5000]).values_list("pk", "account"))

    def holder(self, lease: _Lease) -> str:
        return self.accounts.get(lease.customer_id, f"customer #{lease.customer_id}")

    @staticmethod
    def period(lease: _Lease) -> str:
        return f"{lease.start.isoformat()} – {lease.stop.isoformat() if lease.stop else 'open'}"

    # deciding

    def apply(self, line: int, network: str, customer_id: int, start: datetime, stop: datetime | None) -> None:
        address = self.addresses[network]
        starts, leases = address.starts, address.leases
        idx = bisect.bisect_left(starts, start)
        summary = self.summary
        if idx < len(starts) and starts[idx] == start:
            current = leases[idx]
            if current.customer_id != customer_id:
                self.reject(line, f"{network} from {start.isoformat()} is already leased to {self.holder(current)}")
                return
            # The file saying "still open" about a session the desk has seen end is an older
            # log read again: keep the end we know rather than reopen the lease.
            if stop is None or current.stop == stop:
                summary.unchanged += 1
                return
            if idx + 1 < len(leases) and leases[idx + 1].start < stop:
                after = leases[idx + 1]
                self.reject(
                    line,
                    f"{network} until {stop.isoformat()} overlaps the lease of {self.holder(after)} "
                    f"({self.period(after)})",
                )
                return
            current.stop = stop
            if current.pk is not None and current.pk not in self.updates:
                self.updates[current.pk] = (network, current)
            summary.updated += 1
            return
        if idx > 0:
            before = leases[idx - 1]
            if before.stop is None or before.stop > start:
                self.reject(line, f"{network} overlaps the lease of {self.holder(before)} ({self.period(before)})")
                return
        if idx < len(leases):
            after = leases[idx]
            if stop is None or after.start < stop:
                self.reject(line, f"{network} overlaps the lease of {self.holder(after)} ({self.period(after)})")
                return
        lease = _Lease(start, stop, customer_id, None, line)
        starts.insert(idx, start)
        leases.insert(idx, lease)
        self.creates.append((network, lease))
        summary.created += 1

    # writing

    def flush(self) -> None:
        """Hand this batch's new and changed leases to the writer (or write them now)."""
        summary = self.summary
        counters = {
            "processed_rows": summary.processed,
            "created": summary.created,
            "updated": summary.updated,
            "unchanged": summary.unchanged,
            "rejected": summary.rejected,
        }
        creates, self.creates = self.creates, []
        updates, self.updates = self.updates, {}
        if self.use_copy and creates:
            # COPY cannot return ids, so take them from the sequence first: a later row may end
            # one of these leases.
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                    [Allocation._meta.db_table, len(creates)],
                )
                for (_network, lease), (pk,) in zip(creates, cursor.fetchall(), strict=True):
                    lease.pk = pk
        # The batch is a copy: the main thread goes on changing the leases while it is written.
        batch = _Batch(
            creates=[(lease.pk, lease.customer_id, network, lease.start, lease.stop) for network, lease in creates],
            updates={pk: lease.stop for pk, (_network, lease) in updates.items()},
            counters=counters,
        )
        if self.writer is not None:
            self.writer.put(batch)
            return
        ids = self.write(batch)
        for (_network, lease), pk in zip(creates, ids, strict=True):
            lease.pk = pk

    def start_writer(self) -> None:
        # Parsing and checking is Python on one core; COPY, index upkeep and FK checks are
        # PostgreSQL on the other. A writer thread (its own connection) lets them overlap.
        # Not inside a transaction (the tests'): another connection could not see its rows.
        if self.use_copy and not connection.in_atomic_block:
            self.writer = _Writer(self)
            self.writer.start()

    def finish(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def write(self, batch: _Batch) -> list[int]:
        now = timezone.now()
        with transaction.atomic():
            ids = self._copy_creates(batch, now) if self.use_copy else self._bulk_creates(batch, now)
            if batch.updates:
                self._write_updates(batch, now)
            ImportRun.objects.filter(pk=self.run.pk).update(**batch.counters)
        return ids

    def _copy_creates(self, batch: _Batch, now: datetime) -> list[int]:
        if not batch.creates:
            return []
        alloc_table = connection.ops.quote_name(Allocation._meta.db_table)
        ids = [row[0] for row in batch.creates]
        with connection.cursor() as cursor:
            # Each batch is all or nothing and the counters commit with it, so a crash can only
            # lose whole batches, which running the same file again puts back: no need to wait
            # for the WAL flush on every commit.
            cursor.execute("SET LOCAL synchronous_commit = off")
            cursor.copy_expert(
                f"COPY {alloc_table} (id, customer_id, network, family, prefixlen, valid_from, valid_to, "
                "source, note, created_at) FROM STDIN",
                _Stream(self._allocation_lines(batch, now)),
                1 << 16,
            )
        return ids

    def _allocation_lines(self, batch: _Batch, now: datetime) -> Iterator[str]:
        # COPY's text format: tab-separated, \N for NULL. Every value here is a number, a
        # canonical network, an ISO time or the run's own note, none of which needs escaping.
        tail = f"\tlease\t{self.note}\t{now.isoformat()}\n"
        for pk, customer_id, network, start, stop in batch.creates:
            end = stop.isoformat() if stop is not None else "\\N"
            bits = "6\t128" if ":" in network else "4\t32"
            yield f"{pk}\t{customer_id}\t{network}\t{bits}\t{start.isoformat()}\t{end}{tail}"

    def _bulk_creates(self, batch: _Batch, now: datetime) -> list[int]:
        objs = [
            Allocation(
                customer_id=customer_id,
                network=network,
                family=6 if ":" in network else 4,
                prefixlen=128 if ":" in network else 32,
                valid_from=start,
                valid_to=stop,
                source=AllocationSource.LEASE,
                note=self.note,
                created_at=now,
            )
            for _pk, customer_id, network, start, stop in batch.creates
        ]
        Allocation.objects.bulk_create(objs, batch_size=2000)
        return [obj.pk for obj in objs]

    def _write_updates(self, batch: _Batch, now: datetime) -> None:
        pks = list(batch.updates)
        objs = []
        changes = []
        for i in range(0, len(pks), 5000):
            for obj in Allocation.objects.select_related("customer").filter(pk__in=pks[i : i + 5000]):
                old = obj.snapshot()
                obj.valid_to = batch.updates[obj.pk]
                objs.append(obj)
                changes.append(
                    AllocationChange(
                        allocation=obj,
                        network=obj.network,
                        action=AllocationChange.Action.UPDATED,
                        actor_id=self.actor_id,
                        actor_label=self.label,
                        old=old,
                        new=obj.snapshot(),
                        at=now,
                    )
                )
        Allocation.objects.bulk_update(objs, ["valid_to"], batch_size=1000)
        AllocationChange.objects.bulk_create(changes, batch_size=2000)


@dataclass
class _Batch:
    creates: list[tuple[int | None, int, str, datetime, datetime | None]]  # pk, customer, network, start, stop
    updates: dict[int, datetime | None]  # pk -> new stop
    counters: dict[str, int]


class _Writer(threading.Thread):
    """Writes batches in order on its own connection; one batch may wait while one is written."""

    def __init__(self, job: _LeaseImport) -> None:
        super().__init__(name=f"lease-import-{job.run.pk}", daemon=True)
        self.job = job
        self.queue: queue.Queue[_Batch | None] = queue.Queue(maxsize=1)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while (batch := self.queue.get()) is not None:
                if self.error is None:
                    try:
                        self.job.write(batch)
                    except BaseException as exc:  # handed to the main thread, which re-raises it
                        self.error = exc
        finally:
            connection.close()

    def put(self, batch: _Batch) -> None:
        if self.error is not None:
            self.close()
        self.queue.put(batch)

    def close(self) -> None:
        self.queue.put(None)
        self.join()
        if self.error is not None:
            error, self.error = self.error, None
            raise error


def import_leases(
    source: Source,
    run: ImportRun,
    *,
    progress: Progress | None = None,
    on_reject: Rejected | None = None,
) -> ImportSummary:
    """Lease allocations (/32, /128, source=lease) from a RADIUS/DHCP session log: ip,account,start,stop.

    A session is keyed on (address, start). Seen before for the same account: unchanged, or
    updated when the file now has the stop of a lease that was open. For another account:
    rejected. A new session overlapping any allocation of the same address: rejected, naming
    the holder. Rows are written in batches of LEASE_BATCH_ROWS, each in one transaction.
    Created leases carry the note "lease import #<run id>"; ended ones get an AllocationChange.
    """
    summary = ImportSummary(total_rows=count_rows(source))
    job = _LeaseImport(run, summary, on_reject)
    pending: list[tuple[int, str, str, datetime, datetime | None]] = []
    job.start_writer()

    def process_batch() -> None:
        job.load_customers({row[2] for row in pending})
        job.load_addresses({row[1] for row in pending})
        for line, network, account, start, stop in pending:
            customer_id = job.customer_ids.get(account)
            if customer_id is None:
                job.reject(line, f"unknown account {account}")
                continue
            job.apply(line, network, customer_id, start, stop)
        pending.clear()
        summary.processed = summary.created + summary.updated + summary.unchanged + summary.rejected
        job.flush()
        if progress:
            progress(summary.processed, summary.total_rows)

    try:
        _read_leases(source, job, pending, process_batch)
    finally:
        # Waits for the last batch; re-raises a writer's error.
        job.finish()
    return summary


def _read_leases(source: Source, job: _LeaseImport, pending: list, process_batch: Callable[[], None]) -> None:
    with _open_binary(source) as fh:
        for lineno, (ip_text, account, start_text, stop_text) in _rows(fh, LEASE_COLUMNS, job.reject):
            try:
                network = job.network_of(ip_text)
                if not account:
                    raise RowError("account is empty")
                start = parse_time(start_text, "start") if start_text else None
                if start is None:
                    raise RowError("start is empty")
                stop = parse_time(stop_text, "stop") if stop_text else None
                if stop is not None and stop <= start:
                    raise RowError(f"stop {stop_text} is not after start {start_text}")
            except RowError as exc:
                job.reject(lineno, str(exc))
                continue
            pending.append((lineno, network, account, start, stop))
            if len(pending) >= LEASE_BATCH_ROWS:
                process_batch()
        process_batch()
