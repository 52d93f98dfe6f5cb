"""Queue and search (issue 7): the indexes the queue's markers and search read."""

import django.db.models.functions.text
from django.db import DatabaseError, migrations, models, transaction

# Words in the evidence (cases.search.EvidenceMatches): a GIN expression index, so intake's bulk
# filing (cases/services/filing.py, COPY and INSERT ... SELECT) keeps nothing up to date by hand.
# PostgreSQL only; SQLite's search is a plain scan. The expression must stay the one cases.search
# queries with, or the planner will not use the index.
FTS_INDEX = (
    "CREATE INDEX IF NOT EXISTS report_evidence_fts_idx ON cases_report "
    "USING gin (to_tsvector('english'::regconfig, evidence))"
)


# A customer's account or a piece of their name (cases.search: account__iexact | name__icontains,
# i.e. UPPER(account) = UPPER(%s) OR UPPER(name) LIKE UPPER(%s)): a scan of every customer per search
# (25 ms at 50,000) without these. Trigrams need pg_trgm, a trusted extension the database owner may
# create; where it cannot be created the search still works, by a scan.
CUSTOMER_INDEXES = [
    "CREATE INDEX IF NOT EXISTS customer_account_upper_idx ON customers_customer (upper(account::text))",
    "CREATE INDEX IF NOT EXISTS customer_name_trgm_idx ON customers_customer USING gin (upper(name::text) gin_trgm_ops)",
]


def add_search_indexes(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FTS_INDEX)
    schema_editor.execute(CUSTOMER_INDEXES[0])
    try:
        with transaction.atomic():  # a savepoint: a refused extension must not abort the migration
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError:
        return
    schema_editor.execute(CUSTOMER_INDEXES[1])


def drop_search_indexes(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        for name in ("report_evidence_fts_idx", "customer_account_upper_idx", "customer_name_trgm_idx"):
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("cases", "0006_ladder_roles")]

    operations = [
        migrations.AddIndex(
            model_name="notice",
            index=models.Index(condition=models.Q(("status", "failed")), fields=["case"], name="notice_failed_idx"),
        ),
        migrations.AddIndex(
            model_name="report",
            index=models.Index(django.db.models.functions.text.Upper("reporter"), name="report_reporter_upper_idx"),
        ),
        migrations.AddIndex(
            model_name="report",
            index=models.Index(fields=["ip", "case"], name="report_ip_case_idx"),
        ),
        migrations.RunPython(add_search_indexes, drop_search_indexes, elidable=False),
    ]
