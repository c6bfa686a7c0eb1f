"""Real sources for the library tests: the lab clip, its frames as JPEG files, a GStreamer RTSP server and
an HTTP MJPEG server, both on loopback sockets and started here."""

from __future__ import annotations

import http.server
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.live import free_port

CLIP = "pose2sim_multi_cam01"
N_FRAMES = 24
SYSTEM_PYTHON = "/usr/bin/python3"  # PyGObject + gst-rtsp-server come from Debian (`make system-deps`)


@pytest.fixture(scope="session")
def clip(data_root: Path) -> Path:
    return data_root / "videos" / f"{CLIP}.mp4"


@pytest.fixture(scope="session")
def clip_frames(clip: Path) -> list[np.ndarray]:
    """The clip's first N_FRAMES frames, decoded by OpenCV directly (the reference the sources are held to)."""
    cap = cv2.VideoCapture(str(clip))
    frames = []
    while len(frames) < N_FRAMES:
        ok, f = cap.read()
        assert ok, "the lab clip is shorter than expected"
        frames.append(f)
    cap.release()
    return frames


@pytest.fixture(scope="session")
def frames_dir(tmp_path_factory: pytest.TempPathFactory, clip_frames: list[np.ndarray]) -> Path:
    d = tmp_path_factory.mktemp("frames")
    for i, f in enumerate(clip_frames):
        cv2.imwrite(str(d / f"{i:05d}.jpg"), f, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return d


@pytest.fixture(scope="session")
def rtsp_url(frames_dir: Path) -> Iterator[str]:
    """rtsp://127.0.0.1:PORT/clip: the frames at 25 fps, from the first one for every new client."""
    if (
        not Path(SYSTEM_PYTHON).exists()
        or subprocess.run(
            [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"], capture_output=True
        ).returncode
    ):
        pytest.fail("GStreamer's RTSP server is missing: `make system-deps` installs gir1.2-gst-rtsp-server-1.0")
    port = free_port()
    server = Path(__file__).with_name("rtsp_server.py")
    proc = subprocess.Popen([SYSTEM_PYTHON, str(server), str(frames_dir), str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "ready" not in line:
        proc.kill()
        pytest.fail(f"RTSP server did not start: {line}{proc.stdout.read()[-2000:]}")
    yield f"rtsp://127.0.0.1:{port}/clip"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def mjpeg_url(frames_dir: Path) -> Iterator[str]:
    """http://127.0.0.1:PORT/video.mjpg: multipart/x-mixed-replace JPEGs, as IP cameras serve them."""
    jpegs = [p.read_bytes() for p in sorted(frames_dir.glob("*.jpg"))]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            if self.path != "/video.mjpg":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            for j in jpegs:
                head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(j)}\r\n\r\n".encode()
                self.wfile.write(head + j + b"\r\n")
                time.sleep(0.02)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/video.mjpg"
    server.shutdown()


@pytest.fixture(scope="session")
def pipe():  # noqa: ANN201
    import okpose

    return okpose.Pipeline(threads=1, video=False)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / max(mse, 1e-9))
