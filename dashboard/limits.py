"""Rate limits where Quorum is open to guessing: API tokens that fail to authenticate and
webhook deliveries. Counted per client address in fixed windows in the cache (Redis when
configured), so every process of the site shares them."""

import time

from django.conf import settings
from django.core.cache import cache


def over(scope: str, address: str) -> int | None:
    """Seconds to wait when `address` spent its allowance of `scope` in this window, else None;
    counts nothing."""
    limit, window = settings.QUORUM_RATE_LIMITS[scope]
    if (cache.get(_bucket(scope, address, window)) or 0) < limit:
        return None
    return max(1, int(window - time.time() % window))


def spend(scope: str, address: str) -> None:
    """Count one attempt of `scope` from `address`."""
    _, window = settings.QUORUM_RATE_LIMITS[scope]
    bucket = _bucket(scope, address, window)
    if not cache.add(bucket, 1, timeout=window + 1):
        try:
            cache.incr(bucket)
        except ValueError:  # expired between add and incr: this attempt starts the window
            cache.add(bucket, 1, timeout=window + 1)


def _bucket(scope: str, address: str, window: int) -> str:
    return f"quorum:limit:{scope}:{address}:{int(time.time() // window)}"
