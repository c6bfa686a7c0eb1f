"""A real uvicorn server on a real loopback socket, with the real models and real frames."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from service.engine import Engine
from service.live import LiveServer
from service.settings import Settings


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


@pytest.fixture(scope="session")
def server() -> Iterator[LiveServer]:
    with make_server() as s:
        yield s


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


@pytest.fixture(scope="session")
def multi_frames(data_root: Path) -> list[bytes]:
    return video_frames(data_root, "pose2sim_multi_cam03", 40)


@pytest.fixture(scope="session")
def val_image(data_root: Path) -> bytes:
    return (data_root / "images" / "val" / "pose2sim_multi_cam03_f0010.jpg").read_bytes()


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
