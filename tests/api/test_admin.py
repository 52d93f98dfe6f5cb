"""Tokens are made and revoked in the admin: the key is shown once, only its hash is kept."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from api.models import ApiCall, ApiKey
from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db


def admin_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_admin_makes_a_token_sees_it_once_and_revokes_it(admin_user_role):
    client = admin_client(admin_user_role)
    form = {"name": "Partner feed", "scopes": ["submit", "read"], "rate": "120/min", "expiry_date_0": "", "user": ""}
    response = client.post("/admin/api/apikey/add/", form, follow=True)
    assert response.status_code == 200
    shown = re.search(r"The API key for Partner feed is: (\S+)\. ", response.content.decode())
    assert shown, response.content[:2000]
    key = shown.group(1)
    token = ApiKey.objects.get(name="Partner feed")
    assert token.scopes == ["submit", "read"] and token.rate == "120/min"
    assert key not in token.hashed_key
    assert client_for(key).get("/api/v1/cases/").status_code == 200
    page = client.get(f"/admin/api/apikey/{token.pk}/change/")
    assert key not in page.content.decode()  # shown once, never again
    client.post(f"/admin/api/apikey/{token.pk}/change/", {**form, "revoked": "on"})
    assert ApiKey.objects.get(pk=token.pk).revoked
    assert client_for(key).get("/api/v1/cases/").status_code == 401
    assert client.get("/admin/api/apicall/").status_code == 200
    # The refused call is logged too, without a token: a revoked one no longer authenticates anything.
    assert list(ApiCall.objects.order_by("id").values_list("key_id", "status")) == [(token.pk, 200), (None, 401)]


def test_a_bad_rate_is_refused_in_the_admin(admin_user_role):
    response = admin_client(admin_user_role).post(
        "/admin/api/apikey/add/", {"name": "x", "scopes": ["read"], "rate": "lots"}
    )
    assert response.status_code == 200 and b"is not a rate like 600/min" in response.content
    assert not ApiKey.objects.exists()


def test_noc_staff_cannot_make_tokens(noc_user):
    noc_user.is_staff = True
    noc_user.save()
    assert admin_client(noc_user).get("/admin/api/apikey/add/").status_code == 403
