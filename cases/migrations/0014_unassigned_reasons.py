"""Two more reasons a report has no customer (issue 8): a URL-only report whose host name did not
resolve (no address: Report.ip becomes nullable) and an address nobody can hold (not routable).

Reports already waiting as "outside our address space" whose address is not routable get the new
reason, so they leave the working queue as new ones do.
"""

from django.db import migrations, models


def mark_bogons(apps, schema_editor):
    from abusedesk.lib.addresses import routable_reason

    Report = apps.get_model("cases", "Report")
    # report_unassigned_idx: the open unassigned reports are a tiny slice of all reports.
    waiting = Report.objects.filter(
        customer__isnull=True,
        duplicate_of__isnull=True,
        dismissed_at__isnull=True,
        unassigned_reason="outside",
        ip__isnull=False,
    )
    ids = [pk for pk, ip in waiting.values_list("pk", "ip").iterator() if routable_reason(ip)]
    for start in range(0, len(ids), 1000):
        Report.objects.filter(pk__in=ids[start : start + 1000]).update(unassigned_reason="bogon")


def unmark_bogons(apps, schema_editor):
    Report = apps.get_model("cases", "Report")
    Report.objects.filter(unassigned_reason="bogon").update(unassigned_reason="outside")


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0013_cgnat"),
    ]

    operations = [
        migrations.AlterField(
            model_name="report",
            name="ip",
            field=models.GenericIPAddressField(blank=True, null=True, unpack_ipv4=True),
        ),
        migrations.AlterField(
            model_name="report",
            name="unassigned_reason",
            field=models.CharField(
                blank=True,
                choices=[
                    ("outside", "Outside our address space"),
                    ("not_held", "Nobody held the address then"),
                    ("no_addr", "Host name did not resolve"),
                    ("bogon", "Not a routable address"),
                ],
                max_length=8,
            ),
        ),
        migrations.RunPython(mark_bogons, unmark_bogons),
    ]
