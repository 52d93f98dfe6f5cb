"""The OpenAPI schema validates, the docs are served from our own static files, and schemathesis
finds no 5xx anywhere in the API (positive and negative cases, each operation, a modest budget)."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.generation import GenerationMode

from cases.models import Case
from cases.services.intake import receive
from customers.models import Contact
from tests.conftest import make_user
from tests.customers.factories import make_allocation, make_customer

pytestmark = pytest.mark.django_db
EXAMPLES = 10
T0 = datetime(2026, 11, 3, 14, 2, tzinfo=UTC)


def test_the_schema_validates_against_the_openapi_3_meta_schema():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(schema)  # raises on an invalid document
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/reports/" in schema["paths"] and "/api/v1/resolve" in schema["paths"]
    assert schema["components"]["securitySchemes"]["ApiKey"]["in"] == "header"


def test_the_schema_and_the_docs_are_served_without_a_token_and_without_a_cdn(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"openapi: 3" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn" not in html.lower() and "https://" not in html.split("<body")[0]


@pytest.fixture
def connection_kept_across_requests():
    # Django's WSGI handler closes the connection after each request; the test's transaction
    # lives on it. django.test.Client disconnects these signals in the same way.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_schemathesis_finds_no_server_error(token, settings, connection_kept_across_requests):
    settings.API_RATE = "100000/min"
    user = make_user("fuzzer", None)
    user.is_superuser = True
    user.save()
    _key, key = token("submit", "read", "write", "admin", user=user)
    customer = make_customer("R-1")
    allocation = make_allocation("198.51.100.0/24", customer=customer)
    contact = Contact.objects.create(customer=customer, email="owner@home.example")
    case = Case.objects.create(customer=customer, category="spam", first_report_at=T0, last_report_at=T0)
    message, _ = receive(b"Subject: x\r\n\r\n198.51.100.7 sent spam\r\n", "email")
    # Positive cases call existing objects (random ids would mostly meet 404s).
    existing = {"/cases/": case.pk, "/contacts/": contact.pk, "/allocations/": allocation.pk, "/messages/": message.pk}
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    headers = {"Authorization": f"Api-Key {key}"}
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 19

    for operation in operations:
        fixed = {}
        if "{pk}" in operation.path:
            fixed["pk"] = next(pk for part, pk in existing.items() if part in operation.path)
        if "{account}" in operation.path:
            fixed["account"] = "R-1"
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(
                generation_mode=mode, path_parameters=fixed if mode == GenerationMode.POSITIVE else None
            )

            @given(case=strategy)
            @hypothesis_settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case):
                case.headers = {**(case.headers or {}), **headers}
                response = case.call()
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path} {case.body!r:.200} -> {response.status_code}")

            run()
    assert failures == []
    # The fuzzing reached the views, not only the validation: some calls went through.
    assert statuses[200] + statuses[201] + statuses[202] > 20, statuses
    assert time.monotonic() - started < 60
