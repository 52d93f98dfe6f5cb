"""Create the desk's roles (groups) with their permissions."""

from django.db import migrations

# Model permissions per role. Page access is checked by role (abusedesk.roles); these
# decide what each role can do in the admin.
ROLE_PERMISSIONS = {
    "noc": {
        "cases": {
            "inboundmessage": ["view", "add"],
            "report": ["view", "add"],
            "case": ["view", "change"],
            "caseevent": ["view"],
            "notice": ["view"],
            "policy": ["view"],
        },
        "customers": {"customer": ["view"], "contact": ["view"], "allocation": ["view"]},
    },
    "manager": {
        "cases": {
            "inboundmessage": ["view", "add"],
            "report": ["view", "add"],
            "case": ["view", "change"],
            "caseevent": ["view"],
            "notice": ["view"],
            "policy": ["view"],
        },
        "customers": {
            "customer": ["view"],
            "contact": ["view"],
            "allocation": ["view"],
            "allocationchange": ["view"],
            "importrun": ["view"],
        },
    },
    "admin": {
        "cases": {
            "inboundmessage": ["view", "add"],
            "report": ["view", "add"],
            "case": ["view", "change"],
            "caseevent": ["view"],
            "notice": ["view"],
            "policy": ["view", "add", "change"],
        },
        "customers": {
            "customer": ["view", "add", "change", "delete"],
            "contact": ["view", "add", "change", "delete"],
            "allocation": ["view", "add", "change", "delete"],
            "allocationchange": ["view"],
            "importrun": ["view", "add"],
        },
    },
}


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally made after all migrations; this migration needs them now.
    for label in ("cases", "customers"):
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, by_app in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        perms = []
        for app_label, models in by_app.items():
            for model, actions in models.items():
                for action in actions:
                    perms.append(
                        Permission.objects.get(content_type__app_label=app_label, codename=f"{action}_{model}")
                    )
        group.permissions.set(perms)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLE_PERMISSIONS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("customers", "0001_initial"),
        ("cases", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
