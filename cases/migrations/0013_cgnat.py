"""CGNAT (issue 8): a report filed on a CGNAT pool says why (no source port, or no block held it)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("cases", "0012_desk_numbers")]

    operations = [
        migrations.AddField(
            model_name="report", name="resolution_note", field=models.CharField(blank=True, max_length=200)
        ),
    ]
