"""API key (constant-time comparison, kept out of URLs and logs) and per-client limits."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import re
from collections import defaultdict

from pydantic import SecretStr

API_KEY_HEADER = "X-API-Key"
# Websocket clients that cannot set headers (browsers) offer two subprotocols: SUBPROTOCOL, which
# the server selects, and KEY_PROTOCOL_PREFIX + base64url(key), which carries the key in the
# Sec-WebSocket-Protocol header: never in the URL, so never in access logs or browser history.
SUBPROTOCOL = "okpose"
KEY_PROTOCOL_PREFIX = "okpose.key."


def key_ok(expected: SecretStr | None, supplied: str | None) -> bool:
    if expected is None:
        return True
    if not supplied:
        return False
    return hmac.compare_digest(supplied.encode(), expected.get_secret_value().encode())


def offered_subprotocols(header: str | None) -> list[str]:
    return [p.strip() for p in (header or "").split(",") if p.strip()]


def key_from_subprotocols(protocols: list[str]) -> str | None:
    for p in protocols:
        if p.startswith(KEY_PROTOCOL_PREFIX):
            raw = p[len(KEY_PROTOCOL_PREFIX) :]
            try:
                return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
    return None


def origin_ok(origins: list[str], origin: str | None) -> bool:
    """Browsers always send Origin on websockets; non-browser clients may omit it."""
    return origin is None or "*" in origins or origin in origins


_SECRET_QUERY = re.compile(r"((?:api_key|token)=)[^&\s\"]*", re.IGNORECASE)


def redact(text: str) -> str:
    """``api_key=...`` (the deprecated websocket query parameter) -> ``api_key=***``."""
    return _SECRET_QUERY.sub(r"\1***", text)


class RedactSecrets(logging.Filter):
    """On uvicorn's access and error loggers: no API key from a URL reaches a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install_log_redaction() -> None:
    for name in ("uvicorn.access", "uvicorn.error", "uvicorn"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())


class StreamLimiter:
    """Counts open streams (or concurrent requests) in total and per client address."""

    def __init__(self, max_total: int, max_per_client: int):
        self.max_total, self.max_per_client = max_total, max_per_client
        self.per_client: dict[str, int] = defaultdict(int)
        self.total = 0

    def acquire(self, client: str) -> str | None:
        """None if admitted, else the reason."""
        if self.total >= self.max_total:
            return f"server has {self.total} open (limit {self.max_total})"
        if self.per_client[client] >= self.max_per_client:
            return f"client has {self.per_client[client]} open (limit {self.max_per_client})"
        self.total += 1
        self.per_client[client] += 1
        return None

    def release(self, client: str) -> None:
        self.total -= 1
        self.per_client[client] -= 1
        if self.per_client[client] <= 0:
            del self.per_client[client]
