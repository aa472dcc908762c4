"""A token bucket per client address: ``rate`` tokens a second, at most ``burst`` saved up."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """``allow(address)`` takes one token from that address's bucket, or says no."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 100_000,
    ) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, address: str) -> bool:
        if self.rate <= 0:
            return True
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(address, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[address] = (tokens, now)
                return False
            if len(self._buckets) >= self._max_clients and address not in self._buckets:
                self._evict(now)
            self._buckets[address] = (tokens - 1.0, now)
            return True

    def _evict(self, now: float) -> None:
        # A full bucket is the same as no bucket: forget those first.
        refill = self.burst / self.rate
        for address in [a for a, (_, t) in self._buckets.items() if now - t >= refill]:
            del self._buckets[address]
        while len(self._buckets) >= self._max_clients:
            del self._buckets[next(iter(self._buckets))]
