"""Token authentication: `Authorization: Api-Key <token>` (or `Bearer <token>`), checked against the stored hash."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from api.models import ApiKey

KEYWORDS = ("api-key", "bearer")


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        keyword, _, key = header.strip().partition(" ")
        if keyword.lower() not in KEYWORDS or not key.strip():
            raise exceptions.AuthenticationFailed('Send the token as "Authorization: Api-Key <token>".')
        try:
            api_key = ApiKey.objects.get_from_key(key.strip())
            if api_key.has_expired:  # get_from_key checks revocation only
                raise ApiKey.DoesNotExist
        except ApiKey.DoesNotExist:
            raise exceptions.AuthenticationFailed("The token is unknown, revoked or expired.") from None
        user = api_key.user
        if user is not None and not user.is_active:
            raise exceptions.AuthenticationFailed("The token's user is inactive.")
        api_key.touch()
        # For the call log (api.middleware), which sees the Django request, not DRF's.
        request._request.api_key = api_key
        return (user or AnonymousUser(), api_key)

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) when no token was sent.
        return 'Api-Key realm="api"'


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'The token, as "Api-Key <token>".',
        }
