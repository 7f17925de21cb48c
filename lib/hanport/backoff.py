"""When to try the broker again: exponential backoff with jitter, capped.

Pure arithmetic on the ticks the caller passes in, so it is tested without
a network or a clock. Jitter keeps a house full of dongles from hammering a
broker that comes back after an outage all in the same second.
"""


class Backoff:
    def __init__(self, base_ms=1000, cap_ms=300000, rand=None):
        self.base_ms = base_ms
        self.cap_ms = cap_ms
        # rand(n) -> int in [0, n); injected so tests are deterministic.
        self.rand = rand or _rand
        self.failures = 0  # consecutive failures since the last success
        self.delay_ms = 0  # wait after the last failure
        self._since = None  # ticks of the last failure, None: try at once

    def ready(self, now, diff):
        """May we try now? diff is the clock's ticks_diff."""
        return self._since is None or diff(now, self._since) >= self.delay_ms

    def failed(self, now):
        """A try failed at ticks now: wait base*2^n, half of it random, capped."""
        self.failures += 1
        d = self.base_ms
        n = self.failures - 1
        while n and d < self.cap_ms:
            d *= 2
            n -= 1
        if d > self.cap_ms:
            d = self.cap_ms
        half = d // 2
        self.delay_ms = half + self.rand(half + 1)
        self._since = now

    def succeeded(self):
        self.failures = 0
        self.delay_ms = 0
        self._since = None

    def wait_left(self, now, diff):
        """Milliseconds until ready (0 when ready)."""
        if self._since is None:
            return 0
        left = self.delay_ms - diff(now, self._since)
        return left if left > 0 else 0


try:
    from random import getrandbits
except ImportError:  # a port built without random
    getrandbits = None


def _rand(n):
    if n <= 1 or getrandbits is None:
        return 0
    return getrandbits(20) % n
