"""What every service module shares: the transition error, actors, storable text, bulk inserts."""

from __future__ import annotations

import hashlib
import itertools
import re
import weakref
from collections.abc import Sequence
from functools import cache

from django.db import connection

from cases.models import ActorKind


class TransitionError(ValueError):
    """The change asked for is not allowed from the current state."""


def actor_kwargs(actor) -> dict:
    if getattr(actor, "is_authenticated", False):
        return {"actor_kind": ActorKind.USER, "actor": actor}
    if actor == ActorKind.CUSTOMER:
        return {"actor_kind": ActorKind.CUSTOMER, "actor": None}
    return {"actor_kind": ActorKind.SYSTEM, "actor": None}


_CONTROL = dict.fromkeys([*range(0, 9), 11, 12, *range(14, 32), 127])


def storable(text: str) -> str:
    """Text any database column accepts: undecodable bytes (surrogates) become U+FFFD, and NUL
    and other control characters (PostgreSQL refuses NUL in text) are dropped."""
    if not text:
        return text
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text.translate(_CONTROL)


def actor_label(actor) -> str:
    if getattr(actor, "is_authenticated", False):
        return actor.get_username()
    if actor == ActorKind.CUSTOMER:
        return "customer"
    return "system"


@cache
def insert_plan(model) -> tuple[str, tuple[str, ...], frozenset[str]]:
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    head = f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) VALUES "
    json_fields = frozenset(f.attname for f in fields if f.get_internal_type() == "JSONField")
    return head, tuple(f.attname for f in fields), json_fields


def insert_rows(model, objs: list, *, set_ids: bool = True) -> None:
    """bulk_create without Django's per-field preparation and statement building, on PostgreSQL.

    A 50,000-row feed spends most of its filing time preparing 23 values per row through the
    model fields, and a message filed on its own mostly building statements; the values here
    are already plain Python (validated by the caller), so psycopg2 adapts them directly.
    Other databases use bulk_create. Errors are Django's (IntegrityError and so on).
    """
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, batch_size=1000)
        return
    from psycopg2.extras import Json, execute_values

    head, attnames, json_fields = insert_plan(model)
    if json_fields:
        rows = [tuple(Json(getattr(o, a)) if a in json_fields else getattr(o, a) for a in attnames) for o in objs]
    else:
        rows = [tuple(getattr(o, a) for a in attnames) for o in objs]
    tail = " RETURNING id" if set_ids else ""
    with connection.cursor() as cursor:
        if len(rows) == 1:
            cursor.execute(head + "(" + ", ".join(["%s"] * len(attnames)) + ")" + tail, rows[0])
            ids = cursor.fetchall() if set_ids else []
        else:
            with connection.wrap_database_errors:
                ids = execute_values(cursor.cursor, head + "%s" + tail, rows, page_size=1000, fetch=set_ids)
    if not set_ids:
        return
    # RETURNING gives the rows in the order of the VALUES list, as Django's bulk_create relies on too.
    for obj, (pk,) in zip(objs, ids, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias


# Statements each connection has prepared, by name (PREPARE outlives a rollback; it ends with the
# connection, so the registry is per connection object).
_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# Enough for the shapes filing and the ladder use; anything beyond runs unprepared.
PREPARED_PER_CONNECTION = 64


def execute_prepared(
    cursor,
    sql: str,
    params: Sequence,
    *,
    head: str = "",
    head_params: Sequence = (),
    generic: bool | None = None,
) -> None:
    """PostgreSQL: run `sql` (one statement, %s placeholders) as this connection's prepared statement:
    PREPARE the first time, EXECUTE after. The statements filing and the ladder run for every message
    take longer to plan than to run. `head` (other statements: settings, locks) goes first in the same
    round trip. Parameters the statement cannot type from its context need casts in `sql` (a VALUES
    list, for one).

    PostgreSQL plans a prepared statement afresh for its first five runs, then keeps one generic plan
    only if that looks no dearer than the fresh ones; for statements whose array parameters it cannot
    size in a generic plan it goes on planning every run (0.4 ms a message for filing's look-up,
    longer than the look-up itself). `generic=True` makes this run use the generic plan: for callers
    that know their parameters are small (a message's few events), where every plan is the same one.
    The setting is SET LOCAL: it ends with the transaction (or with the round trip, outside one), so
    a caller whose statement must be planned for its parameters (a feed's chunk, maybe after a claim
    in the same transaction) passes `generic=False`, which puts PostgreSQL's own choice back.
    """
    raw = connection.connection
    names = _prepared.setdefault(raw, set())
    name = "abusedesk_" + hashlib.sha1(sql.encode()).hexdigest()[:20]
    if name not in names and len(names) >= PREPARED_PER_CONNECTION:
        cursor.execute(head + sql, [*head_params, *params])
        return
    if name not in names:
        # On its own (once per connection): a PREPARE that succeeded is known to have, even when
        # the statement then fails.
        numbers = itertools.count(1)
        cursor.execute(f"PREPARE {name} AS " + re.sub(r"%s", lambda _: f"${next(numbers)}", sql))
        names.add(name)
    execute = f"EXECUTE {name} (" + ", ".join(["%s"] * len(params)) + ")" if params else f"EXECUTE {name}"
    if generic is not None:
        head += f"SET LOCAL plan_cache_mode = {'force_generic_plan' if generic else 'auto'}; "
    cursor.execute(head + execute, [*head_params, *params])
