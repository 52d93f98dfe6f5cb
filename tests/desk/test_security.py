"""Sign-in throttling (django-axes), the Content-Security-Policy, HTTPS and HSTS, check --deploy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client, RequestFactory, override_settings
from django.utils import timezone

from abusedesk.lib.client_ip import client_ip

BASE_DIR = Path(settings.BASE_DIR)
DESK_LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
LOGINS = [pytest.param(DESK_LOGIN, id="desk"), pytest.param(ADMIN_LOGIN, id="admin")]

EXPECTED_CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}


def sign_in(client: Client, url: str, username: str, password: str, ip: str = "192.0.2.10"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=ip)


def signed_in_as(client: Client) -> str | None:
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id).get_username() if user_id else None


# --- sign-in throttling -------------------------------------------------------------------------


@pytest.mark.parametrize("url", LOGINS)
def test_a_hundred_wrong_passwords_then_the_right_one_does_not_get_in(admin_user_role, url):
    client = Client()
    for _ in range(100):
        sign_in(client, url, "admin1", "wrong")
    response = sign_in(client, url, "admin1", "pw-admin1")
    assert response.status_code == 429
    assert signed_in_as(client) is None
    page = response.content.decode()
    assert "Sign-in locked for a while" in page
    assert "After 5 failed attempts" in page and "15 minutes" in page
    # Still locked for the desk: the queue sends the visitor to sign in.
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("url", LOGINS)
def test_the_lock_starts_at_the_fifth_failure(admin_user_role, url):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, url, "admin1", "wrong").status_code == 200
    assert sign_in(client, url, "admin1", "wrong").status_code == 429
    assert sign_in(client, url, "admin1", "pw-admin1").status_code == 429


def test_the_lock_is_per_user_name_and_address(admin_user_role, noc_user):
    attacker = Client()
    for _ in range(10):
        sign_in(attacker, DESK_LOGIN, "admin1", "wrong", ip="192.0.2.66")
    # A colleague behind the same address (one office NAT) still signs in with their own name ...
    colleague = Client()
    assert sign_in(colleague, DESK_LOGIN, "noc1", "pw-noc1", ip="192.0.2.66").status_code == 302
    assert signed_in_as(colleague) == "noc1"
    # ... and the owner of the attacked account signs in from their own address.
    owner = Client()
    assert sign_in(owner, DESK_LOGIN, "admin1", "pw-admin1", ip="198.51.100.20").status_code == 302
    assert signed_in_as(owner) == "admin1"


def test_the_lock_lifts_after_the_cool_off(admin_user_role):
    client = Client()
    for _ in range(6):
        sign_in(client, DESK_LOGIN, "admin1", "wrong")
    assert sign_in(client, DESK_LOGIN, "admin1", "pw-admin1").status_code == 429
    with time_machine.travel(timezone.now() + settings.AXES_COOLOFF_TIME + timedelta(minutes=1)):
        assert sign_in(client, DESK_LOGIN, "admin1", "pw-admin1").status_code == 302
        assert signed_in_as(client) == "admin1"


def test_a_success_forgets_the_earlier_failures(admin_user_role):
    client = Client()
    for _ in range(4):
        sign_in(client, DESK_LOGIN, "admin1", "wrong")
    assert sign_in(client, DESK_LOGIN, "admin1", "pw-admin1").status_code == 302
    client.post("/accounts/logout/")
    for _ in range(4):
        assert sign_in(client, DESK_LOGIN, "admin1", "wrong").status_code == 200
    assert sign_in(client, DESK_LOGIN, "admin1", "pw-admin1").status_code == 302


def test_the_failures_are_kept_in_the_database(admin_user_role):
    from axes.models import AccessAttempt

    client = Client()
    for _ in range(3):
        sign_in(client, ADMIN_LOGIN, "admin1", "wrong", ip="192.0.2.77")
    attempt = AccessAttempt.objects.get(username="admin1")
    assert (attempt.ip_address, attempt.failures_since_start) == ("192.0.2.77", 3)


def test_the_client_address_comes_from_the_proxy_only_when_trusted():
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.9, 198.51.100.4")
    with override_settings(BEHIND_PROXY=False):
        assert client_ip(request) == "10.0.0.2"
    with override_settings(BEHIND_PROXY=True):
        # The last entry is what our proxy appended; the first one the client could have forged.
        assert client_ip(request) == "198.51.100.4"


# --- Content-Security-Policy --------------------------------------------------------------------


def policy(response) -> dict[str, str]:
    header = response.headers["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in header.split(";") if part.strip())


@pytest.mark.parametrize(
    "url", [DESK_LOGIN, "/", "/messages/", "/admin/", "/admin/cases/case/", "/admin/customers/customer/"]
)
def test_desk_and_admin_pages_carry_the_policy(admin_user_role, url):
    client = Client()
    if url != DESK_LOGIN:
        client.force_login(admin_user_role)
    response = client.get(url)
    assert response.status_code == 200
    directives = policy(response)
    assert {name: directives.get(name) for name in EXPECTED_CSP} == EXPECTED_CSP
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_the_locked_out_page_carries_the_policy_too(admin_user_role):
    client = Client()
    for _ in range(6):
        response = sign_in(client, DESK_LOGIN, "admin1", "wrong")
    assert response.status_code == 429
    assert policy(response)["script-src"] == "'self'"


# --- HTTPS, HSTS, the proxy header: the settings as production reads them -------------------------

PRODUCTION_REQUIRED = {
    "SECRET_KEY": "k" * 20 + "-production-like-secret-0123456789-abcdefghij",
    "ALLOWED_HOSTS": "desk.isp.example",
    "DATABASE_URL": "sqlite:///" + str(BASE_DIR / "var" / "never-opened.sqlite3"),
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",
}


def example_env() -> dict[str, str]:
    """.env.example as production would fill it: every listed variable, the required blanks set."""
    values = {}
    for line in (BASE_DIR / ".env.example").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        values[name.strip()] = value.split(" #", 1)[0].strip()
    return values | {name: value for name, value in PRODUCTION_REQUIRED.items() if not values.get(name)}


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    # Nothing of the test run's own settings leaks in: only PATH and what the case names.
    keep = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    return keep | extra


def settings_under(env: dict[str, str]) -> dict:
    code = (
        "import json, abusedesk.settings as s;"
        "print(json.dumps({n: getattr(s, n, None) for n in ('SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS',"
        " 'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SECURE_PROXY_SSL_HEADER', 'SESSION_COOKIE_SECURE', 'BEHIND_PROXY')}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=clean_env(env), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_production_defaults_redirect_to_https_with_hsts_and_trust_no_proxy_header():
    got = settings_under(example_env())
    assert got["SECURE_SSL_REDIRECT"] is True
    assert got["SECURE_HSTS_SECONDS"] >= 31536000 and got["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert got["SESSION_COOKIE_SECURE"] is True
    assert got["SECURE_PROXY_SSL_HEADER"] is None


def test_the_proxy_header_is_trusted_only_when_configured():
    got = settings_under(example_env() | {"BEHIND_PROXY": "true"})
    assert got["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert got["BEHIND_PROXY"] is True


def test_a_developer_machine_has_neither_redirect_nor_hsts():
    got = settings_under({"DEBUG": "true"})
    assert (got["SECURE_SSL_REDIRECT"], got["SECURE_HSTS_SECONDS"]) == (False, 0)


def test_check_deploy_is_clean_under_the_example_production_settings():
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=clean_env(example_env()),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "System check identified no issues" in out.stdout


@override_settings(SECURE_SSL_REDIRECT=True, SECURE_HSTS_SECONDS=31536000, SECURE_HSTS_INCLUDE_SUBDOMAINS=True)
def test_plain_http_is_redirected_and_https_answers_with_hsts(db):
    client = Client()
    response = client.get(DESK_LOGIN)
    assert response.status_code == 301
    assert response["Location"] == f"https://testserver{DESK_LOGIN}"
    secure = client.get(DESK_LOGIN, secure=True)
    assert secure.status_code == 200
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
