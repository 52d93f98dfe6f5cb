"""Intake claims, progress, speed (issue 8)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("cases", "0008_desk_inbox")]

    operations = []
