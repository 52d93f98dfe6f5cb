"""Parsers: DMARC, URLs, attachments (issue 8)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("cases", "0009_intake_robust")]

    operations = []
