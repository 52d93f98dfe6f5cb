"""Browser tests: headless Chromium (the system's, never a downloaded one) against live_server.

pytest-django's live_server serves static files through the staticfiles finders, so the
pages load Bootstrap and htmx from node_modules exactly as `make demo` does, with no CDN.
"""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures_services import missing_service

# Playwright's sync API runs an event loop in the test's thread; Django would otherwise
# refuse the test's own ORM calls (creating users, data) as "async unsafe".
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
E2E_PASSWORD = "e2e-pass-4821"
SCREENSHOT_DIR = Path(os.environ.get("E2E_SCREENSHOT_DIR", "/tmp"))


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        missing_service(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium_browser, live_server) -> Iterator:
    """A fresh page (own cookies) that refuses to talk to anything but the live server."""
    context = chromium_browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    outside: list[str] = []

    def only_live_server(route) -> None:
        # The desk must work with no internet: any other host is a bug (a CDN link, say).
        url = route.request.url
        if url.startswith(live_server.url) or url.startswith(("data:", "blob:", "about:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    context.route("**/*", only_live_server)
    page = context.new_page()
    page.outside_requests = outside
    yield page
    context.close()


@pytest.fixture
def roles(transactional_db) -> None:
    """The role groups, with their permissions.

    live_server tests run in transactional mode; each one ends with a flush that empties
    every table, so the groups the data migration made may be gone. Recreate them from
    the migration's own table.
    """
    from django.contrib.auth.models import Group, Permission

    table = importlib.import_module("cases.migrations.0002_roles").ROLE_PERMISSIONS
    for role, by_app in table.items():
        group, _ = Group.objects.get_or_create(name=role)
        perms = [
            Permission.objects.get(content_type__app_label=app, codename=f"{action}_{model}")
            for app, models in by_app.items()
            for model, actions in models.items()
            for action in actions
        ]
        group.permissions.set(perms)


@pytest.fixture
def e2e_user(roles) -> Callable:
    """make(role) -> a staff user in that role, password E2E_PASSWORD (as seed_demo makes them)."""
    from django.contrib.auth.models import Group, User

    def make(role: str):
        user = User.objects.create_user(username=f"{role}-e2e", password=E2E_PASSWORD, is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        return user

    return make


def login(page, live_server, user, password: str = E2E_PASSWORD) -> None:
    """Sign in through the login form, as a person would, and wait for the queue page."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", user.get_username())
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    if "/accounts/login/" in page.url:
        raise AssertionError(f"login as {user.get_username()} failed: still on {page.url}")
