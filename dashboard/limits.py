"""Rate limits where Quorum is open to guessing: API tokens that fail to authenticate and
webhook deliveries. Counted per client address in the cache (Redis when configured), so every
process of the site shares them; a window opens with an address's first attempt and closes a
window's length later."""

from django.conf import settings
from django.core.cache import cache


def over(scope: str, address: str) -> int | None:
    """Seconds to wait when `address` spent its allowance of `scope` in its window, else None;
    counts nothing."""
    limit, window = settings.QUORUM_RATE_LIMITS[scope]
    if (cache.get(_key(scope, address)) or 0) < limit:
        return None
    return window


def spend(scope: str, address: str) -> None:
    """Count one attempt of `scope` from `address`."""
    _, window = settings.QUORUM_RATE_LIMITS[scope]
    key = _key(scope, address)
    if not cache.add(key, 1, timeout=window):
        try:
            cache.incr(key)
        except ValueError:  # the window closed between add and incr: this attempt opens one
            cache.add(key, 1, timeout=window)


def _key(scope: str, address: str) -> str:
    return f"quorum:limit:{scope}:{address}"
