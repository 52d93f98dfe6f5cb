"""Who can reach which URL: every named URL of the project, walked from the URL conf.

New pages are covered as they are added: anonymous users must be sent to the login page
(unless the view is marked login_not_required), each role must get a page, a method
refusal or a 404 for a missing object, and a user without a role must be refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.converters import IntConverter

from cases.models import Approval, Case, InboundMessage, Report
from customers.models import Customer

ROLES = ("noc", "manager", "admin")
# Pages only managers (and admins) open: NOC staff get 403.
MANAGER_PAGES = {"cases:approval_queue", "cases:manager_numbers", "cases:manager_history", "cases:manager_history_csv"}
T0 = datetime(2025, 3, 1, tzinfo=UTC)


def named_patterns(patterns=None, namespace: str = "") -> Iterator[tuple[str, URLPattern]]:
    """(reversible name, pattern) for every named URL outside the Django admin (tested on its own)."""
    for p in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(p, URLResolver):
            if p.namespace == "admin":
                continue
            yield from named_patterns(p.url_patterns, f"{namespace}{p.namespace}:" if p.namespace else namespace)
        elif p.name:
            yield namespace + p.name, p


ALL_URLS = sorted(named_patterns(), key=lambda item: item[0])


def needs_login(pattern: URLPattern) -> bool:
    return getattr(pattern.callback, "login_required", True)


def url_for(name: str, pattern: URLPattern, objects: dict[str, int]) -> str:
    kwargs = {}
    for arg, converter in getattr(pattern.pattern, "converters", {}).items():
        if isinstance(converter, IntConverter):
            # Case pages get a real case, message pages a real message; anything else a missing id.
            short = name.split(":")[-1]
            kwargs[arg] = next((pk for prefix, pk in objects.items() if short.startswith(prefix)), 999999)
        else:
            kwargs[arg] = "x"
    return reverse(name, kwargs=kwargs)


@pytest.fixture
def objects(db) -> dict[str, int]:
    customer = Customer.objects.create(account="R-1", name="Home Line", kind="residential")
    case = Case.objects.create(customer=customer, category="spam", first_report_at=T0, last_report_at=T0)
    raw = b"From: a@example.org\r\nSubject: test\r\n\r\nhello\r\n"
    message = InboundMessage.objects.create(
        raw=raw, size=len(raw), sha256=hashlib.sha256(raw).hexdigest(), channel="email", subject="test"
    )
    report = Report.objects.create(
        case=case, customer=customer, ip="198.51.100.7", occurred_at=T0, category="spam", dedupe_key="walk"
    )
    approval = Approval.objects.create(case=case, rung=30, reason="the access walk")
    ids = {"case": case.pk, "message": message.pk, "report": report.pk, "approval": approval.pk}
    return {**ids, "customer": customer.pk}


def user_with(role: str | None, *, staff: bool = False) -> Client:
    user = User.objects.create_user(username=f"u-{role}", password="pw", is_staff=staff)
    if role:
        user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


def test_the_url_conf_was_walked():
    names = {name for name, _ in ALL_URLS}
    assert {"login", "logout", "cases:home"} <= names


def test_the_login_page_is_open_to_anonymous_users(client, db):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'name="password"' in response.content


def test_home_sends_anonymous_users_to_log_in(client, db):
    response = client.get(reverse("cases:home"))
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


@pytest.mark.parametrize(("name", "pattern"), ALL_URLS, ids=[name for name, _ in ALL_URLS])
def test_anonymous_users_are_sent_to_log_in_everywhere(client, objects, name, pattern):
    url = url_for(name, pattern, objects)
    if not needs_login(pattern):
        # Public pages (the customer's signed link) refuse a made-up token with 403; the API
        # (its own tokens, no login) answers a call without a token with 401.
        assert client.get(url).status_code in (200, 302, 401, 403, 404, 405)
        return
    for response in (client.get(url), client.post(url)):
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_the_queue(db, role):
    response = user_with(role).get(reverse("cases:home"))
    assert response.status_code == 200


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "pattern"), ALL_URLS, ids=[name for name, _ in ALL_URLS])
def test_each_role_can_open_every_page(objects, role, name, pattern):
    if not needs_login(pattern) or name == "logout":
        return
    url = url_for(name, pattern, objects)
    response = user_with(role).get(url)
    if role == "noc" and name in MANAGER_PAGES:
        assert response.status_code == 403, url
        return
    # 405: a POST-only action; 404: a URL whose object this walk cannot make up.
    assert response.status_code in (200, 405, 404), url
    if response.status_code == 404:
        assert str(999999) in url, f"{url} is 404 for an existing object"


@pytest.mark.parametrize(("name", "pattern"), ALL_URLS, ids=[name for name, _ in ALL_URLS])
def test_a_user_without_a_role_is_refused(objects, name, pattern):
    if not needs_login(pattern) or name == "logout":
        return
    url = url_for(name, pattern, objects)
    client = user_with(None)
    assert client.get(url).status_code in (403, 405), url
    assert client.post(url).status_code in (403, 405), url


def test_logout_is_post_only(db):
    client = user_with("noc")
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert client.get(reverse("cases:home")).status_code == 302


def test_the_admin_needs_login_and_staff_status(client, db):
    response = client.get("/admin/")
    assert response.status_code == 302 and "login" in response["Location"]
    assert user_with("noc", staff=False).get("/admin/").status_code == 302


@pytest.mark.parametrize("role", ROLES)
def test_every_role_with_staff_status_opens_the_admin(db, role):
    client = user_with(role, staff=True)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/customers/customer/").status_code == 200
    assert client.get("/admin/cases/case/").status_code == 200
    can_add_customers = client.get("/admin/customers/customer/add/").status_code == 200
    assert can_add_customers is (role == "admin")
    can_edit_policy = client.get("/admin/cases/policy/add/").status_code == 200
    assert can_edit_policy is (role == "admin")


def test_the_message_admin_keeps_raw_bytes_out_of_the_list_and_escapes_them(db):
    raw = b"Subject: hi\r\n\r\n<script>alert(1)</script>\r\n"
    message = InboundMessage.objects.create(
        raw=raw, size=len(raw), sha256=hashlib.sha256(raw).hexdigest(), channel="email", subject="hi"
    )
    client = user_with("noc", staff=True)
    listing = client.get("/admin/cases/inboundmessage/")
    assert listing.status_code == 200
    assert b"alert(1)" not in listing.content
    assert "raw" in listing.context["cl"].queryset.query.deferred_loading[0]
    detail = client.get(f"/admin/cases/inboundmessage/{message.pk}/change/")
    assert detail.status_code == 200
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in detail.content
    assert b"<script>alert(1)" not in detail.content
    assert client.post(f"/admin/cases/inboundmessage/{message.pk}/delete/", {"post": "yes"}).status_code == 403
