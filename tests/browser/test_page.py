"""End to end in headless Chromium: the page at / streams a fake webcam (a real video) and draws skeletons."""

import os
import shutil
from pathlib import Path

import cv2
import pytest

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "browser.png"


def make_y4m(video: Path, out: Path, frames: int = 90, size: tuple[int, int] = (360, 640)) -> Path:
    """A .y4m (Chromium's fake-camera format) from the first frames of a real clip."""
    cap = cv2.VideoCapture(str(video))
    w, h = size
    with open(out, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            ok, img = cap.read()
            if not ok:
                break
            f.write(b"FRAME\n" + cv2.cvtColor(cv2.resize(img, (w, h)), cv2.COLOR_BGR2YUV_I420).tobytes())
    cap.release()
    return out


CHECK_JS = """() => {
  window.okposeDraw();
  const c = document.getElementById('view'), ctx = c.getContext('2d'), m = window.okposeLast;
  const probe = document.createElement('canvas').getContext('2d');
  const out = [];
  for (const p of m.persons) {
    probe.fillStyle = window.okposeColor(p.track_id); probe.fillRect(0, 0, 1, 1);
    const want = Array.from(probe.getImageData(0, 0, 1, 1).data.slice(0, 3));
    for (const [x, y, s] of p.keypoints) {
      if (s <= 0.2) continue;
      const px = ctx.getImageData(Math.round(x * c.width / m.width), Math.round(y * c.height / m.height), 1, 1).data;
      out.push(Math.max(...[0, 1, 2].map(i => Math.abs(px[i] - want[i]))));
    }
  }
  return out;
}"""


def test_browser_page_streams_webcam_and_draws_skeletons(data_root, tmp_path):
    """Against a server that requires an API key: the page passes it in the websocket subprotocol
    (from the #api_key= fragment, which no server ever sees)."""
    from tests.live import make_server

    with make_server(api_key="browser-key") as server:
        _stream_in_browser(server, data_root, tmp_path)


def _stream_in_browser(server, data_root, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: `make test` installs it (apt package chromium)")
    from playwright.sync_api import sync_playwright

    y4m = make_y4m(data_root / "videos" / "pose2sim_multi_cam03.mp4", tmp_path / "cam.y4m")
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={y4m}",
    ]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            page = browser.new_page(viewport={"width": 800, "height": 760})
            page.goto(f"{server.http}/?autostart=1&maxside=400#api_key=browser-key")
            page.wait_for_function(
                "window.okposeStats && window.okposeStats.results >= 8 && window.okposeLast && window.okposeLast.persons.length > 0",
                timeout=90_000,
            )
            stats = page.evaluate("window.okposeStats")
            hud = page.evaluate("document.getElementById('hud').textContent")
            sent_wh = page.evaluate("[window.okposeLast.width, window.okposeLast.height]")
            cam_wh = page.evaluate(
                "[document.getElementById('cam').videoWidth, document.getElementById('cam').videoHeight]"
            )
            diffs = page.evaluate(CHECK_JS)
            SHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(tmp_path / "shot.png"))
        finally:
            browser.close()
    assert stats["results"] >= 8 and stats["personsSeen"] > 0 and stats["errors"] == 0
    # the camera's frames are downscaled to the chosen 400 long side before sending; the HUD says so
    r = 400 / max(cam_wh)
    assert max(cam_wh) > 400 and sent_wh == [round(cam_wh[0] * r), round(cam_wh[1] * r)], (cam_wh, sent_wh)
    assert f"({sent_wh[0]}x{sent_wh[1]})" in hud
    # keypoint dots are painted in the track's colour over the video: the skeleton is really drawn
    assert diffs and sum(d <= 40 for d in diffs) >= 0.6 * len(diffs), diffs
    assert (tmp_path / "shot.png").stat().st_size > 10_000
    if os.environ.get("OKPOSE_UPDATE_DOCS"):
        shutil.copy(tmp_path / "shot.png", SHOT)
