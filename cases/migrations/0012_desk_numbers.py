"""Managers' numbers and history (issue 7)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("cases", "0011_desk_misc")]

    operations = []
