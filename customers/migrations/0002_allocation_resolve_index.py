"""An index that lets customers.resolver.resolve() reject ended periods without reading the table.

With only (network, valid_from), PostgreSQL fetched a heap page for every past lease of an address
to test valid_to: ~200 random pages for a flapping /32 with 90 days of history, once lease rows
arrive in time order (bench/bench_resolve.py). With the period's end in the index, only the row
that is valid at the instant is fetched. The end is COALESCE(valid_to, 'infinity') because a
b-tree condition cannot be an OR ("valid_to IS NULL OR valid_to > at").

PostgreSQL only, and created with SQL: Django's model state does not describe it (an expression
index would need a models.py change), and SQLite keeps the plain OR query on the unique index.
"""

from django.db import migrations

INDEX = "allocation_resolve_idx"


def create_index(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON customers_allocation "
        "(network, valid_from, (COALESCE(valid_to, 'infinity'::timestamptz)))"
    )


def drop_index(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]
