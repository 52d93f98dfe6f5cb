"""Each endpoint, each scope, and anonymous: 401 without a token, 403 without the scope, through with it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from api.models import ApiKey
from cases.models import Approval, Case
from customers.models import Allocation, Contact
from tests.api.conftest import client_for
from tests.customers.factories import make_allocation, make_customer

pytestmark = pytest.mark.django_db
SCOPES = ("submit", "read", "write", "admin")
T0 = datetime(2026, 11, 3, 14, 2, tzinfo=UTC)


@pytest.fixture
def objects(db):
    customer = make_customer("R-1")
    allocation = make_allocation("198.51.100.0/29", customer=customer)
    contact = Contact.objects.create(customer=customer, email="owner@home.example")
    case = Case.objects.create(customer=customer, category="spam", first_report_at=T0, last_report_at=T0)
    Approval.objects.create(case=case, rung=30, reason="repeat offender")
    return {"customer": customer, "allocation": allocation, "contact": contact, "case": case}


def calls(o) -> list[tuple[str, str, str, dict | bytes | None]]:
    """(method, url, scopes that open it, body) for every endpoint of /api/v1/."""
    case, account = o["case"].pk, o["customer"].account
    until = (timezone.now() + timedelta(days=3)).isoformat()
    event = {"ip": "198.51.100.7", "time": "2026-11-03T14:02:00Z", "category": "spam"}
    return [
        ("post", "/api/v1/reports/", "submit", event),
        ("get", "/api/v1/messages/999999/", "read submit", None),
        ("get", "/api/v1/cases/", "read", None),
        ("get", f"/api/v1/cases/{case}/", "read", None),
        ("get", "/api/v1/customers/", "read", None),
        ("get", f"/api/v1/customers/{account}/", "read", None),
        ("get", "/api/v1/resolve?ip=198.51.100.7", "read", None),
        ("post", f"/api/v1/cases/{case}/note/", "write", {"note": "called the customer"}),
        ("post", f"/api/v1/cases/{case}/assign/", "write", {"assignee": None}),
        ("post", f"/api/v1/cases/{case}/hold/", "write", {"until": until, "reason": "fixing it"}),
        ("post", f"/api/v1/cases/{case}/approve/", "write", {"reason": "third warning ignored"}),
        ("post", f"/api/v1/cases/{case}/reject/", "write", {"note": "false alarm"}),
        ("post", f"/api/v1/cases/{case}/resolve/", "write", {}),
        ("post", "/api/v1/customers/", "admin", {"account": "B-9", "name": "Shop"}),
        ("patch", f"/api/v1/customers/{account}/", "admin", {"name": "Home Line"}),
        ("post", f"/api/v1/customers/{account}/contacts/", "admin", {"email": "second@home.example"}),
        ("patch", f"/api/v1/contacts/{o['contact'].pk}/", "admin", {"name": "Owner"}),
        ("post", f"/api/v1/customers/{account}/allocations/", "admin", {"network": "203.0.113.0/30"}),
        ("patch", f"/api/v1/allocations/{o['allocation'].pk}/", "admin", {"note": "router"}),
        ("delete", f"/api/v1/contacts/{o['contact'].pk}/", "admin", None),
        ("delete", f"/api/v1/allocations/{o['allocation'].pk}/", "admin", None),
    ]


def send(client, method: str, url: str, body):
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, data=json.dumps(body), content_type="application/json")


def test_anonymous_calls_get_401_with_the_json_error_shape(client, objects):
    for method, url, _scope, body in calls(objects):
        response = send(client_for(None), method, url, body)
        assert response.status_code == 401, (method, url)
        assert response.json()["error"]["code"] == "not_authenticated"
        assert response["WWW-Authenticate"].startswith("Api-Key")


def test_an_unknown_or_malformed_token_gets_401(objects):
    for header in ("Api-Key nope.nope", "Basic dXNlcjpwdw==", "Api-Key"):
        client = client_for(None)
        client.credentials(HTTP_AUTHORIZATION=header)
        assert client.get("/api/v1/cases/").status_code == 401, header


@pytest.mark.parametrize("scope", SCOPES)
def test_each_scope_opens_its_endpoints_and_only_those(token, objects, scope):
    # The token's user is a superuser (every role): only the scope decides here.
    from tests.conftest import make_user

    user = make_user(f"root-{scope}", None)
    user.is_superuser = True
    user.save()
    _key, key = token(scope, user=user)
    for method, url, needed, body in calls(objects):
        response = send(client_for(key), method, url, body)
        if scope in needed.split():
            assert response.status_code not in (401, 403), (method, url, response.content)
            assert response.status_code < 500
        else:
            assert response.status_code == 403, (method, url, response.content)
            assert f'"{needed.split()[0]}"' in response.json()["error"]["message"]


def test_a_bearer_token_works_too(token, objects):
    _key, key = token("read")
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/api/v1/cases/").status_code == 200


def test_revoked_and_expired_tokens_are_refused(token, objects):
    revoked, key1 = token("read")
    revoked.revoked = True
    revoked.save()
    _expired, key2 = token("read", expiry_date=timezone.now() - timedelta(minutes=1))
    for key in (key1, key2):
        response = client_for(key).get("/api/v1/cases/")
        assert response.status_code == 401
        assert "revoked or expired" in response.json()["error"]["message"]


def test_only_the_hash_is_stored(token, objects):
    api_key, key = token("read")
    stored = ApiKey.objects.get(pk=api_key.pk)
    assert key not in stored.hashed_key and key.split(".")[1] not in stored.id
    assert stored.hashed_key.startswith("sha512$$")


def test_an_inactive_users_token_is_refused(token, objects):
    from tests.conftest import make_user

    user = make_user("left-the-company", "noc")
    _k, key = token("read", user=user)
    user.is_active = False
    user.save()
    assert client_for(key).get("/api/v1/cases/").status_code == 401


def test_the_allocation_is_still_there_for_the_walk(objects):
    assert Allocation.objects.filter(pk=objects["allocation"].pk).exists()
