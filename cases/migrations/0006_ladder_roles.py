"""Admin permissions for the ladder's models: every role reads them; admins edit the reporter
sources and the notice templates (policies were already theirs). Added to the groups, not set,
so what 0002_roles granted stays."""

from django.db import migrations

READ_ALL = ["approval", "policychange", "customerreply", "provisioningcall", "reportersource", "noticetemplate"]
ADMIN_EDITS = {"reportersource": ["add", "change", "delete"], "noticetemplate": ["add", "change"]}


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for label in ("cases", "customers"):
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")

    def perm(app_label: str, codename: str):
        return Permission.objects.get(content_type__app_label=app_label, codename=codename)

    for group in Group.objects.filter(name__in=["noc", "manager", "admin"]):
        perms = [perm("cases", f"view_{model}") for model in READ_ALL]
        if group.name in ("manager", "admin"):
            perms.append(perm("customers", "view_standingchange"))
        if group.name == "admin":
            perms += [perm("cases", f"{a}_{model}") for model, actions in ADMIN_EDITS.items() for a in actions]
        group.permissions.add(*perms)


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0005_ladder_baseline"),
        ("customers", "0004_ladder"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
