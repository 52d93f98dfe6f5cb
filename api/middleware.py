"""For /api/: refuse oversized bodies (413) before anything reads them, answer every error in the
API's JSON shape (also Django's own 404, 405 and 500 pages), and log each call with its token."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import connection, transaction

from api.errors import error_response

log = logging.getLogger(__name__)

PREFIX = "/api/"


class ApiMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(PREFIX):
            return self.get_response(request)
        started = time.monotonic()
        response = self._too_large(request) or self.get_response(request)
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith("application/json"):
            response = self._as_json(response)
        if request.path_info.startswith("/api/v1/"):
            self._log(request, response, started)
        return response

    @staticmethod
    def _too_large(request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(400, "Content-Length is not a number.")
        limit = settings.API_MAX_BODY_BYTES
        if length > limit:
            return error_response(413, f"The body is {length:,} bytes; the limit is {limit:,}.")
        return None

    @staticmethod
    def _as_json(response):
        # Django's own pages (an unknown URL, a crash) for a client that expects JSON.
        replaced = error_response(response.status_code)
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in response:
                replaced[header] = response[header]
        return replaced

    @staticmethod
    def _log(request, response, started) -> None:
        from api.models import ApiCall

        key = getattr(request, "api_key", None)
        call = ApiCall(
            key=key,
            key_prefix=key.prefix if key is not None else "",
            method=request.method[:8],
            path=request.path_info[:300],
            status=response.status_code,
            duration_ms=int((time.monotonic() - started) * 1000),
            remote_addr=request.META.get("REMOTE_ADDR") or None,
            message_id=getattr(request, "api_message_id", None),
        )
        try:
            if connection.vendor != "postgresql":
                call.save(force_insert=True)
                return
            with transaction.atomic():
                # A log row need not wait for the disk: a crash may lose the last few, never
                # anything they describe. The submission's own row was committed durably.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
                call.save(force_insert=True)
        except Exception:  # the log must never turn an answer into an error
            log.exception("could not log an API call")
