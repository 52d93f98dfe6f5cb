"""Rate limits per token: a fixed window counted in the "api" cache (Redis when API_CACHE_URL is set)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import caches
from rest_framework.throttling import BaseThrottle

from api.models import ApiKey

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'600/min' -> (600, 60). Raises ValueError for anything else."""
    count, _, period = rate.partition("/")
    seconds = _PERIODS.get(period.strip()[:1].lower())
    if seconds is None or not count.strip().isdigit():
        raise ValueError(f"{rate!r} is not a rate like 600/min")
    return int(count), seconds


class TokenRateThrottle(BaseThrottle):
    """One cache increment per call. A fixed window lets a burst of twice the rate through at a
    window's edge; the sliding history DRF keeps costs a list of timestamps per call instead."""

    def allow_request(self, request, view) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            return True  # anonymous calls are refused before this runs
        try:
            limit, period = parse_rate(key.rate or settings.API_RATE)
        except ValueError:
            limit, period = parse_rate(settings.API_RATE)
        now = time.time()
        window = int(now // period)
        cache_key = f"api-rate:{key.prefix}:{period}:{window}"
        cache = caches["api"]
        try:
            count = cache.incr(cache_key)
        except ValueError:  # first call of the window
            count = 1 if cache.add(cache_key, 1, period + 1) else cache.incr(cache_key)
        self._wait = (window + 1) * period - now
        return count <= limit

    def wait(self) -> float:
        return max(1.0, self._wait)
