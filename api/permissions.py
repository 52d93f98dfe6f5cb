"""Scopes: each view names the scope each method needs (or a tuple: any of them); a token without it gets 403."""

from __future__ import annotations

from rest_framework import exceptions, permissions

from api.models import ApiKey


def required_scope(view, method: str) -> str | tuple[str, ...] | None:
    scopes = getattr(view, "scopes", None) or {}
    return scopes.get(method, scopes.get("*"))


class HasScope(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        scope = required_scope(view, request.method)
        if scope is None:  # public (the schema and the docs)
            return True
        if not isinstance(request.auth, ApiKey):
            raise exceptions.NotAuthenticated("This call needs a token: send `Authorization: Api-Key <token>`.")
        scopes = scope if isinstance(scope, tuple) else (scope,)
        if not any(request.auth.has_scope(s) for s in scopes):
            wanted = " or ".join(f'"{s}"' for s in scopes)
            raise exceptions.PermissionDenied(f"This token lacks the {wanted} scope.")
        return True
