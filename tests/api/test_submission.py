"""POST /api/v1/reports/: JSON events, XARF v4 and raw mail land through receive(), as mail does."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from cases.models import InboundMessage, ParseStatus, Report
from cases.services.intake import process_message, receive
from tests.cases.helpers import customer_with

pytestmark = pytest.mark.django_db
SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "intake"
URL = "/api/v1/reports/"
WHEN = "2026-11-03T14:02:00Z"


def event(**fields) -> dict:
    return {"ip": "198.51.100.7", "time": WHEN, "category": "spam", **fields}


def post_json(client, body, **extra):
    data = body if isinstance(body, bytes) else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json", **extra)


def report_rows(message_id: int) -> list[tuple]:
    rows = Report.objects.filter(message_id=message_id).order_by("id")
    return [
        (
            r.ip,
            r.port,
            r.occurred_at,
            r.category,
            r.reporter,
            r.reporter_org,
            r.format,
            r.external_id,
            r.evidence,
            r.customer_id,
            r.unassigned_reason,
            r.confidence,
        )
        for r in rows
    ]


def test_one_event_is_stored_queued_and_answered_202(api):
    customer = customer_with("198.51.100.0/24", "R-100")
    response = post_json(api("submit"), event(port=25, evidence="Received: from ...", reporter="fbl@mail.example"))
    assert response.status_code == 202
    body = response.json()
    assert body["created"] is True and body["status"] == ParseStatus.NEW
    assert response["Location"] == body["url"] == f"/api/v1/messages/{body['id']}/"
    message = InboundMessage.objects.with_raw().get(pk=body["id"])
    assert message.channel == "api" and message.status == ParseStatus.NEW  # parsed later, by a worker
    process_message(message.pk)
    (report,) = Report.objects.filter(message=message)
    assert (report.ip, report.port, report.category, report.format) == ("198.51.100.7", 25, "spam", "api")
    assert report.occurred_at.isoformat() == "2026-11-03T14:02:00+00:00"
    assert report.customer == customer and report.case is not None
    assert report.reporter == "fbl@mail.example" and "Received: from" in report.evidence


def test_a_list_of_events_files_each_and_the_url_goes_into_the_evidence(api):
    events = [event(), event(ip="2001:db8::5", category="phishing", url="http://bad.example/login")]
    response = post_json(api("submit"), events)
    assert response.status_code == 202
    process_message(response.json()["id"])
    reports = Report.objects.filter(message_id=response.json()["id"]).order_by("ip")
    assert [(r.ip, r.category) for r in reports] == [("198.51.100.7", "spam"), ("2001:db8::5", "phishing")]
    assert "URL: http://bad.example/login" in reports[1].evidence


def test_the_same_body_twice_is_one_message_received_twice(api):
    client = api("submit")
    first = post_json(client, event()).json()
    second = post_json(client, event())
    assert second.status_code == 202
    assert second.json()["id"] == first["id"] and second.json()["created"] is False
    assert InboundMessage.objects.get(pk=first["id"]).times_received == 2


def test_the_submitter_follows_the_parse_on_the_message_page(api):
    customer_with("198.51.100.0/24", "R-101")
    client = api("submit", "read")
    message_id = post_json(client, event()).json()["id"]
    assert client.get(f"/api/v1/messages/{message_id}/").json()["status"] == "new"
    process_message(message_id)
    page = client.get(f"/api/v1/messages/{message_id}/").json()
    report = Report.objects.get(message_id=message_id)
    assert page["status"] == "parsed" and page["format"] == "api" and page["event_count"] == 1
    assert page["reports"][0]["id"] == report.pk and page["cases"] == [report.case_id]


def test_a_message_that_cannot_be_parsed_waits_in_the_unparsed_queue(api):
    response = api("submit").post(URL, data=b"Subject: hello\r\n\r\nnothing here\r\n", content_type="message/rfc822")
    assert response.status_code == 202
    process_message(response.json()["id"])
    message = InboundMessage.objects.get(pk=response.json()["id"])
    assert message.status == ParseStatus.UNPARSED and message.parse_error


def _samples() -> list[Path]:
    return sorted(p for p in SAMPLES.iterdir() if p.is_file())


@pytest.mark.parametrize("path", _samples(), ids=lambda p: p.name)
def test_every_sample_lands_through_the_api_as_it_does_through_the_mail_pipe(api, path):
    customer_with("10.0.0.0/8", "R-SAMPLES")
    customer_with("192.0.2.0/24", "R-DOCS")
    raw = path.read_bytes()
    content_type = "application/json" if path.suffix == ".json" else "message/rfc822"
    # The mail pipe first, rolled back, so the API's copy is new (receive() is idempotent by bytes).
    savepoint = transaction.savepoint()
    mailed, _ = receive(raw, "email")
    process_message(mailed.pk)
    mailed.refresh_from_db()
    by_mail = (mailed.status, mailed.format, mailed.parse_error, report_rows(mailed.pk))
    transaction.savepoint_rollback(savepoint)

    response = api("submit").post(URL, data=raw, content_type=content_type)
    assert response.status_code == 202, response.content
    process_message(response.json()["id"])
    posted = InboundMessage.objects.with_raw().get(pk=response.json()["id"])
    assert bytes(posted.raw) == raw
    assert (posted.status, posted.format, posted.parse_error, report_rows(posted.pk)) == by_mail


# --- malformed bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"ip": "198.51.100.7", ', "body"),  # not JSON
        (b"[]", "body"),
        (b'"spam"', "body"),
        (b"42", "body"),
        (event(ip="198.51.100.300"), "ip"),
        (event(ip="not an address"), "ip"),
        (event(ip=5), "ip"),
        (event(time="yesterday"), "time"),
        (event(time="2026-13-40T25:61:00Z"), "time"),
        (event(time=(timezone.now() + timedelta(days=2)).isoformat()), "time"),
        (event(port="smtp"), "port"),
        (event(port=70000), "port"),
        (event(category="annoying"), "category"),
        (event(evidence={"nested": True}), "evidence"),
        (event(colour="red"), "colour"),
        ([event(), event(ip="::zz")], "1.ip"),
        ({"ip": "198.51.100.7"}, "time"),
    ],
)
def test_a_malformed_body_gets_a_400_naming_what_is_wrong(api, body, field):
    response = post_json(api("submit"), body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["status"] == 400 and error["message"]
    if field != "body":
        assert field in error["fields"], error
        assert field in error["message"]
    assert not InboundMessage.objects.exists()


def test_unknown_fields_are_named_beside_the_other_errors(api):
    error = post_json(api("submit"), event(ip="x", colour="red")).json()["error"]
    assert set(error["fields"]) == {"ip", "colour"}


def test_a_20_mb_body_is_refused_with_413_before_it_is_read(api):
    body = b"[" + b" " * (20 * 1024 * 1024) + b"]"
    response = post_json(api("submit"), body)
    assert response.status_code == 413
    assert "limit" in response.json()["error"]["message"]
    assert not InboundMessage.objects.exists()


def test_an_empty_body_or_an_unknown_content_type_is_refused(api):
    client = api("submit")
    assert client.post(URL, data=b"", content_type="message/rfc822").status_code == 400
    response = client.post(URL, data=b"<x/>", content_type="application/xml")
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]["message"]


def test_a_submit_only_token_follows_its_own_messages_and_no_others(api, token):
    _mine, mine = token("submit")
    _theirs, theirs = token("submit")
    from tests.api.conftest import client_for

    message_id = post_json(client_for(mine), event()).json()["id"]
    assert client_for(mine).get(f"/api/v1/messages/{message_id}/").status_code == 200
    assert client_for(theirs).get(f"/api/v1/messages/{message_id}/").status_code == 404
    assert api("read").get(f"/api/v1/messages/{message_id}/").status_code == 200


def test_the_same_event_in_another_body_is_filed_as_a_duplicate(api):
    customer_with("198.51.100.0/24", "R-102")
    client = api("submit")
    first = post_json(client, event(evidence="first copy")).json()["id"]
    second = post_json(client, event(evidence="second copy")).json()["id"]
    assert first != second
    process_message(first)
    process_message(second)
    original = Report.objects.get(message_id=first)
    # As for mail: the repeat is counted on the original, not stored again.
    assert not Report.objects.filter(message_id=second).exists()
    original.refresh_from_db()
    assert original.duplicate_count == 1 and original.case.report_count == 1
