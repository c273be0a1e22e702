"""Brute-force throttling of the curator's secrets: the login password and the JSON API's bearer token.

Failed attempts are counted in a moving window (the `limits` library), per client address and over all
clients. Past either limit every attempt, right or wrong, is answered 429 with Retry-After until the oldest
failure leaves the window, so guessing gains nothing by going faster or by spreading over addresses. The
counts live in this process (the curator runs as one); behind a reverse proxy every client has the proxy's
address, so the per-client limit then acts as a second overall one.
"""

from __future__ import annotations

import math
import time
from typing import Literal

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from deephype.common.settings import Settings

Scope = Literal["login", "api"]
EVERYONE = "*"


class AuthThrottle:
    def __init__(self, max_per_client: int, max_total: int, window_seconds: int) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_client = RateLimitItemPerSecond(max_per_client, window_seconds)
        self._total = RateLimitItemPerSecond(max_total, window_seconds)

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthThrottle:
        return cls(
            settings.curator_auth_max_failures_per_client,
            settings.curator_auth_max_failures_total,
            settings.curator_auth_failure_window_seconds,
        )

    def retry_after(self, scope: Scope, client: str) -> int | None:
        """Seconds this client must wait before trying `scope` again; None when it may try now."""
        waits = [
            self._limiter.get_window_stats(item, scope, who).reset_time - time.time()
            for item, who in ((self._per_client, client), (self._total, EVERYONE))
            if not self._limiter.test(item, scope, who)
        ]
        return max(1, math.ceil(max(waits))) if waits else None

    def failed(self, scope: Scope, client: str) -> None:
        self._limiter.hit(self._per_client, scope, client)
        self._limiter.hit(self._total, scope, EVERYONE)
