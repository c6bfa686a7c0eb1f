"""A small typed client library (sync REST, async REST + websocket streaming)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger("clients")


class PoseServiceError(RuntimeError):
    """The service answered with an error (HTTP status or websocket error message)."""

    def __init__(self, message: str, status: int | None = None, frame: int | None = None):
        super().__init__(message)
        self.status, self.frame = status, frame

    @property
    def retryable(self) -> bool:
        """Worth retrying: connection-level trouble, 429 (busy) and 5xx; never other 4xx (a wrong key,
        origin or URL does not fix itself)."""
        return self.status is None or self.status == 429 or self.status >= 500


@dataclass(frozen=True)
class Person:
    box: tuple[float, float, float, float]
    score: float
    keypoints: list[tuple[float, float, float]]
    track_id: int | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Person:
        return cls(tuple(d["box"]), float(d["score"]), [tuple(k) for k in d["keypoints"]], d.get("track_id"))  # type: ignore[arg-type]


@dataclass(frozen=True)
class FrameResult:
    """One answered image or stream frame."""

    width: int
    height: int
    persons: list[Person]
    timings_ms: dict[str, float]
    frame: int | None = None
    dropped: list[int] = field(default_factory=list)
    model: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FrameResult:
        return cls(
            width=int(d["width"]),
            height=int(d["height"]),
            persons=[Person.from_json(p) for p in d["persons"]],
            timings_ms=dict(d.get("timings_ms", {})),
            frame=d.get("frame"),
            dropped=list(d.get("dropped", [])),
            model=d.get("model"),
            raw=d,
        )


@dataclass(frozen=True)
class StreamMessage:
    """A websocket message: ``type`` is result | error | hello | config_ack | reset_ack | pong."""

    type: str
    result: FrameResult | None
    data: dict[str, Any]

    @property
    def dropped(self) -> list[int]:
        return list(self.data.get("dropped", []))


def _headers(api_key: str | None) -> dict[str, str]:
    return {"x-api-key": api_key} if api_key else {}


def _raise_for(r: httpx.Response) -> None:
    if r.status_code >= 400:
        try:
            detail = r.json().get("detail", r.text)
        except ValueError:
            detail = r.text
        raise PoseServiceError(f"HTTP {r.status_code}: {detail}", status=r.status_code)


def _pose_request(
    image: bytes, boxes: Sequence[Sequence[float]] | None, params: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    files = {"image": ("image.jpg", image, "application/octet-stream")}
    data = {"boxes": json.dumps([list(map(float, b)) for b in boxes])} if boxes is not None else {}
    return files, data, {k: v for k, v in params.items() if v is not None}


class PoseClient:
    """Synchronous REST client: ``PoseClient("http://localhost:8000").pose(open("a.jpg", "rb").read())``."""

    def __init__(self, url: str = "http://localhost:8000", api_key: str | None = None, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=_headers(api_key), timeout=timeout)

    def pose(
        self, image: bytes, boxes: Sequence[Sequence[float]] | None = None, **params: float | int | None
    ) -> FrameResult:
        files, data, query = _pose_request(image, boxes, params)
        r = self._http.post("/pose", files=files, data=data, params=query)
        _raise_for(r)
        return FrameResult.from_json(r.json())

    def ready(self) -> dict[str, Any]:
        r = self._http.get("/ready")
        _raise_for(r)
        return dict(r.json())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PoseClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncPoseClient:
    """Async REST + websocket streaming.

    ``async with client.stream() as s: await s.send(jpeg); msg = await s.receive()``
    """

    def __init__(self, url: str = "http://localhost:8000", api_key: str | None = None, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.api_key = api_key
        self._http = httpx.AsyncClient(base_url=self.url, headers=_headers(api_key), timeout=timeout)

    async def pose(
        self, image: bytes, boxes: Sequence[Sequence[float]] | None = None, **params: float | int | None
    ) -> FrameResult:
        files, data, query = _pose_request(image, boxes, params)
        r = await self._http.post("/pose", files=files, data=data, params=query)
        _raise_for(r)
        return FrameResult.from_json(r.json())

    def stream(self, **config: Any) -> Stream:
        ws_url = self.url.replace("https://", "wss://").replace("http://", "ws://") + "/stream"
        return Stream(ws_url, self.api_key, config)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncPoseClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class Stream:
    """One websocket stream (its own server-side tracker)."""

    def __init__(self, url: str, api_key: str | None, config: dict[str, Any]):
        self.url, self.api_key, self.config = url, api_key, config
        self.ws: Any = None
        self.hello: dict[str, Any] = {}
        self.config_ack: dict[str, Any] = {}  # the server's answer to ``config`` (the options now in force)

    async def __aenter__(self) -> Stream:
        import websockets

        try:
            self.ws = await websockets.connect(
                self.url, additional_headers=_headers(self.api_key), max_size=None, compression=None
            )
        except websockets.exceptions.InvalidStatus as e:  # refused at the handshake (401, 403, 429, 503)
            status = e.response.status_code
            try:
                detail = json.loads(e.response.body or b"{}").get("detail", "")
            except ValueError:
                detail = ""
            raise PoseServiceError(f"stream refused: HTTP {status} {detail}".strip(), status=status) from e
        self.hello = json.loads(await self.ws.recv())
        if self.hello.get("type") == "error":
            raise PoseServiceError(self.hello.get("error", "refused"))
        if self.config:  # applied before the first frame; a refused option stops here, not frames later
            await self.ws.send(json.dumps({"type": "config", **self.config}))
            answer = await self.receive(30)
            self.config_ack = answer.data
            if answer.type != "config_ack":
                await self.ws.close()
                raise PoseServiceError(f"stream config refused: {answer.data.get('error', answer.data)}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()

    @property
    def skeleton(self) -> list[tuple[int, int]]:
        return [tuple(x) for x in self.hello.get("model", {}).get("skeleton", [])]  # type: ignore[misc]

    async def send(self, jpeg: bytes) -> None:
        await self.ws.send(jpeg)

    async def control(self, **msg: Any) -> None:
        await self.ws.send(json.dumps(msg))

    async def receive(self, timeout: float | None = None) -> StreamMessage:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        d = json.loads(raw)
        return StreamMessage(d.get("type", "?"), FrameResult.from_json(d) if d.get("type") == "result" else None, d)

    async def __aiter__(self) -> AsyncIterator[StreamMessage]:
        while True:
            yield await self.receive()
