"""uvicorn server with a graceful drain on SIGTERM / SIGINT.

First signal: the engine starts draining (new streams get 503, frames arriving on open streams get
an error, in-flight frames are answered, each stream says "bye" and closes with 1001), then after
the streams are gone or ``shutdown_grace_s`` passed, uvicorn's own shutdown runs. A second signal
exits at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from types import FrameType

import uvicorn

from service.engine import Engine
from service.security import install_log_redaction
from service.settings import Settings

log = logging.getLogger("service")


def uvicorn_config(app: object, settings: Settings, **overrides: object) -> uvicorn.Config:
    """The one uvicorn configuration (``python -m service``, the tests' live servers, the benchmark).

    ws_max_size follows the image limit (``Settings.ws_max_message_bytes``); uvicorn's own proxy-header
    handling is off (it trusts 127.0.0.1 by default): ``POSE_TRUSTED_PROXIES`` decides, in the app.
    """
    kwargs: dict[str, object] = dict(
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        ws_per_message_deflate=False,
        ws_max_size=settings.ws_max_message_bytes,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
        ws_ping_interval=10,
        ws_ping_timeout=10,
    )
    config = uvicorn.Config(app, **{**kwargs, **overrides})  # type: ignore[arg-type]
    install_log_redaction()  # after uvicorn configured its loggers
    return config


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, engine: Engine, grace_s: float = 5.0):
        super().__init__(config)
        self.engine, self.grace_s = engine, grace_s
        self._draining = False
        self.loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()  # where handle_exit must run (signals, embedding code)
        await super().serve(sockets)

    def request_shutdown(self) -> None:
        """Thread-safe equivalent of receiving SIGTERM."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.handle_exit, signal.SIGTERM, None)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            super().handle_exit(sig, frame)
            return
        loop.create_task(self._drain_then_exit(sig, frame))

    async def _drain_then_exit(self, sig: int, frame: FrameType | None) -> None:
        e = self.engine
        log.info("shutting down: draining %d streams (up to %.1f s)", e.limiter.total, self.grace_s)
        e.draining.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.grace_s
        while e.limiter.total > 0 and loop.time() < deadline:
            await asyncio.sleep(0.05)
        super().handle_exit(sig, frame)
        # the signal is fully handled by this drain: do not let uvicorn re-raise it after shutdown,
        # so a graceful stop exits with status 0
        if hasattr(self, "_captured_signals"):
            self._captured_signals.clear()
