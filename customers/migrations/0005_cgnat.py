"""CGNAT port blocks (issue 8)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("customers", "0004_ladder")]

    operations = []
