"""Rate limits per token (429 + Retry-After), the size limit (413), the call log, JSON errors under /api/."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import path

from api.models import ApiCall, ApiKey
from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db
EVENT = {"ip": "198.51.100.7", "time": "2026-11-03T14:02:00Z", "category": "spam"}


def test_a_token_over_its_rate_gets_429_with_retry_after_and_others_go_on(token):
    _slow, slow_key = token("read", rate="3/min")
    _other, other_key = token("read", rate="3/min")
    slow = client_for(slow_key)
    assert [slow.get("/api/v1/cases/").status_code for _ in range(3)] == [200, 200, 200]
    refused = slow.get("/api/v1/cases/")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused.json()["error"]["code"] == "throttled" and "try again in" in refused.json()["error"]["message"]
    assert client_for(other_key).get("/api/v1/cases/").status_code == 200


def test_the_default_rate_comes_from_the_setting(token, settings):
    settings.API_RATE = "2/s"
    _k, key = token("read")
    client = client_for(key)
    statuses = [client.get("/api/v1/cases/").status_code for _ in range(3)]
    assert statuses[:2] == [200, 200] and statuses[2] in (200, 429)  # the window may turn between calls


def test_the_body_limit_is_a_setting_and_answers_413_json(token, settings):
    settings.API_MAX_BODY_BYTES = 1000
    _k, key = token("submit")
    body = json.dumps([EVENT] * 30)
    response = client_for(key).post("/api/v1/reports/", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"] == {
        "status": 413,
        "code": "too_large",
        "message": f"The body is {len(body):,} bytes; the limit is 1,000.",
    }


def test_every_call_is_logged_with_its_token_and_the_token_records_its_last_use(token):
    api_key, key = token("submit")
    client_for(key).post("/api/v1/reports/", data=json.dumps(EVENT), content_type="application/json")
    client_for(key).get("/api/v1/cases/")
    client_for(None).get("/api/v1/cases/")
    calls = list(ApiCall.objects.order_by("id").values_list("key_id", "method", "path", "status"))
    assert calls == [
        (api_key.pk, "POST", "/api/v1/reports/", 202),
        (api_key.pk, "GET", "/api/v1/cases/", 403),
        (None, "GET", "/api/v1/cases/", 401),
    ]
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at is not None


def test_unknown_urls_and_wrong_methods_answer_in_the_json_shape(token):
    _k, key = token("read")
    client = client_for(key)
    missing = client.get("/api/v1/nothing-here/")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = client.delete("/api/v1/cases/")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
    assert "GET" in wrong["Allow"]


def crash(request):
    raise RuntimeError("a bug")


urlpatterns = [path("api/v1/crash/", crash)]


def test_a_crash_under_api_is_a_json_500_without_the_details(settings):
    settings.ROOT_URLCONF = __name__
    settings.DEBUG = False
    response = Client(raise_request_exception=False).get("/api/v1/crash/")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "server_error"
    assert b"a bug" not in response.content


def test_the_desk_pages_are_not_touched_by_the_api_middleware(client):
    response = client.get("/no-such-page/")
    assert not response.get("Content-Type", "").startswith("application/json")
