"""What one API call costs and skips: the desk's browser middleware, a token read per call, a
transaction per log row, a second round trip for the rate count; and what must hold all the same."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from api import auth
from api.middleware import log_call
from api.models import ApiCall, ApiKey
from cases.models import InboundMessage
from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db
EVENT = {"ip": "198.51.100.7", "time": "2026-11-03T14:02:00Z", "category": "spam"}


def submit(client, ip: str = "198.51.100.7"):
    return client.post("/api/v1/reports/", data=json.dumps({**EVENT, "ip": ip}), content_type="application/json")


def test_api_calls_skip_the_desks_browser_middleware_and_keep_the_security_headers(token, client):
    _k, key = token("read")
    response = client_for(key).get("/api/v1/cases/")
    assert response.status_code == 200
    assert "Content-Security-Policy" not in response and "X-Frame-Options" not in response
    assert not response.cookies  # no session, no CSRF cookie
    assert response["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware still runs
    # The docs are a page: they keep the whole stack, CSP included; so do the desk's pages.
    assert "Content-Security-Policy" in client.get("/api/docs/")
    assert "Content-Security-Policy" in client.get("/accounts/login/")


def test_the_host_check_and_the_https_redirect_still_hold_for_api_calls(token, settings):
    _k, key = token("read")
    bad_host = client_for(key).get("/api/v1/cases/", HTTP_HOST="evil.example")
    assert bad_host.status_code == 400 and bad_host.json()["error"]["code"] == "invalid"
    settings.SECURE_SSL_REDIRECT = True
    plain = client_for(key).get("/api/v1/cases/")
    assert plain.status_code == 301 and plain["Location"].startswith("https://")


def test_an_api_path_without_its_slash_is_still_redirected(token):
    _k, key = token("read")
    response = client_for(key).get("/api/v1/cases")
    assert response.status_code == 301 and response["Location"] == "/api/v1/cases/"


def test_a_submission_costs_one_insert_for_the_message_and_one_for_the_log(token):
    _k, key = token("submit")
    client = client_for(key)
    assert submit(client, "198.51.100.1").status_code == 202  # reads the token, records its first use
    with CaptureQueriesContext(connection) as queries:
        assert submit(client, "198.51.100.2").status_code == 202
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    # The test's own transaction turns receive()'s into a savepoint.
    assert [s for s in statements if s not in ("SAVEPOINT", "RELEASE")] == ["INSERT", "INSERT"]
    assert InboundMessage.objects.count() == 2 and ApiCall.objects.filter(status=202).count() == 2


def test_a_revoked_token_works_on_for_the_cache_time_at_most(token, settings, monkeypatch):
    settings.API_TOKEN_CACHE_SECONDS = 10
    now = [1000.0]
    monkeypatch.setattr(auth, "_clock", lambda: now[0])
    api_key, key = token("read")
    client = client_for(key)
    assert client.get("/api/v1/cases/").status_code == 200
    # Revoked by another process (the admin's own process forgets it at once: test_admin).
    ApiKey.objects.filter(pk=api_key.pk).update(revoked=True)
    now[0] += 9.9
    assert client.get("/api/v1/cases/").status_code == 200
    now[0] += 0.2
    refused = client.get("/api/v1/cases/")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "authentication_failed"


def test_a_cached_token_still_checks_the_key_and_the_expiry(token, settings, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    api_key, key = token("read", expiry_date=timezone.now() + timedelta(hours=1))
    assert client_for(key).get("/api/v1/cases/").status_code == 200
    wrong = key[:-1] + ("a" if key[-1] != "a" else "b")
    assert client_for(wrong).get("/api/v1/cases/").status_code == 401
    cached = auth.usable_token(api_key.prefix)
    monkeypatch.setattr(cached, "expiry_date", timezone.now() - timedelta(seconds=1))
    assert client_for(key).get("/api/v1/cases/").status_code == 401


def test_with_no_cache_time_every_call_reads_the_token(token, settings):
    settings.API_TOKEN_CACHE_SECONDS = 0
    api_key, key = token("read")
    client = client_for(key)
    assert client.get("/api/v1/cases/").status_code == 200
    ApiKey.objects.filter(pk=api_key.pk).update(revoked=True)
    assert client.get("/api/v1/cases/").status_code == 401


def test_calls_go_on_when_the_rate_counter_is_unreachable(token, settings, caplog):
    unreachable = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}
    _k, key = token("submit", rate="1/min")
    client = client_for(key)
    with override_settings(CACHES={**settings.CACHES, "api": unreachable}):
        assert [submit(client, f"198.51.100.{n}").status_code for n in (1, 2)] == [202, 202]
    assert "rate limit not counted" in caplog.text


@pytest.mark.requires_postgres
@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_log_row_commits_in_one_round_trip_and_a_failure_leaves_the_connection_clean(
    token,
):
    api_key, key = token("submit")
    with CaptureQueriesContext(connection) as queries:
        assert submit(client_for(key)).status_code == 202
    logged = [q["sql"] for q in queries.captured_queries if "api_apicall" in q["sql"]]
    assert len(logged) == 1 and logged[0].startswith("BEGIN;") and logged[0].endswith("COMMIT")
    assert ApiCall.objects.get().key_id == api_key.pk

    class Request:
        method = "GET"
        path_info = "/api/v1/cases/"
        META: dict = {}

    class Response:
        status_code = -1  # refused by the column's CHECK (status >= 0)

    log_call(Request(), Response(), 0.0)
    assert connection.get_autocommit() and not connection.in_atomic_block
    with connection.cursor() as cursor:  # the aborted transaction was ended
        cursor.execute("SELECT count(*) FROM api_apicall")
        assert cursor.fetchone() == (1,)


def test_events_share_their_validating_fields_and_each_body_is_judged_alone(token):
    from api.serializers import EventSerializer

    first, second = EventSerializer(data=EVENT), EventSerializer(data={**EVENT, "ip": "not-an-ip", "x": 1})
    assert first.fields is second.fields  # built once, not deep-copied per event
    assert first.is_valid() and not second.is_valid()
    assert set(second.errors) == {"ip", "x"} and not first.errors
    _k, key = token("submit")
    client = client_for(key)
    bad = client.post(
        "/api/v1/reports/", data=json.dumps([EVENT, {**EVENT, "time": "soon"}]), content_type="application/json"
    )
    assert bad.status_code == 400 and list(bad.json()["error"]["fields"]) == ["1.time"]
    assert submit(client).status_code == 202


@pytest.mark.django_db(transaction=True)
def test_a_call_with_a_token_deleted_meanwhile_is_logged_under_its_prefix(token):
    api_key, key = token("submit")
    client = client_for(key)
    assert submit(client, "198.51.100.1").status_code == 202
    ApiKey.objects.filter(pk=api_key.pk).delete()  # by another process: this one still trusts it
    assert submit(client, "198.51.100.2").status_code == 202
    calls = list(ApiCall.objects.order_by("id").values_list("key_id", "key_prefix", "status"))
    assert calls == [(None, api_key.prefix, 202), (None, api_key.prefix, 202)]
