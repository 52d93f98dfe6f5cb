"""The address a request came from, for the sign-in lockout (django-axes)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, or behind a trusted proxy (BEHIND_PROXY) the last X-Forwarded-For entry.

    The last entry is the one our own proxy appended; anything left of it came from the client
    and may be forged, so it is never read.
    """
    if settings.BEHIND_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last
    return request.META.get("REMOTE_ADDR")
