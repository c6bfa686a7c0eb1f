"""App factory: models load in the lifespan (failing loudly), routes stay thin, /docs works offline."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from okpose.core import __version__
from service import routes_http, routes_ws
from service.engine import Engine
from service.security import install_log_redaction
from service.settings import Settings

STATIC = Path(__file__).parent / "static"
SWAGGER = "/static/vendor/swagger-ui"
log = logging.getLogger("service")


def validation_message(exc: RequestValidationError) -> str:
    """FastAPI's error list as one readable sentence (every error response is ``{"detail": str}``)."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body")) or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "invalid request (" + "; ".join(parts) + ")"


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """The app; models load in the lifespan unless an already loaded ``engine`` is given."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        install_log_redaction()
        app.state.engine = engine or Engine.load(settings)
        log.info("ready on %s:%d", settings.host, settings.port)
        try:
            yield
        finally:
            app.state.engine.close()
            app.state.engine = None

    app = FastAPI(
        title="okpose",
        version=__version__,
        description="Real-time multi-person pose estimation and tracking (OKDHP student + PoseFlow). "
        "Streams: websocket `/stream` (binary frames in, JSON out; protocol in `service/stream.py`).",
        lifespan=lifespan,
        docs_url=None,  # served below from the package's own copy of Swagger UI (no CDN)
        redoc_url=None,
    )
    app.state.engine = None
    app.state.settings = settings
    app.add_middleware(
        CORSMiddleware, allow_origins=settings.origins, allow_methods=["GET", "POST"], allow_headers=["*"]
    )
    if settings.proxies:  # the client address from X-Forwarded-For, believed only from these proxies
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.proxies)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_message(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

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
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="okpose API",
            swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER}/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )

    _document_errors(app)
    return app


def _document_errors(app: FastAPI) -> None:
    """OpenAPI says what the wire does: 422 bodies are ``ErrorResponse`` like every other error."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        comps = schema.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            comps.pop(name, None)
        ref = {"$ref": "#/components/schemas/ErrorResponse"}
        for path in schema.get("paths", {}).values():
            for op in path.values():
                resp = op.get("responses", {}).get("422")
                if resp is not None:
                    resp["content"] = {"application/json": {"schema": ref}}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
