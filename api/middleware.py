"""For /api/: refuse oversized bodies (413) before anything reads them, answer every error in the
API's JSON shape (also Django's own 404, 405 and 500 pages), and log each call with its token.

Calls to /api/v1/ skip the desk's browser middleware (sessions, CSRF, messages, sign-in lockout,
CSP, htmx, the login requirement): a token, not a cookie, says who calls, and a JSON answer has no
page to protect. They run through Django's own handler behind API_MIDDLEWARE instead, so URL
resolution, the view and the conversion of exceptions to responses are Django's as ever. The
schema and the docs (HTML) keep the whole stack.
"""

from __future__ import annotations

import functools
import logging
import time

from django.conf import settings
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.db import IntegrityError, connection
from django.utils import timezone
from django.utils.module_loading import import_string

from api.errors import error_response
from api.models import ApiCall

log = logging.getLogger(__name__)

PREFIX = "/api/"
VERSION_PREFIX = "/api/v1/"


def api_handler(middleware: list[str]):
    """Django's request handling behind `middleware` only, built as BaseHandler.load_middleware
    builds it from MIDDLEWARE (synchronous middleware, hooks included)."""
    handler = BaseHandler()
    handler._view_middleware, handler._template_response_middleware, handler._exception_middleware = [], [], []
    chain = convert_exception_to_response(handler._get_response)
    for path in reversed(middleware):
        instance = import_string(path)(chain)
        if hasattr(instance, "process_view"):
            handler._view_middleware.insert(0, instance.process_view)
        if hasattr(instance, "process_template_response"):
            handler._template_response_middleware.append(instance.process_template_response)
        if hasattr(instance, "process_exception"):
            handler._exception_middleware.append(instance.process_exception)
        chain = convert_exception_to_response(instance)
    return chain


class ApiMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.api_response = api_handler(settings.API_MIDDLEWARE)

    def __call__(self, request):
        path = request.path_info
        if not path.startswith(PREFIX):
            return self.get_response(request)
        started = time.monotonic()
        versioned = path.startswith(VERSION_PREFIX)
        response = self._too_large(request) or (self.api_response if versioned else self.get_response)(request)
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith("application/json"):
            response = self._as_json(response)
        if versioned:
            log_call(request, response, started)
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


LOGGED = ("key", "key_prefix", "method", "path", "status", "duration_ms", "remote_addr", "message", "at")


@functools.cache
def _insert_call(vendor: str) -> str:
    """The INSERT of one ApiCall row, written once per process (the ORM would compile it per call)."""
    qn = connection.ops.quote_name
    columns = ", ".join(qn(ApiCall._meta.get_field(name).column) for name in LOGGED)
    return f"INSERT INTO {qn(ApiCall._meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(LOGGED))})"


def log_call(request, response, started: float) -> None:
    """One ApiCall row for this call, in one round trip to the database.

    On PostgreSQL the row commits without waiting for the disk: a crash may lose the last few log
    rows, never anything they describe (the submission's own message was committed durably).
    """
    key = getattr(request, "api_key", None)
    row = [
        key.pk if key is not None else None,
        key.prefix if key is not None else "",
        request.method[:8],
        request.path_info[:300],
        response.status_code,
        int((time.monotonic() - started) * 1000),
        connection.ops.adapt_ipaddressfield_value(request.META.get("REMOTE_ADDR") or None),
        getattr(request, "api_message_id", None),
        connection.ops.adapt_datetimefield_value(timezone.now()),
    ]
    try:
        try:
            _write(row)
        except IntegrityError:
            if row[0] is None:
                raise
            # The token was deleted meanwhile (this process still trusted it, for at most
            # API_TOKEN_CACHE_SECONDS): the call is logged all the same, under its prefix.
            row[0] = None
            _write(row)
    except Exception:  # the log must never turn an answer into an error
        log.exception("could not log an API call")


def _write(row: list) -> None:
    insert = _insert_call(connection.vendor)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            # BEGIN and COMMIT in the same message as the INSERT: one round trip, where a
            # transaction.atomic() block costs three (and SET LOCAL needs a transaction).
            try:
                cursor.execute(f"BEGIN; SET LOCAL synchronous_commit TO OFF; {insert}; COMMIT", row)
            except Exception:
                # A failed statement leaves the transaction open and aborted (a failed COMMIT
                # ends it); end it, or the connection's next user finds it so.
                cursor.execute("ROLLBACK")
                raise
        else:  # SQLite, or inside the caller's transaction (the tests' own)
            cursor.execute(insert, row)
