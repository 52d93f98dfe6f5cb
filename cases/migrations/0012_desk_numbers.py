"""Managers' numbers and history (issue 7): the indexes cases.stats reads."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("cases", "0011_desk_misc")]

    operations = [
        migrations.AddIndex(
            model_name="case",
            index=models.Index(fields=["opened_at"], name="case_opened_idx"),
        ),
        migrations.AddIndex(
            model_name="case",
            index=models.Index(
                condition=models.Q(("status", "resolved")), fields=["closed_at"], name="case_resolved_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="caseevent",
            index=models.Index(
                condition=models.Q(("kind__in", ["rung", "de_escalated", "reinstated"])),
                fields=["at"],
                name="caseevent_escalation_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="caseevent",
            index=models.Index(
                condition=models.Q(("kind", "rung"), ("new__in", ["suspension", "termination"])),
                fields=["at", "new"],
                include=("case",),
                name="caseevent_cut_off_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="notice",
            index=models.Index(
                condition=models.Q(
                    ("kind__in", ["first_notice", "warning", "restriction", "suspension", "termination"]),
                    ("sent_at__isnull", False),
                ),
                fields=["case", "sent_at"],
                name="notice_first_sent_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="report",
            index=models.Index(
                fields=["occurred_at", "category"], include=("reporter", "customer", "case"), name="report_numbers_idx"
            ),
        ),
    ]
