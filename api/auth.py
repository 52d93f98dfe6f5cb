"""Token authentication: `Authorization: Api-Key <token>` (or `Bearer <token>`), checked against the stored hash.

Each web process keeps the tokens it has read (with their users) for API_TOKEN_CACHE_SECONDS: a
feed posting hundreds of reports a second would otherwise pay a query per call for the same row.
The key is still checked against the hash, the expiry against the clock, on every call. So a
token revoked, changed or deleted in the admin stops working in this process at once (the admin
calls forget()), and in every other process within API_TOKEN_CACHE_SECONDS.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from api.models import ApiKey

KEYWORDS = ("api-key", "bearer")

# prefix -> (monotonic time read, the token with its user). Only tokens that exist and are not
# revoked are kept, so its size is bounded by the tokens in the table, whatever clients send.
_tokens: dict[str, tuple[float, ApiKey]] = {}
_clock = time.monotonic  # the tests move it on


def usable_token(prefix: str) -> ApiKey | None:
    """The unrevoked token with this prefix, from this process's cache while it is fresh."""
    ttl = settings.API_TOKEN_CACHE_SECONDS
    now = _clock()
    cached = _tokens.get(prefix)
    if cached is not None and now - cached[0] < ttl:
        return cached[1]
    api_key = ApiKey.objects.get_usable_keys().filter(prefix=prefix).first()
    if api_key is None:
        _tokens.pop(prefix, None)
    elif ttl > 0:
        _tokens[prefix] = (now, api_key)
    return api_key


def forget(*prefixes: str) -> None:
    """Drop tokens from this process's cache (the admin changed them); other processes wait out the TTL."""
    for prefix in prefixes:
        _tokens.pop(prefix, None)


def forget_all() -> None:
    _tokens.clear()


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        keyword, _, key = header.strip().partition(" ")
        key = key.strip()
        if keyword.lower() not in KEYWORDS or not key:
            raise exceptions.AuthenticationFailed('Send the token as "Authorization: Api-Key <token>".')
        api_key = usable_token(key.partition(".")[0])
        if api_key is None or not ApiKey.objects.key_generator.verify(key, api_key.hashed_key) or api_key.has_expired:
            raise exceptions.AuthenticationFailed("The token is unknown, revoked or expired.")
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
