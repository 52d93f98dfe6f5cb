"""Admins make, revoke and read API tokens and read the call log in the admin. Added to the group,
not set, so what the desk's migrations granted stays."""

from django.db import migrations

ADMIN = {"apikey": ["add", "change", "view"], "apicall": ["view"]}


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config("api")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = [
        Permission.objects.get(content_type__app_label="api", codename=f"{action}_{model}")
        for model, actions in ADMIN.items()
        for action in actions
    ]
    for group in Group.objects.filter(name="admin"):
        group.permissions.add(*perms)


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0001_initial"),
        ("cases", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
