"""Rate limits per token: a fixed window counted in the "api" cache (Redis when API_CACHE_URL is set)."""

from __future__ import annotations

import functools
import logging
import re
import time

import redis
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import BaseThrottle

from api.models import ApiKey

log = logging.getLogger(__name__)

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'600/min' -> (600, 60). Raises ValueError for anything else."""
    count, _, period = rate.partition("/")
    seconds = _PERIODS.get(period.strip()[:1].lower())
    if seconds is None or not count.strip().isdigit():
        raise ValueError(f"{rate!r} is not a rate like 600/min")
    return int(count), seconds


# Adds the call and starts the window's expiry with its first call, in one command. The window
# is in the key, so the key goes away a window after it began.
_COUNT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


@functools.cache
def _counter(url: str):
    # One client (and connection pool) per process and URL: Django's RedisCache builds a new
    # client for every call, and its incr() asks EXISTS first, two round trips where one will do.
    # redis-py's pool notices a fork and opens new connections in the child.
    return redis.Redis.from_url(url).register_script(_COUNT)


def _writer(location: str | list[str]) -> str:
    """The server Django's RedisCache writes to: the first of its LOCATION."""
    return (re.split("[;,]", location) if isinstance(location, str) else location)[0]


def count_call(key: str, period: int) -> int:
    """This window's count for `key`, after adding this call: one round trip to Redis."""
    cache = caches["api"]
    if isinstance(cache, RedisCache):
        counter = _counter(_writer(settings.CACHES["api"]["LOCATION"]))
        return int(counter(keys=[cache.make_key(key)], args=[period + 1]))
    try:  # the in-process cache of a development machine, or the tests without Redis
        return cache.incr(key)
    except ValueError:  # first call of the window
        return 1 if cache.add(key, 1, period + 1) else cache.incr(key)


class TokenRateThrottle(BaseThrottle):
    """One counter per token and window. A fixed window lets a burst of twice the rate through at a
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
        self._wait = (window + 1) * period - now
        try:
            count = count_call(f"api-rate:{key.prefix}:{period}:{window}", period)
        except redis.RedisError:
            # Refusing every call while Redis is away would lose the reports feeds send meanwhile;
            # the limit protects the desk, the reports are what it is for.
            log.warning("API rate limit not counted: the cache is unreachable", exc_info=True)
            return True
        return count <= limit

    def wait(self) -> float:
        return max(1.0, self._wait)
