"""Video mode over the real websocket: the shipped video model (models/okdhp-movenet-video-int8.onnx) on a real
clip, selected per stream; the first frame of a track runs without a previous pose, later frames with one."""

import asyncio
import json

import httpx
import numpy as np
import websockets

from tests.live import make_server


async def _recv(ws, timeout=30):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def _stream(url, frames, config=None):
    async with websockets.connect(url, max_size=None) as ws:
        hello = await _recv(ws)
        assert hello["type"] == "hello"
        acks = [hello]
        if config is not None:
            await ws.send(json.dumps({"type": "config", **config}))
            acks.append(await _recv(ws))
        out = []
        for f in frames:
            await ws.send(f)
            out.append(await _recv(ws))
        return acks, out


def test_video_mode_stream_on_a_real_clip(server, multi_frames):
    ready = httpx.get(server.http + "/ready").json()
    assert ready["video_model"]["name"] == "okdhp-movenet-video"
    assert ready["video_mode_default"] is False
    (hello, ack), video = asyncio.run(_stream(server.ws, multi_frames[:16], {"video_mode": True}))
    assert hello["video_model"] == ready["video_model"] and hello["config"]["video_mode"] is False
    assert ack["type"] == "config_ack" and ack["config"]["video_mode"] is True
    assert [r["type"] for r in video] == ["result"] * 16
    assert all(r["pose_model"].startswith("okdhp-movenet-video ") for r in video)
    assert video[0]["video_priors"] == 0  # nobody has a track yet: the first-frame path
    assert sum(r["video_priors"] > 0 for r in video[1:]) >= 12  # tracked persons carry their last pose
    assert all(r["video_priors"] <= len(r["persons"]) + 5 for r in video)
    # the same frames on a per-frame stream: same people found, per-frame model named, no priors
    _, plain = asyncio.run(_stream(server.ws, multi_frames[:16]))
    per_frame = ready["pose_model"]["name"] + " "  # the embedded per-frame model, not the video one
    assert all(r["pose_model"].startswith(per_frame) and r["video_priors"] == 0 for r in plain)
    # video mode finds the same people (track-matched boxes), with keypoints close to the per-frame ones
    # but not identical (the previous pose changes the result)
    diffs = []
    for v, p in zip(video[4:], plain[4:], strict=True):
        for a in v["persons"]:
            best = min(p["persons"], key=lambda b: np.abs(np.subtract(a["box"], b["box"])).sum(), default=None)
            if best is None:
                continue
            ka, kb = np.asarray(a["keypoints"]), np.asarray(best["keypoints"])
            both = (ka[:, 2] > 0) & (kb[:, 2] > 0)
            if both.sum() >= 8:
                diffs.append(np.linalg.norm(ka[both, :2] - kb[both, :2], axis=1).mean())
    assert len(diffs) >= 8
    size = 480 / 10  # a person is roughly a tenth of the 480-px frame wide
    assert 0.0 < np.median(diffs) < size


def test_video_mode_refused_without_a_video_model(multi_frames):
    with make_server(video_model="") as s:
        assert httpx.get(s.http + "/ready").json()["video_model"] is None
        (hello, ack), results = asyncio.run(_stream(s.ws, multi_frames[:2], {"video_mode": True}))
    assert "video_model" not in hello  # none loaded (None fields are left out)
    assert ack["type"] == "error" and "video model" in ack["error"]
    assert [r["type"] for r in results] == ["result"] * 2  # the stream goes on, per frame
    assert all(r["video_priors"] == 0 for r in results)


def test_video_mode_as_the_server_default(multi_frames):
    with make_server(video_mode=True) as s:
        assert httpx.get(s.http + "/ready").json()["video_mode_default"] is True
        _, results = asyncio.run(_stream(s.ws, multi_frames[:6]))
    assert all(r["pose_model"].startswith("okdhp-movenet-video ") for r in results)
    assert any(r["video_priors"] > 0 for r in results)
