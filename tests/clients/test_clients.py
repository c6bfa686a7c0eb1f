"""Each CLI against the real service on a real socket with real video frames (headless)."""

import asyncio
import json

import cv2
import pytest

from clients import AsyncPoseClient, PoseClient, PoseServiceError
from clients import upload as upload_cli
from clients import video as video_cli
from clients import webcam as webcam_cli


def _video(data_root, name="pose2sim_multi_cam03"):
    return str(data_root / "videos" / f"{name}.mp4")


def _frame_count(path):
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return n


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_video_cli_lockstep_writes_every_frame(server, data_root, tmp_path, capsys):
    out, js = tmp_path / "o.mp4", tmp_path / "o.jsonl"
    rc = video_cli.main(
        [
            _video(data_root),
            "--out",
            str(out),
            "--json",
            str(js),
            "--url",
            server.http,
            "--frames",
            "24",
            "--max-width",
            "360",
        ]
    )
    assert rc == 0
    assert _frame_count(out) == 24
    lines = _lines(js)
    assert [m["frame"] for m in lines] == list(range(24)) and all(m["type"] == "result" for m in lines)
    with_people = [m for m in lines if m["persons"]]
    assert len(with_people) >= 18
    assert all(isinstance(p["track_id"], int) for m in with_people for p in m["persons"])
    assert "24 frames written" in capsys.readouterr().out


def test_video_cli_realtime_accounts_for_every_frame(server, data_root, tmp_path):
    js = tmp_path / "o.jsonl"
    assert (
        video_cli.main(
            [
                _video(data_root, "pose2sim_multi_cam01"),
                "--out",
                str(tmp_path / "o.mp4"),
                "--json",
                str(js),
                "--url",
                server.http,
                "--frames",
                "40",
                "--realtime",
                "--max-width",
                "360",
            ]
        )
        == 0
    )
    lines = _lines(js)
    answered = {m["frame"] for m in lines if m["type"] == "result"}
    dropped = {m["frame"] for m in lines if m["type"] == "dropped"}
    assert answered | dropped == set(range(40)) and not answered & dropped
    assert _frame_count(tmp_path / "o.mp4") == len(answered)


def test_webcam_cli_headless_on_a_video_file(server, data_root, tmp_path, capsys):
    out, js = tmp_path / "w.mp4", tmp_path / "w.jsonl"
    rc = webcam_cli.main(
        [
            "--video",
            _video(data_root, "pose2sim_multi_cam02"),
            "--headless",
            "--out",
            str(out),
            "--json",
            str(js),
            "--url",
            server.ws,
            "--frames",
            "30",
            "--max-width",
            "360",
            "--no-reconnect",
        ]
    )
    assert rc == 0
    lines = _lines(js)
    results = [m for m in lines if m["type"] == "result"]
    assert results and any(m["persons"] for m in results)
    assert _frame_count(out) == len(results)
    assert "sent 30" in capsys.readouterr().out


def test_upload_cli_folder(server, data_root, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("pose2sim_multi_cam03_f0010.jpg", "pose2sim_multi_cam03_f0030.jpg", "pose2sim_multi_cam03_f0060.jpg"):
        (folder / name).write_bytes((data_root / "images" / "val" / name).read_bytes())
    (folder / "notes.txt").write_text("ignored")
    out = tmp_path / "out"
    assert upload_cli.main([str(folder), "--out", str(out), "--url", server.http]) == 0
    table = capsys.readouterr().out
    assert table.count("pose2sim_multi_cam03_f00") == 3
    for stem in ("pose2sim_multi_cam03_f0010", "pose2sim_multi_cam03_f0030", "pose2sim_multi_cam03_f0060"):
        body = json.loads((out / f"{stem}.json").read_text())
        assert body["width"] == 453 and isinstance(body["persons"], list)
        assert cv2.imread(str(out / f"{stem}_pose.jpg")).shape == (800, 453, 3)


def test_upload_cli_reports_bad_files(server, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    assert upload_cli.main([str(bad), "--url", server.http]) == 1
    assert "HTTP 400" in capsys.readouterr().out


def test_library_sync_and_async(server, val_image, multi_frames):
    with PoseClient(server.http) as c:
        res = c.pose(val_image, boxes=[[200, 169, 333, 550]])
        assert len(res.persons) == 1 and len(res.persons[0].keypoints) == 17
        assert c.ready()["status"] == "ready"

    async def stream():
        async with AsyncPoseClient(server.http) as c, c.stream(detect_interval=2) as s:
            assert s.config_ack["type"] == "config_ack" and s.config_ack["config"]["detect_interval"] == 2
            got = []
            for f in multi_frames[:3]:
                await s.send(f)
                got.append(await s.receive(30))
            return got, s.skeleton

    got, skeleton = asyncio.run(stream())
    assert [m.result.frame for m in got] == [0, 1, 2] and len(skeleton) == 19


def test_a_refused_stream_config_fails_at_the_start(server):
    """An option the server refuses stops ``stream()`` with its reason before any frame is sent (not an
    error message later taken for a frame's answer)."""

    async def stream():
        async with AsyncPoseClient(server.http) as c, c.stream(detect_interval=0):
            pass

    with pytest.raises(PoseServiceError, match="detect_interval"):
        asyncio.run(stream())


def test_video_cli_fails_fast_on_a_refused_key(data_root, tmp_path, capsys):
    """A wrong API key is refused at the handshake (401): the client stops at once with the server's
    reason instead of retrying forever."""
    import time

    from tests.live import make_server

    with make_server(api_key="right-key") as s:
        t0 = time.perf_counter()
        rc = video_cli.main(
            [
                _video(data_root),
                "--out",
                str(tmp_path / "o.mp4"),
                "--url",
                s.http,
                "--frames",
                "4",
                "--api-key",
                "wrong-key",
            ]
        )
        elapsed = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert rc == 2 and "401" in err and "API key" in err
    assert elapsed < 10


def test_clients_downscale_to_a_long_side(data_root):
    """Portrait full-HD footage (1088x1920) is sent at the chosen long side, aspect kept; smaller
    frames are never upscaled."""
    from clients.streaming import DEFAULT_MAX_SIDE, frames, open_source

    src, _ = open_source(None, _video(data_root, "pose2sim_multi_cam01"))
    (big,) = list(frames(src, DEFAULT_MAX_SIDE, limit=1))
    src, _ = open_source(None, _video(data_root, "pose2sim_multi_cam01"))
    (small,) = list(frames(src, 4096, limit=1))
    assert max(big.shape[:2]) == DEFAULT_MAX_SIDE and big.shape[0] > big.shape[1]
    assert abs(big.shape[1] / big.shape[0] - 1088 / 1920) < 0.01
    assert small.shape[:2] == (1920, 1088)
