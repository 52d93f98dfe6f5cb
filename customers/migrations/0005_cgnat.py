"""CGNAT port blocks (issue 8): an allocation may hold only a range of source ports.

A port block is an Allocation of one public address (/32 or /128) with port_from..port_to; every
other allocation holds all ports (0..65535). The natural key gains the first port, since the blocks
of one address are handed out at the same instant. On PostgreSQL the resolve index carries the
ports too, so resolve() filters port blocks inside the index (bench/bench_resolve.py, 10M blocks).
"""

from django.db import migrations, models

INDEX = "allocation_resolve_idx"
OLD_COLUMNS = "(network, valid_from, (COALESCE(valid_to, 'infinity'::timestamptz)))"
NEW_COLUMNS = "(network, valid_from, (COALESCE(valid_to, 'infinity'::timestamptz)), port_from, port_to)"


def _recreate(columns: str):
    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")
        schema_editor.execute(f"CREATE INDEX {INDEX} ON customers_allocation {columns}")

    return run


class Migration(migrations.Migration):
    dependencies = [("customers", "0004_ladder")]

    operations = [
        migrations.RemoveConstraint(model_name="allocation", name="allocation_unique_start"),
        migrations.AddField(
            model_name="allocation", name="port_from", field=models.PositiveIntegerField(default=0, db_default=0)
        ),
        migrations.AddField(
            model_name="allocation", name="port_to", field=models.PositiveIntegerField(default=65535, db_default=65535)
        ),
        migrations.AlterField(
            model_name="allocation",
            name="source",
            field=models.CharField(
                choices=[
                    ("static", "Static"),
                    ("pool", "Pool"),
                    ("lease", "Lease"),
                    ("import", "Import"),
                    ("cgnat", "CGNAT pool"),
                    ("ports", "CGNAT port block"),
                ],
                default="static",
                max_length=8,
            ),
        ),
        migrations.AddConstraint(
            model_name="allocation",
            constraint=models.UniqueConstraint(
                fields=("network", "valid_from", "port_from"), name="allocation_unique_start"
            ),
        ),
        migrations.AddConstraint(
            model_name="allocation",
            constraint=models.CheckConstraint(
                condition=models.Q(("port_from__lte", models.F("port_to")), ("port_to__lte", 65535)),
                name="allocation_port_range",
            ),
        ),
        migrations.AlterField(
            model_name="importrun",
            name="kind",
            field=models.CharField(
                choices=[
                    ("allocations", "Customers and allocations"),
                    ("leases", "Leases (RADIUS/DHCP sessions)"),
                    ("portblocks", "CGNAT port blocks (ip,port_from,port_to,account,start,stop)"),
                ],
                max_length=16,
            ),
        ),
        migrations.RunPython(_recreate(NEW_COLUMNS), _recreate(OLD_COLUMNS), elidable=False),
    ]
