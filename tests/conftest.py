from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

# Real services for the tests that need them: DNS, IMAP, SMTP servers, Redis and a Celery worker.
pytest_plugins = ["tests.fixtures_services"]


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked requires_postgres skip visibly (with the reason) when the suite runs on SQLite."""
    from django.conf import settings

    if "postgresql" in settings.DATABASES["default"]["ENGINE"]:
        return
    skip = pytest.mark.skip(
        reason="requires PostgreSQL: run with DATABASE_URL=postgres://... (SQLite has no such feature)"
    )
    for item in items:
        if "requires_postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    """The per-process caches (policies, reporter sources) start empty in every test: a test's
    rows are rolled back without a signal, and must not be seen by the next test."""
    from cases.models import Policy, ReporterSource

    Policy.forget_cached()
    ReporterSource.forget_cached()
    yield


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


def pytest_sessionstart(session) -> None:
    """CI sets ABUSEDESK_REQUIRE_POSTGRES=1: a run that fell back to SQLite would skip every
    PostgreSQL-only test and still pass, so it stops instead."""
    import os

    from django.conf import settings

    if os.environ.get("ABUSEDESK_REQUIRE_POSTGRES") == "1":
        engine = settings.DATABASES["default"]["ENGINE"]
        if "postgresql" not in engine:
            pytest.exit(f"ABUSEDESK_REQUIRE_POSTGRES=1 but the suite runs on {engine}: set DATABASE_URL", returncode=3)
