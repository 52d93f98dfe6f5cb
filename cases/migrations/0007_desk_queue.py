"""Queue and search (issue 7): the indexes the queue's markers and search read."""

import django.db.models.functions.text
from django.db import migrations, models

# Words in the evidence (cases.search.EvidenceMatches): a GIN expression index, so intake's bulk
# filing (cases/services/filing.py, COPY and INSERT ... SELECT) keeps nothing up to date by hand.
# PostgreSQL only; SQLite's search is a plain scan. The expression must stay the one cases.search
# queries with, or the planner will not use the index.
FTS_INDEX = (
    "CREATE INDEX IF NOT EXISTS report_evidence_fts_idx ON cases_report "
    "USING gin (to_tsvector('english'::regconfig, evidence))"
)


def add_fts_index(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FTS_INDEX)


def drop_fts_index(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS report_evidence_fts_idx")


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
        migrations.RunPython(add_fts_index, drop_fts_index, elidable=False),
    ]
