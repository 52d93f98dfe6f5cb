"""Intake claims, progress, speed (issue 8): a claim's owner and heartbeat, a message's filing
progress and the events left over its cap."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("cases", "0008_desk_inbox")]

    operations = [
        migrations.AddField(
            model_name="inboundmessage",
            name="claimed_by",
            field=models.CharField(blank=True, max_length=100),
        ),
        migrations.AddField(
            model_name="inboundmessage",
            name="heartbeat_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="inboundmessage",
            name="chunks_filed",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="inboundmessage",
            name="events_filed",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="inboundmessage",
            name="events_over_cap",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddIndex(
            model_name="inboundmessage",
            index=models.Index(
                condition=models.Q(("status", "parsing")), fields=["heartbeat_at"], name="message_claim_heartbeat_idx"
            ),
        ),
    ]
