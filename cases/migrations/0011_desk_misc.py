"""Desk pages, case and managers (issue 7)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("cases", "0010_intake_parsers")]

    operations = []
