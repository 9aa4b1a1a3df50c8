"""When to try a failed delivery again.

Exponential back-off with jitter, capped, honouring the back end's ``Retry-After`` when it asks
for longer, up to a maximum number of attempts. The schedule is stored with the message (not
slept through in memory), so a restart keeps it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class RetryPolicy:
    """Back-off settings; ``max_attempts`` counts the first attempt too."""

    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 300.0
    jitter: float = 0.5

    def delay(self, attempt: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait after failed ``attempt`` (from 1); ``None`` once attempts are used up."""
        if attempt >= self.max_attempts:
            return None
        backoff = min(self.max_delay, self.base_delay * (2.0 ** (attempt - 1)))
        if self.jitter:
            backoff *= 1 - self.jitter + random.random() * self.jitter * 2
        backoff = min(self.max_delay, backoff)
        if retry_after is not None:
            backoff = max(backoff, min(retry_after, self.max_delay))
        return backoff

    def next_run(self, attempt: int, retry_after: float | None = None) -> datetime | None:
        """The moment of the next attempt, or ``None`` to give up."""
        delay = self.delay(attempt, retry_after)
        if delay is None:
            return None
        return datetime.now(UTC) + timedelta(seconds=delay)
