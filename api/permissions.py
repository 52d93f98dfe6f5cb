"""Scopes: each view names the scope each method needs; a token without it gets 403."""

from __future__ import annotations

from rest_framework import exceptions, permissions

from api.models import ApiKey


def required_scope(view, method: str) -> str | None:
    scopes = getattr(view, "scopes", None) or {}
    return scopes.get(method, scopes.get("*"))


class HasScope(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        scope = required_scope(view, request.method)
        if scope is None:  # public (the schema and the docs)
            return True
        if not isinstance(request.auth, ApiKey):
            raise exceptions.NotAuthenticated("This call needs a token: send `Authorization: Api-Key <token>`.")
        if not request.auth.has_scope(scope):
            raise exceptions.PermissionDenied(f'This token lacks the "{scope}" scope.')
        return True
