"""Queue and search (issue 7)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("cases", "0006_ladder_roles")]

    operations = []
