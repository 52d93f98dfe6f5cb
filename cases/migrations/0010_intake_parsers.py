"""Parsers: DMARC, URLs, attachments (issue 8)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("cases", "0009_intake_robust")]

    operations = [
        migrations.AddField(
            model_name="report",
            name="url",
            field=models.CharField(blank=True, max_length=2048),
        ),
    ]
