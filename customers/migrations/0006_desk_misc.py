"""Customer pages and admin (issue 7)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("customers", "0005_cgnat")]

    operations = []
