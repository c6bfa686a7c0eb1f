"""WS /stream: admission (readiness, API key, origin, per-client limits), then the session protocol
(``service.stream``) until either side ends it."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse

from service.engine import Engine
from service.security import SUBPROTOCOL, key_from_subprotocols, key_ok, offered_subprotocols, origin_ok
from service.settings import Settings
from service.stream import SlowConsumer, StreamSession

router = APIRouter()
log = logging.getLogger("service.ws")

CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN = 1013


async def refuse(ws: WebSocket, status: int, code: int, reason: str, retry_after: int | None = None) -> None:
    """Refuse before accepting: an HTTP response (e.g. 429 + Retry-After) where the server supports
    it, else a close frame with ``code``."""
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        await ws.send_denial_response(JSONResponse({"detail": reason}, status, headers=headers))
    else:
        await ws.close(code, reason)


@router.websocket("/stream")
async def stream(ws: WebSocket) -> None:
    engine: Engine | None = getattr(ws.app.state, "engine", None)
    settings: Settings = ws.app.state.settings
    if engine is None or engine.draining.is_set():
        await refuse(ws, 503, CLOSE_TRY_AGAIN, "service is starting or shutting down", retry_after=5)
        return
    protocols = offered_subprotocols(ws.headers.get("sec-websocket-protocol"))
    # the key: X-API-Key header, the okpose.key.* subprotocol (browsers), or ?api_key= (deprecated: it
    # puts the key in URLs; access logs redact it)
    key = ws.headers.get("x-api-key") or key_from_subprotocols(protocols) or ws.query_params.get("api_key")
    if not key_ok(settings.api_key, key):
        await refuse(ws, 401, CLOSE_POLICY, "missing or invalid API key")
        return
    if not origin_ok(settings.origins, ws.headers.get("origin")):
        await refuse(ws, 403, CLOSE_POLICY, "origin not allowed")
        return
    client = ws.client.host if ws.client else "unknown"
    reason = engine.limiter.acquire(client)
    if reason is not None:
        await refuse(ws, 429, CLOSE_TRY_AGAIN, f"too many streams: {reason}", retry_after=5)
        return
    engine.metrics.active_streams.inc()
    session = StreamSession(ws, engine, settings.max_fps, settings.send_timeout_s)
    tasks: list[asyncio.Task[None]] = []
    try:
        await ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in protocols else None)
        await session.hello()
        tasks = [
            asyncio.create_task(session.receive_loop()),
            asyncio.create_task(session.work_loop()),
            asyncio.create_task(_wake_on_drain(engine, session)),
        ]
        done, _ = await asyncio.wait(tasks[:2], return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            exc = t.exception()
            if isinstance(exc, SlowConsumer):
                log.warning("closing stream from %s: %s", client, exc)
                # the close frame waits behind the unread results (a peer that never reads again is
                # ended by the websocket keepalive: ws_ping_interval + ws_ping_timeout)
                with contextlib.suppress(Exception):
                    await ws.close(CLOSE_POLICY, "client stopped reading its results")
            elif exc is not None and not isinstance(exc, WebSocketDisconnect | RuntimeError):
                log.error("stream from %s failed: %r", client, exc)
    except (WebSocketDisconnect, SlowConsumer):
        pass
    except RuntimeError:  # closing a socket the client already closed
        pass
    finally:
        for t in tasks:
            t.cancel()
        engine.limiter.release(client)
        engine.metrics.active_streams.dec()


async def _wake_on_drain(engine: Engine, session: StreamSession) -> None:
    await engine.draining.wait()
    session.wake.set()
