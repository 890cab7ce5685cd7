"""A per-connection token bucket: how many frames a socket may send, and how fast.

Pure and clock-injected, so its behaviour is tested without waiting. A socket may send
``burst`` frames at once and ``rate`` frames per second after that; frames beyond it are
refused (``rate_limited``), and a socket that keeps going after ``max_strikes`` refusals in
a row is closed with 4429.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    rate: float
    burst: int
    max_strikes: int
    clock: Callable[[], float] = time.monotonic
    tokens: float = field(init=False)
    updated: float = field(init=False)
    strikes: int = field(init=False, default=0)

    def __post_init__(self):
        self.tokens = float(self.burst)
        self.updated = self.clock()

    def allow(self) -> bool:
        """Take a token for one frame; False (and a strike) if there is none."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            self.strikes = 0
            return True
        self.strikes += 1
        return False

    @property
    def abused(self) -> bool:
        return self.strikes > self.max_strikes
