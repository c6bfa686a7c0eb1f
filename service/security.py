"""API key (constant-time comparison) and per-client limits."""

from __future__ import annotations

import hmac
from collections import defaultdict

from service.settings import Settings


def key_ok(settings: Settings, supplied: str | None) -> bool:
    if settings.api_key is None:
        return True
    if not supplied:
        return False
    return hmac.compare_digest(supplied.encode(), settings.api_key.get_secret_value().encode())


def origin_ok(settings: Settings, origin: str | None) -> bool:
    """Browsers always send Origin on websockets; non-browser clients may omit it."""
    origins = settings.origins
    return origin is None or "*" in origins or origin in origins


class StreamLimiter:
    """Counts open streams in total and per client address."""

    def __init__(self, max_total: int, max_per_client: int):
        self.max_total, self.max_per_client = max_total, max_per_client
        self.per_client: dict[str, int] = defaultdict(int)
        self.total = 0

    def acquire(self, client: str) -> str | None:
        """None if admitted, else the reason."""
        if self.total >= self.max_total:
            return f"server has {self.total} streams open (limit {self.max_total})"
        if self.per_client[client] >= self.max_per_client:
            return f"client has {self.per_client[client]} streams open (limit {self.max_per_client})"
        self.total += 1
        self.per_client[client] += 1
        return None

    def release(self, client: str) -> None:
        self.total -= 1
        self.per_client[client] -= 1
        if self.per_client[client] <= 0:
            del self.per_client[client]
