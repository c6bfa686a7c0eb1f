"""Shared test helpers. ``LiveServer``: the production server class and configuration (``service.server``) on a loopback socket in a thread of
the test process, around an engine loaded from settings or built by the caller (injection, not patching).
``ServiceProcess`` (``bench.live``) runs it in its own process instead."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from bench.live import _Loopback
from service.app import create_app
from service.engine import Engine
from service.server import GracefulServer, uvicorn_config
from service.settings import Settings


class LiveServer(_Loopback):
    """In-thread server; ``with LiveServer(settings) as s: s.http, s.ws, s.engine``."""

    def __init__(self, settings: Settings, engine: Engine | None = None):
        self.engine = engine or Engine.load(settings)
        self.app = create_app(settings, self.engine)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        cfg = uvicorn_config(self.app, settings, log_level="warning", lifespan="on")
        self.server = GracefulServer(cfg, self.engine, settings.shutdown_grace_s)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.time() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.time() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def settings_for_tests(**overrides: object) -> Settings:
    base = {
        "threads": 1,
        "workers": 2,
        "max_image_bytes": 2_000_000,
        "max_image_pixels": 3000 * 3000,
        "max_fps": 1000.0,
    }
    return Settings(**{**base, **overrides})


def make_server(engine: Engine | None = None, **overrides: object) -> LiveServer:
    return LiveServer(settings_for_tests(**overrides), engine)


def video_frames(data_root: Path, name: str, n: int, width: int = 480, step: int = 1) -> list[bytes]:
    """The first ``n`` frames (every ``step``-th) of a real clip, resized, as JPEG bytes."""
    cap = cv2.VideoCapture(str(data_root / "videos" / f"{name}.mp4"))
    out: list[bytes] = []
    i = 0
    while len(out) < n:
        ok, frame = cap.read()
        if not ok:
            break
        if i % step == 0:
            h, w = frame.shape[:2]
            small = cv2.resize(frame, (width, round(h * width / w)))
            out.append(cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
        i += 1
    cap.release()
    assert len(out) == n, f"{name}: only {len(out)} frames"
    return out


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (decompression-bomb probe)."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + b"\0" * 64


def noise_jpeg(w: int = 64, h: int = 48) -> bytes:
    img = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", img)[1].tobytes()
