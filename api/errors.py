"""One error shape for the whole API:

    {"error": {"status": 400, "code": "invalid", "message": "ip: Enter a valid IPv4 or IPv6 address.",
               "fields": {"ip": ["Enter a valid IPv4 or IPv6 address."]}}}

`fields` appears for validation errors only; its keys are field paths ("events.2.time").
"""

from __future__ import annotations

import math

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from cases.services.common import TransitionError

DEFAULT_MESSAGES = {
    400: "The request is not valid.",
    401: "This call needs a token.",
    403: "This token may not do that.",
    404: "Not found.",
    405: "Method not allowed.",
    406: "Only JSON answers are offered.",
    409: "That change is not possible in the current state.",
    413: "The request body is too large.",
    415: "Unsupported content type.",
    429: "Too many requests.",
    500: "Server error: the request was logged; try again later or tell the desk.",
}


def error_body(status_code: int, message: str = "", code: str = "", fields: dict | None = None) -> dict:
    error: dict = {
        "status": status_code,
        "code": code or _code_for(status_code),
        "message": message or DEFAULT_MESSAGES.get(status_code, "Error."),
    }
    if fields:
        error["fields"] = fields
    return {"error": error}


def error_response(status_code: int, message: str = "", code: str = "", fields: dict | None = None) -> JsonResponse:
    return JsonResponse(error_body(status_code, message, code, fields), status=status_code)


def _code_for(status_code: int) -> str:
    return {
        400: "invalid",
        401: "not_authenticated",
        403: "permission_denied",
        404: "not_found",
        405: "method_not_allowed",
        409: "conflict",
        413: "too_large",
        415: "unsupported_media_type",
        429: "throttled",
        500: "server_error",
    }.get(status_code, "error")


def flatten(detail, path: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail -> {"events.2.time": ["..."]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = path if key == "non_field_errors" else (f"{path}.{key}" if path else str(key))
            for k, v in flatten(value, name).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            out[path or "body"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                if item:
                    out.update(flatten(item, f"{path}.{index}" if path else str(index)))
    else:
        out[path or "body"] = [str(detail)]
    return out


def _summary(fields: dict[str, list[str]]) -> str:
    parts = [f"{name}: {' '.join(messages).rstrip('.')}" for name, messages in list(fields.items())[:5]]
    more = len(fields) - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"body": exc.messages}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, TransitionError):
        return Response(error_body(409, str(exc)), status=status.HTTP_409_CONFLICT)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django answers 500, which ApiMiddleware turns into the JSON shape
    if isinstance(exc, exceptions.ValidationError):
        fields = flatten(exc.detail)
        response.data = error_body(response.status_code, _summary(fields), "invalid", fields)
        return response
    detail = getattr(exc, "detail", "")
    code = detail.code if hasattr(detail, "code") else ""
    message = str(detail) if not isinstance(detail, dict | list) else ""
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        message = f"Too many requests for this token; try again in {math.ceil(exc.wait)} s."
    response.data = error_body(response.status_code, message, code)
    return response
