"""Inbox set-aside, unassigned triage (issue 7)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("cases", "0007_desk_queue")]

    operations = []
