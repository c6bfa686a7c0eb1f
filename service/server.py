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

log = logging.getLogger("service")


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, engine: Engine):
        super().__init__(config)
        self.engine = engine
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
        log.info("shutting down: draining %d streams (up to %.1f s)", e.limiter.total, e.settings.shutdown_grace_s)
        e.draining.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + e.settings.shutdown_grace_s
        while e.limiter.total > 0 and loop.time() < deadline:
            await asyncio.sleep(0.05)
        super().handle_exit(sig, frame)
        # the signal is fully handled by this drain: do not let uvicorn re-raise it after shutdown,
        # so a graceful stop exits with status 0
        if hasattr(self, "_captured_signals"):
            self._captured_signals.clear()
