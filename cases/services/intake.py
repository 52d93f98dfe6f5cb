"""Intake: store what arrives, claim it, parse it, and hand its events to filing.

receive() stores the raw bytes first (idempotent by sha256) and queues the parse; a worker
claims waiting messages in batches, parses them outside any transaction, and files their
events (cases.services.filing) in one transaction with the messages' new status.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import ipaddress
import itertools
import json
import logging
import os
import socket
import struct
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import compat32

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from cases import queue
from cases.intake import ParseStream
from cases.intake.base import ParsedEvent
from cases.models import InboundMessage, ParseStatus
from cases.services.common import TransitionError, execute_prepared, insert_rows, storable
from cases.services.filing import Folded, IntakeSummary, file_chunk, record_reports
from customers.resolver import are_ours

log = logging.getLogger(__name__)


def _header_summary(raw: bytes) -> tuple[str, str, str]:
    """Message-ID, Subject and From, read from the header block only; never raises."""
    try:
        head = raw[:65536]
        end = head.find(b"\r\n\r\n")
        if end < 0:
            end = head.find(b"\n\n")
        if end < 0 and b":" not in head[:200]:
            return "", "", ""
        headers = BytesHeaderParser(policy=compat32).parsebytes(head[: end if end > 0 else None])

        def text(name: str, limit: int) -> str:
            value = headers.get(name)
            if value is None:
                return ""
            return storable(" ".join(str(value).split()))[:limit]

        return text("Message-ID", 998), text("Subject", 500), text("From", 500)
    except Exception:  # a hostile header block must not stop the message being stored
        log.warning("could not read headers of an inbound message", exc_info=True)
        return "", "", ""


def receive(raw: bytes, channel: str, *, actor=None) -> tuple[InboundMessage, bool]:
    """Store raw bytes as an InboundMessage and queue its parsing. Idempotent by sha256.

    Returns (message, created). The row is committed before this returns (unless the caller
    holds a transaction), so the mail server's pipe may exit 0 as soon as it does.
    """
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise TypeError("receive() takes bytes")
    raw = bytes(raw)
    digest = hashlib.sha256(raw).hexdigest()
    message_id, subject, sender = _header_summary(raw)
    user = actor if getattr(actor, "is_authenticated", False) else None
    # A big message's bytes go to PostgreSQL by COPY, not as a parameter: psycopg2 sends bytea
    # as hex text in the query, which took seven times the message's size in memory at once.
    by_copy = connection.vendor == "postgresql" and len(raw) > COPY_RAW_BYTES
    # One INSERT needs no transaction of its own: outside a caller's transaction it commits by
    # itself (autocommit), which spares the BEGIN and COMMIT round trips; the parse is queued
    # at once, as on_commit does outside a transaction. Inside a caller's transaction, a savepoint
    # keeps a duplicate's IntegrityError from breaking it.
    alone = not by_copy and not connection.in_atomic_block
    try:
        with contextlib.nullcontext() if alone else transaction.atomic():
            message = InboundMessage(
                raw=b"" if by_copy else raw,
                size=len(raw),
                sha256=digest,
                message_id=message_id,
                subject=subject,
                sender=sender,
                channel=channel,
                received_by=user,
            )
            # Values already plain: the INSERT without Django's statement building (PostgreSQL).
            insert_rows(InboundMessage, [message])
            if by_copy:
                _write_raw(message.pk, raw)
                message.raw = raw
            _queue_parse(message.pk)
    except IntegrityError:
        # The same bytes were stored before (sha256 is unique): one message, received again.
        # Trying the insert first saves a look-up on the common path, where mail is new.
        message = InboundMessage.objects.get(sha256=digest)
        InboundMessage.objects.filter(pk=message.pk).update(times_received=F("times_received") + 1)
        return message, False
    return message, True


# Messages bigger than this are stored by COPY (see receive); smaller ones with their INSERT.
COPY_RAW_BYTES = 256 * 1024


class _CopyRaw(io.RawIOBase):
    """One bytea row in COPY's binary format, read in slices of the bytes (never copied whole)."""

    def __init__(self, data: bytes) -> None:
        self.parts = [
            b"PGCOPY\n\xff\r\n\x00" + struct.pack("!iihi", 0, 0, 1, len(data)),
            memoryview(data),
            struct.pack("!h", -1),
        ]
        self.at = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while self.parts and self.at >= len(self.parts[0]):
            self.parts.pop(0)
            self.at = 0
        if not self.parts:
            return b""
        part = self.parts[0]
        end = len(part) if size is None or size < 0 else self.at + size
        chunk = bytes(part[self.at : end])
        self.at += len(chunk)
        return chunk


def _write_raw(pk: int, raw: bytes) -> None:
    """The raw bytes of message pk, by COPY into a temporary table and one UPDATE (PostgreSQL)."""
    table = connection.ops.quote_name(InboundMessage._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE IF NOT EXISTS abusedesk_raw_upload (raw bytea) ON COMMIT DELETE ROWS")
        cursor.execute("TRUNCATE abusedesk_raw_upload")
        cursor.cursor.copy_expert(
            "COPY abusedesk_raw_upload (raw) FROM STDIN WITH (FORMAT binary)", _CopyRaw(raw), size=1024 * 1024
        )
        cursor.execute(f"UPDATE {table} SET raw = u.raw FROM abusedesk_raw_upload AS u WHERE id = %s", [pk])


class _RawSink:
    """Where COPY ... TO STDOUT (binary) writes one bytea row: its chunks, joined once at the end."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(data)
        return len(data)


def _read_raw(pk: int) -> bytes:
    """The raw bytes of message pk. On PostgreSQL by COPY in binary form: a SELECT brings bytea
    as hex text, twice the message's size, then decodes and copies it (four times the size at once)."""
    if connection.vendor != "postgresql":
        return bytes(InboundMessage.objects.with_raw().values_list("raw", flat=True).get(pk=pk))
    table = connection.ops.quote_name(InboundMessage._meta.db_table)
    sink = _RawSink()
    sql = f"COPY (SELECT raw FROM {table} WHERE id = %s) TO STDOUT WITH (FORMAT binary)"
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(cursor.cursor.mogrify(sql, [pk]).decode(), sink)
    data = sink.chunks[0] if len(sink.chunks) == 1 else b"".join(sink.chunks)
    sink.chunks.clear()
    # 11-byte signature, flags and header-extension length (int32 each, the extension's bytes), then
    # the row: field count (int16), the field's length (int32, -1 for NULL), its bytes; -1 (int16) ends it.
    (extension,) = struct.unpack_from("!i", data, 15)
    at = 19 + extension
    if len(data) < at + 6:  # the trailer alone: no such row
        raise InboundMessage.DoesNotExist(f"message {pk} is gone")
    _fields, length = struct.unpack_from("!hi", data, at)
    if length < 0:
        return b""
    return data[at + 6 : at + 6 + length]


def _queue_parse(message_id: int) -> None:
    queue.enqueue_on_commit("cases.tasks.parse_message_task", message_id)


# A worker takes up to this many waiting messages at once: when mail arrives faster than it
# is parsed, the per-transaction costs are shared by the whole batch. The batch holds their ids
# only; each message's bytes are read when its turn comes and dropped after.
BATCH = 200
# Raw bytes up to this size come back with the claim itself (one statement less per message);
# a bigger message is read on its own when its turn comes.
INLINE_RAW_BYTES = 64 * 1024

_owner: tuple[int, str] | None = None


def worker_identity() -> str:
    """host:pid:token of this process: the owner written on its claims (a new token after a fork)."""
    global _owner
    pid = os.getpid()
    if _owner is None or _owner[0] != pid:
        _owner = (pid, f"{socket.gethostname()[:60]}:{pid}:{uuid.uuid4().hex[:8]}")
    return _owner[1]


def process_message(message_id: int, *, force: bool = False, actor=None) -> IntakeSummary | None:
    """Parse one stored message and file its events. Safe to run twice: only a waiting message is taken.

    force=True also takes a message that could not be parsed (re-parse after a parser fix).
    """
    statuses = [ParseStatus.NEW, ParseStatus.UNPARSED] if force else [ParseStatus.NEW]
    claimed = claim_messages(statuses=statuses, only=message_id, limit=1)
    if not claimed:
        return None
    return _process_claimed(claimed, actor=actor)


def process_pending(*, first: int | None = None, limit: int = BATCH, actor=None) -> IntakeSummary | None:
    """Parse waiting messages in one batch: `first` (if still waiting) and up to limit-1 more.

    Returns None when `first` was already taken (by another worker) or nothing waits.
    """
    claimed = claim_messages(first=first, limit=limit)
    if not claimed or (first is not None and claimed[0].pk != first):
        if claimed:
            # `first` was taken meanwhile; what this claim took is parsed all the same.
            _process_claimed(claimed, actor=actor)
        return None
    return _process_claimed(claimed, actor=actor)


@dataclass
class Claimed:
    """A claimed message as a batch keeps it: its id and what parsing needs, never a big raw."""

    pk: int
    received_at: datetime
    size: int
    channel: str
    sender: str
    events_filed: int
    raw: bytes | None  # the bytes when small (INLINE_RAW_BYTES), else read when its turn comes


_STATUSES = frozenset(ParseStatus.values)


def claim_messages(
    *, first: int | None = None, only: int | None = None, limit: int = BATCH, statuses=(ParseStatus.NEW,)
) -> list[Claimed]:
    """Take up to `limit` waiting messages for this worker, `first` first: one UPDATE ... RETURNING.

    Each claim carries this worker's identity and a heartbeat; PostgreSQL skips rows another
    worker is claiming (FOR UPDATE SKIP LOCKED), so two workers never take the same message.
    """
    table = connection.ops.quote_name(InboundMessage._meta.db_table)
    now = timezone.now()
    skip_locked = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    # The statuses are written into the statement (they are ours, never a caller's text): with
    # status = 'new' spelt out, even the statement's generic plan reads the index of waiting messages.
    if not statuses or not set(statuses) <= _STATUSES:
        raise ValueError(f"not message statuses: {statuses!r}")
    where = "status IN (" + ", ".join(f"'{status}'" for status in sorted(statuses)) + ")"
    params: list = []
    if only is not None:
        where += " AND id = %s"
        params.append(only)
    order = "id"
    if first is not None:
        order = "CASE WHEN id = %s THEN 0 ELSE 1 END, id"
        params.append(first)
    # The rows are picked in a CTE, which runs once. As `WHERE id IN (SELECT ... LIMIT n FOR UPDATE
    # SKIP LOCKED)`, PostgreSQL may run the sub-select again for a row that changed under it, and
    # then claim more than `limit` rows.
    sql = (
        f"WITH picked AS (SELECT id FROM {table} WHERE {where} ORDER BY {order} LIMIT %s{skip_locked}) "
        f"UPDATE {table} SET status = %s, claimed_at = %s, heartbeat_at = %s, claimed_by = %s "
        f"FROM picked WHERE {table}.id = picked.id "
        f"RETURNING {table}.id, received_at, size, channel, sender, events_filed, "
        "CASE WHEN size <= %s THEN raw ELSE NULL END"
    )
    values = [*params, limit, ParseStatus.PARSING, now, now, worker_identity(), INLINE_RAW_BYTES]
    if connection.vendor == "postgresql":
        # One statement: outside a caller's transaction it runs in autocommit (PostgreSQL's implicit
        # transaction, where SET LOCAL holds), without the BEGIN and COMMIT round trips. A claim lost
        # in a crash is no loss (the message is still waiting): no need to wait for the disk. Prepared,
        # with its generic plan: planning took longer than the claim, once per message.
        with connection.cursor() as cursor:
            execute_prepared(cursor, sql, values, head="SET LOCAL synchronous_commit TO OFF; ", generic=True)
            rows = cursor.fetchall()
    else:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, values)
            rows = cursor.fetchall()
    claimed = [
        Claimed(pk, _aware(at), size, channel, sender, done, None if raw is None else bytes(raw))
        for pk, at, size, channel, sender, done, raw in rows
    ]
    claimed.sort(key=lambda c: (c.pk != first, c.pk))
    return claimed


def _aware(value) -> datetime:
    # SQLite's cursor gives the text it stored; PostgreSQL an aware datetime.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)


def release_stale_claims(*, older_than: datetime | None = None) -> int:
    """Give back claims whose heartbeat stopped: their worker died or hangs. The filing of a claim
    that is given back stops at its next chunk (it checks it still holds the message), and the
    chunks it committed stay filed: whoever takes the message next goes on after them.

    `older_than` defaults to now - INTAKE_CLAIM_TIMEOUT_SECONDS; a live worker beats more often.
    """
    if older_than is None:
        older_than = timezone.now() - timedelta(seconds=settings.INTAKE_CLAIM_TIMEOUT_SECONDS)
    stale = Q(heartbeat_at__lt=older_than) | Q(heartbeat_at__isnull=True, claimed_at__lt=older_than)
    return _release(InboundMessage.objects.filter(stale, status=ParseStatus.PARSING))


def release_dead_owners() -> int:
    """At a worker's start: give back claims of this host's processes that are gone (SIGKILL, OOM),
    at once, without waiting for their heartbeat to run out."""
    host = socket.gethostname()[:60]
    owners = set(
        InboundMessage.objects.filter(status=ParseStatus.PARSING, claimed_by__startswith=f"{host}:")
        .values_list("claimed_by", flat=True)
        .distinct()
    )
    dead = [owner for owner in owners if not _alive(owner)]
    if not dead:
        return 0
    return _release(InboundMessage.objects.filter(status=ParseStatus.PARSING, claimed_by__in=dead))


def _alive(owner: str) -> bool:
    try:
        pid = int(owner.split(":")[1])
    except (IndexError, ValueError):
        return True  # not ours to judge; its heartbeat will tell
    if pid == os.getpid():
        return owner == worker_identity()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _release(qs) -> int:
    released = list(qs.values_list("pk", flat=True))
    if not released:
        return 0
    # The condition again in the UPDATE: a heartbeat that came meanwhile keeps its claim.
    count = qs.filter(pk__in=released).update(status=ParseStatus.NEW, claimed_at=None, claimed_by="", heartbeat_at=None)
    if count:
        log.warning("released %d intake claims left by workers that stopped: %s", count, released[:20])
        for pk in released:
            _queue_parse(pk)
    return count


class _Beater:
    """One thread per worker process renews the claims of the batches running in it, every
    INTAKE_HEARTBEAT_SECONDS, from its own database connection: a claim outlives a long parse but
    not its worker. One thread for the process's life, not one per batch: mail filed one message
    at a time would otherwise start and join a thread for every message."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owners: dict[str, int] = {}
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None
        self.pid = 0
        self.interval = 0.0

    def add(self, owner: str) -> None:
        with self.lock:
            self.owners[owner] = self.owners.get(owner, 0) + 1
            if self.thread is None or self.pid != os.getpid() or not self.thread.is_alive():
                # Threads do not survive a fork: a prefork child starts its own.
                self.pid = os.getpid()
                self.interval = settings.INTAKE_HEARTBEAT_SECONDS
                self.thread = threading.Thread(target=self._run, name="intake-heartbeat", daemon=True)
                self.thread.start()
            elif self.interval > settings.INTAKE_HEARTBEAT_SECONDS:
                self.wake.set()  # the setting was shortened: do not sleep out the old interval

    def remove(self, owner: str) -> None:
        with self.lock:
            left = self.owners.get(owner, 0) - 1
            if left > 0:
                self.owners[owner] = left
            else:
                self.owners.pop(owner, None)

    def _run(self) -> None:
        from django.db import connections

        while True:
            self.interval = settings.INTAKE_HEARTBEAT_SECONDS
            if self.wake.wait(self.interval):
                self.wake.clear()
                continue
            with self.lock:
                owners = list(self.owners)
            if not owners:
                continue
            try:
                InboundMessage.objects.filter(status=ParseStatus.PARSING, claimed_by__in=owners).update(
                    heartbeat_at=timezone.now()
                )
            except Exception:  # a missed beat is not fatal: the next one, or the chunk's, renews it
                log.warning("intake heartbeat failed", exc_info=True)
            finally:
                connections.close_all()  # no idle connection held between beats


_beater = _Beater()


class _Heartbeat:
    """While a batch runs, the process's heartbeat thread renews its claims."""

    def __init__(self, owner: str) -> None:
        self.owner = owner

    def __enter__(self) -> _Heartbeat:
        _beater.add(self.owner)
        return self

    def __exit__(self, *exc) -> None:
        _beater.remove(self.owner)


def _parse_stored(message: Claimed) -> ParseStream:
    """The message's events as an iterator (intake.parse_stream): a big feed's rows are read as
    the chunks take them, never held whole."""
    from cases import intake

    max_bytes = settings.INTAKE_MAX_MESSAGE_BYTES
    if message.size > max_bytes:
        return ParseStream(
            format="", events=iter(()), error=f"message is {message.size:,} bytes; the limit is {max_bytes:,}"
        )
    try:
        return intake.parse_stream(message.raw, received_at=message.received_at, are_ours=are_ours)
    except Exception as exc:  # the dispatcher should not raise; if it does, the message waits for a person
        log.exception("parser crashed on message %s", message.pk)
        return ParseStream(format="", events=iter(()), error=f"parser error: {type(exc).__name__}: {exc}"[:1000])


class LostClaim(Exception):
    """The worker no longer holds a message it was filing (its claim was given back)."""


@dataclass
class _Stream:
    """One message's events as the batch takes them, with its progress."""

    message: Claimed
    fmt: str
    events: Iterator[ParsedEvent]
    done: int  # events taken so far, committed or in the open chunk (restarts skip the committed)
    cap: int
    taken_in_chunk: int = 0
    finished: bool = False
    over_cap: int = 0
    error: str = ""  # why the parser stopped early, if it did (written with the final status)


def _process_claimed(claimed: list[Claimed], *, actor=None) -> IntakeSummary:
    """Parse each claimed message in turn and file its events in chunks of INTAKE_CHUNK_EVENTS.

    A chunk may hold the tail of one message and the start of the next (mail one at a time is
    filed in a single transaction per batch); each chunk commits on its own with the progress of
    every message in it, and only while this worker still holds them.
    """
    owner = worker_identity()
    summary = IntakeSummary()
    chunk_size = max(1, settings.INTAKE_CHUNK_EVENTS)
    chunk: list[tuple[ParsedEvent, int]] = []
    streams: list[_Stream] = []

    def flush() -> None:
        nonlocal chunk, streams
        _commit_chunk(chunk, streams, owner, summary, actor=actor)
        chunk = []
        streams = [s for s in streams if not s.finished]
        for s in streams:
            s.taken_in_chunk = 0

    with _Heartbeat(owner):
        for n, message in enumerate(claimed):
            try:
                stream = _open_stream(message, owner)
                if stream is None:
                    continue
                streams.append(stream)
                while not stream.finished:
                    try:
                        _take(stream, chunk, chunk_size)
                    except Exception as exc:  # noqa: BLE001 — a file that breaks half way
                        _parser_stopped(stream, exc)
                    if len(chunk) >= chunk_size:
                        flush()
            except LostClaim:
                log.warning("intake lost its claim on message(s) mid-batch; the rest of the batch is given back")
                _give_back([c.pk for c in claimed[n + 1 :]], owner)
                return summary
        if streams:
            try:
                flush()
            except LostClaim:
                log.warning("intake lost its claim on message(s) mid-batch")
    return summary


def _take(stream: _Stream, chunk: list[tuple[ParsedEvent, int]], chunk_size: int) -> None:
    """Move events from the stream into the chunk until it is full, the stream ends or its cap is reached."""
    if stream.done >= stream.cap:
        stream.over_cap = sum(1 for _ in stream.events)
        stream.finished = True
        return
    for event in stream.events:
        chunk.append((event, stream.message.pk))
        stream.done += 1
        stream.taken_in_chunk += 1
        if stream.done >= stream.cap:
            stream.over_cap = sum(1 for _ in stream.events)  # counted, not kept
            stream.finished = True
            return
        if len(chunk) >= chunk_size:
            return
    stream.finished = True


def _parser_stopped(stream: _Stream, exc: Exception) -> None:
    """The parser failed half way through a message (its first events were fine): what it gave is
    filed, and the message says where and why it stopped."""
    log.warning("the parser stopped on message %s after %d events", stream.message.pk, stream.done, exc_info=True)
    stream.finished = True
    stream.events = iter(())
    stream.error = f"the parser stopped after {stream.done:,} events: {type(exc).__name__}: {exc}"[:1000]


def _open_stream(message: Claimed, owner: str) -> _Stream | None:
    """Parse one claimed message (outside any transaction: parsing can take a while)."""
    # A customer's answer to one of our notices goes on its case (in its own transaction, with
    # the message's status) and never through the report parsers: it quotes the notice, whose
    # addresses would be filed against the customer. Header-only and cheap when it is not one.
    from cases.services.replies import may_answer, thread_reply

    if message.raw is None and message.size <= settings.INTAKE_MAX_MESSAGE_BYTES:
        message.raw = _read_raw(message.pk)
    if message.raw is not None and may_answer(message.channel, message.raw):
        stub = InboundMessage(
            pk=message.pk,
            channel=message.channel,
            sender=message.sender,
            received_at=message.received_at,
            size=message.size,
        )
        if thread_reply(stub, message.raw):
            message.raw = None
            return None
    result = _parse_stored(message)
    message.raw = None  # the parser has what it needs; a batch never keeps the bytes
    events = iter(result.events)
    if result.format == "freetext":
        # Free text gives every candidate address, best first; a person's complaint is about
        # one source, so only the best is filed (the others stay visible in the raw message).
        events = itertools.islice(events, 1)
    first = next(events, None)
    if first is None:
        _finish_message(
            message.pk,
            owner,
            status=ParseStatus.UNPARSED,
            fmt=result.format or "",
            error=result.error or "no report found in the message",
        )
        return None
    events = itertools.chain([first], events)
    if message.events_filed:
        # Taken again after a crash or a release: the chunks already committed are not filed twice.
        events = itertools.islice(events, message.events_filed, None)
    cap = settings.INTAKE_MAX_EVENTS_PER_MESSAGE
    return _Stream(message=message, fmt=result.format or "", events=events, done=message.events_filed, cap=cap)


def _commit_chunk(
    chunk: list[tuple[ParsedEvent, int]], streams: list[_Stream], owner: str, summary: IntakeSummary, *, actor
) -> None:
    if not streams:
        return
    try:
        one = _file_chunk(chunk, streams, owner, actor=actor)
    except LostClaim:
        raise
    except Exception:
        if len(streams) == 1:
            _unfileable(streams[0], owner)
            return
        # One message's events must not hold up the rest of the chunk: file them one by one.
        log.warning("filing a chunk of %d messages failed; filing them one by one", len(streams), exc_info=True)
        for stream in streams:
            own = [(e, pk) for e, pk in chunk if pk == stream.message.pk]
            try:
                _merge(summary, _file_chunk(own, [stream], owner, actor=actor))
            except LostClaim:
                raise
            except Exception:
                _unfileable(stream, owner)
        return
    _merge(summary, one)


def _file_chunk(chunk: list[tuple[ParsedEvent, int]], streams: list[_Stream], owner: str, *, actor) -> IntakeSummary:
    # The reports and the messages' progress commit together. If that commit is lost in a crash,
    # the messages are still "parsing" and are given back when the heartbeat stops, so PostgreSQL
    # need not wait for the disk here (the raw bytes were stored durably).
    with transaction.atomic():
        if connection.vendor != "postgresql":
            _record_progress(streams, owner)
            return file_chunk(chunk, actor=actor)
        # The progress rides in filing's duplicate look-up (one round trip less per chunk); the
        # message rows are locked from there on, before any report is written, and a claim
        # found lost rolls the whole chunk back.
        progress = _progress_statement(streams, owner)
        summary = file_chunk(chunk, actor=actor, fold=progress)
        held = progress.ids
        if held is None:
            with connection.cursor() as cursor:
                cursor.execute(progress.setup + progress.update, progress.params)
                held = {pk for (pk,) in cursor.fetchall()}
        lost = [s.message.pk for s in streams if s.message.pk not in held]
        if lost:
            raise LostClaim(lost)
        return summary


def _progress_statement(streams: list[_Stream], owner: str) -> Folded:
    """_record_progress for every message of the chunk as one statement, with _relax_commit's settings."""
    table = connection.ops.quote_name(InboundMessage._meta.db_table)
    now = timezone.now()
    # Typed: the statement may be prepared (filing's look-up), where a VALUES list's parameters are text.
    rows = ", ".join(["(%s::bigint, %s::integer, %s::boolean, %s::text, %s::integer, %s::text)"] * len(streams))
    params: list = [v for s in streams for v in (s.message.pk, s.done, s.finished, s.fmt[:32], s.over_cap, s.error)]
    update = (
        f"UPDATE {table} AS m SET events_filed = v.done, chunks_filed = m.chunks_filed + 1, "
        "heartbeat_at = CASE WHEN v.fin THEN NULL ELSE %s::timestamptz END, "
        "status = CASE WHEN v.fin THEN %s ELSE m.status END, "
        "format = CASE WHEN v.fin THEN v.fmt ELSE m.format END, "
        "parse_error = CASE WHEN v.fin THEN v.err ELSE m.parse_error END, "
        "parsed_at = CASE WHEN v.fin THEN %s::timestamptz ELSE m.parsed_at END, "
        "claimed_at = CASE WHEN v.fin THEN NULL ELSE m.claimed_at END, "
        "claimed_by = CASE WHEN v.fin THEN '' ELSE m.claimed_by END, "
        "event_count = CASE WHEN v.fin THEN v.done ELSE m.event_count END, "
        "events_over_cap = CASE WHEN v.fin THEN v.cap ELSE m.events_over_cap END "
        f"FROM (VALUES {rows}) AS v(id, done, fin, fmt, cap, err) "
        "WHERE m.id = v.id AND m.status = %s AND m.claimed_by = %s RETURNING m.id"
    )
    return Folded(
        # See _relax_commit for why.
        setup="SET LOCAL synchronous_commit TO OFF; SET CONSTRAINTS ALL IMMEDIATE; ",
        update=update,
        params=[now, ParseStatus.PARSED, now, *params, ParseStatus.PARSING, owner],
    )


def _record_progress(streams: list[_Stream], owner: str) -> None:
    """The progress of each message in the chunk (and the final status of those it ends), written
    first so the rows stay locked by this transaction: a release waits for the commit."""
    _relax_commit()
    now = timezone.now()
    for stream in streams:
        values = {
            "heartbeat_at": now,
            "events_filed": stream.done,
            "chunks_filed": F("chunks_filed") + 1,
        }
        if stream.finished:
            values.update(
                status=ParseStatus.PARSED,
                format=stream.fmt[:32],
                parse_error=stream.error,
                parsed_at=now,
                claimed_at=None,
                claimed_by="",
                heartbeat_at=None,
                event_count=stream.done,
                events_over_cap=stream.over_cap,
            )
        held = InboundMessage.objects.filter(pk=stream.message.pk, status=ParseStatus.PARSING, claimed_by=owner)
        if not held.update(**values):
            raise LostClaim(stream.message.pk)


def _merge(summary: IntakeSummary, one: IntakeSummary) -> None:
    summary.created += one.created
    summary.duplicates += one.duplicates
    summary.unassigned += one.unassigned
    summary.cases_opened += one.cases_opened
    summary.cases_updated |= one.cases_updated
    summary.new_report_ids += one.new_report_ids
    summary.thank_report_ids += one.thank_report_ids
    for ip, pk in one.first_report_by_ip.items():
        summary.first_report_by_ip.setdefault(ip, pk)


def _unfileable(stream: _Stream, owner: str) -> None:
    log.exception("could not file the events of message %s", stream.message.pk)
    stream.finished = True
    stream.events = iter(())
    filed = stream.done - stream.taken_in_chunk
    _finish_message(
        stream.message.pk,
        owner,
        status=ParseStatus.UNPARSED,
        fmt=stream.fmt,
        error=f"parsed, but its events could not be filed after {filed:,} (see the server log); "
        "enter them by hand or parse it again",
        events_filed=filed,
    )


def _finish_message(pk: int, owner: str, *, status: str, fmt: str, error: str, events_filed: int | None = None) -> None:
    values = {
        "status": status,
        "format": fmt[:32],
        "parse_error": error,
        "parsed_at": timezone.now(),
        "claimed_at": None,
        "claimed_by": "",
        "heartbeat_at": None,
        "event_count": 0 if events_filed is None else events_filed,
    }
    if events_filed is not None:
        values["events_filed"] = events_filed
    InboundMessage.objects.filter(pk=pk, status=ParseStatus.PARSING, claimed_by=owner).update(**values)


def _give_back(ids: list[int], owner: str) -> None:
    if ids:
        InboundMessage.objects.filter(pk__in=ids, status=ParseStatus.PARSING, claimed_by=owner).update(
            status=ParseStatus.NEW, claimed_at=None, claimed_by="", heartbeat_at=None
        )


def _relax_commit() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: left to COMMIT, the
            # checks of a big chunk run after this transaction has updated the very
            # message and case rows they lock (FOR KEY SHARE), which PostgreSQL makes slow.
            # Checked as each INSERT ends, they take their locks before those updates.
            cursor.execute("SET LOCAL synchronous_commit TO OFF; SET CONSTRAINTS ALL IMMEDIATE")


# --- hand-made reports -----------------------------------------------------------------------


@transaction.atomic
def enter_report(
    *,
    ip: str,
    occurred_at: datetime,
    category: str,
    reporter: str = "",
    reporter_org: str = "",
    text: str = "",
    port: int | None = None,
    message: InboundMessage | None = None,
    actor,
) -> tuple[InboundMessage, IntakeSummary]:
    """A complaint entered by NOC staff (a phone call, or an unparsed message read by a person).

    Without a message, what was typed is itself stored as an InboundMessage (channel web),
    so the complaint is kept exactly as received, like every other input.
    """
    ipaddress.ip_address(ip)  # raises ValueError for the form to show
    if timezone.is_naive(occurred_at):
        raise ValueError("occurred_at must be aware")
    event = ParsedEvent(
        ip=ip,
        occurred_at=occurred_at,
        category=category,
        format="manual",
        port=port,
        reporter=reporter,
        reporter_org=reporter_org,
        evidence=text,
        confidence=1.0,
    )
    if message is not None and message.status not in (ParseStatus.UNPARSED, ParseStatus.PARSED):
        # A message still waiting for (or in) its parse would never be parsed once marked done.
        raise TransitionError("This message is still being parsed; wait for it before adding events by hand.")
    if message is None:
        payload = {
            "entered_by": actor.get_username(),
            "entered_at": timezone.now().isoformat(),
            **{k: v for k, v in event.as_dict().items() if k != "confidence"},
            "text": text,
        }
        raw = json.dumps(payload, sort_keys=True, indent=1).encode()
        message = InboundMessage.objects.create(
            raw=raw,
            size=len(raw),
            sha256=hashlib.sha256(raw).hexdigest(),
            subject=f"Complaint entered by {actor.get_username()}"[:500],
            sender=(reporter or reporter_org)[:500],
            channel="web",
            received_by=actor,
            status=ParseStatus.PARSED,
            format="manual",
            parsed_at=timezone.now(),
        )
    summary = record_reports([event], message=message, actor=actor)
    InboundMessage.objects.filter(pk=message.pk).update(
        status=ParseStatus.PARSED,
        parse_error="",
        parsed_at=timezone.now(),
        event_count=F("event_count") + 1,
        format=F("format") if message.format else "manual",
    )
    return message, summary


def reparse_message(message: InboundMessage, *, actor) -> IntakeSummary | None:
    """Parse an unparsed message again (after a parser fix)."""
    if message.status not in (ParseStatus.UNPARSED, ParseStatus.NEW):
        raise TransitionError("Only a message that could not be parsed can be parsed again.")
    return process_message(message.pk, force=True, actor=actor)
