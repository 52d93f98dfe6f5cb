from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

# Real services for the tests that need them: DNS, IMAP, SMTP servers, Redis and a Celery worker.
pytest_plugins = ["tests.fixtures_services"]


def make_user(username: str, role: str | None) -> User:
    user = User.objects.create_user(username=username, password="pw-" + username, email=f"{username}@isp.example")
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def noc_user(db) -> User:
    return make_user("noc1", "noc")


@pytest.fixture
def manager_user(db) -> User:
    return make_user("manager1", "manager")


@pytest.fixture
def admin_user_role(db) -> User:
    user = make_user("admin1", "admin")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


@pytest.fixture
def norole_user(db) -> User:
    return make_user("nobody", None)
