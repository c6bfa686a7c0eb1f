"""App factory: models load in the lifespan (failing loudly), routes stay thin."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from service import routes_http, routes_ws
from service.engine import Engine
from service.settings import Settings

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("service")


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """The app; models load in the lifespan unless an already loaded ``engine`` is given."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = engine or Engine.load(settings)
        log.info("ready on %s:%d", settings.host, settings.port)
        try:
            yield
        finally:
            app.state.engine.close()
            app.state.engine = None

    app = FastAPI(
        title="okpose",
        version="0.1.0",
        description="Real-time multi-person pose estimation and tracking (OKDHP student + PoseFlow).",
        lifespan=lifespan,
    )
    app.state.engine = None
    app.add_middleware(
        CORSMiddleware, allow_origins=settings.origins, allow_methods=["GET", "POST"], allow_headers=["*"]
    )

    @app.middleware("http")
    async def count_requests(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        engine = app.state.engine
        if engine is not None:
            route = request.scope.get("route")
            engine.metrics.requests.labels(getattr(route, "path", "unmatched"), str(response.status_code)).inc()
        return response

    app.include_router(routes_http.router)
    app.include_router(routes_ws.router)
    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

        @app.get("/", include_in_schema=False)
        async def index() -> FileResponse:
            return FileResponse(STATIC / "index.html")

    return app
