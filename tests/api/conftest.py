from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.cache import caches
from rest_framework.test import APIClient

from api.models import ApiKey
from tests.conftest import make_user


@pytest.fixture(autouse=True)
def _fresh_rate_counts():
    # The throttle's counts live in the "api" cache (Redis on CI): each test starts at zero.
    caches["api"].clear()
    yield
    caches["api"].clear()


def client_for(key: str | None) -> APIClient:
    client = APIClient()
    if key:
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.fixture
def token(db) -> Callable[..., tuple[ApiKey, str]]:
    """token(*scopes, role=None|"noc"|"manager"|"admin", user=None) -> (ApiKey, key)."""

    def make(*scopes: str, role: str | None = None, user=None, **fields) -> tuple[ApiKey, str]:
        if user is None and role is not None:
            user = make_user(f"api-{role}-{ApiKey.objects.count()}", role)
        return ApiKey.objects.create_key(name=f"test {'+'.join(scopes)}", scopes=list(scopes), user=user, **fields)

    return make


@pytest.fixture
def api(token) -> Callable[..., APIClient]:
    """api(*scopes, role=...) -> an APIClient sending a fresh token with those scopes."""

    def make(*scopes: str, role: str | None = None, **fields) -> APIClient:
        return client_for(token(*scopes, role=role, **fields)[1])

    return make
