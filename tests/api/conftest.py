from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from django.core.cache import caches
from rest_framework.test import APIClient

from api.auth import forget_all
from api.models import ApiKey
from tests.conftest import make_user


@pytest.fixture(autouse=True)
def _fresh_rate_counts(settings):
    # The throttle's counts live in the "api" cache: Redis where the suite has one (CI), as in
    # production; each test starts at zero.
    redis_url = os.environ.get("TEST_REDIS_URL")
    if redis_url:
        settings.CACHES = {
            **settings.CACHES,
            "api": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url},
        }
    caches["api"].clear()
    forget_all()  # the tokens this process trusts: a test's rows are rolled back without a word
    yield
    caches["api"].clear()
    forget_all()


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
