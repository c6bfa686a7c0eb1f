"""The ``okpose`` command end to end (a real process) on the lab clip and over RTSP, and the export formats."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import okpose
from okpose.export import CocoResults, JsonLines, TrackCsv, coco_results
from tests.library.media import N_FRAMES

REPO = Path(__file__).resolve().parents[2]


def okpose_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "okpose", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout)  # fmt: skip


def _video_frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            return out
        out.append(f)


def _check_outputs(tmp_path: Path, n: int, size_wh: tuple[int, int]) -> list[dict]:
    frames = _video_frames(tmp_path / "a.mp4")
    assert len(frames) == n and (frames[0].shape[1], frames[0].shape[0]) == size_wh
    lines = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert [x["frame"] for x in lines] == list(range(n))
    assert all(x["width"] == size_wh[0] and x["height"] == size_wh[1] for x in lines)
    ids = [p["track_id"] for x in lines for p in x["persons"]]
    assert ids and all(isinstance(i, int) and i >= 1 for i in ids)
    return lines


def test_track_clip_writes_video_json_csv_coco(tmp_path: Path, clip: Path) -> None:
    r = okpose_cli("track", str(clip), "--frames", str(N_FRAMES), "--out", str(tmp_path / "a.mp4"), "--json",
                   str(tmp_path / "t.jsonl"), "--csv", str(tmp_path / "t.csv"), "--coco", str(tmp_path / "c.json"),
                   "--threads", "1")  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    w, h = (lambda c: (int(c.get(cv2.CAP_PROP_FRAME_WIDTH)), int(c.get(cv2.CAP_PROP_FRAME_HEIGHT))))(
        cv2.VideoCapture(str(clip))
    )
    lines = _check_outputs(tmp_path, N_FRAMES, (w, h))
    persons = sum(len(x["persons"]) for x in lines)
    tracks = len({p["track_id"] for x in lines for p in x["persons"]})
    assert f"{N_FRAMES} frames, {persons} persons, {tracks} tracks" in r.stdout, r.stdout
    assert "ms/frame" in r.stdout
    assert lines[1]["time_s"] > lines[0]["time_s"]
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert len(rows) == persons and rows[0]["nose_x"] != ""
    assert {int(r["track_id"]) for r in rows} == {p["track_id"] for x in lines for p in x["persons"]}
    coco = json.loads((tmp_path / "c.json").read_text())
    assert len(coco) == persons and len(coco[0]["keypoints"]) == 51 and len(coco[0]["bbox"]) == 4
    # the annotated video is the clip with drawings on it, not a copy and not blank
    drawn, raw = _video_frames(tmp_path / "a.mp4")[0], _video_frames(clip)[0]
    diff = np.abs(drawn.astype(int) - raw.astype(int)).mean(2) > 60
    assert 0.001 < diff.mean() < 0.2


def test_track_rtsp_url(tmp_path: Path, rtsp_url: str) -> None:
    r = okpose_cli("track", rtsp_url, "--frames", "15", "--out", str(tmp_path / "a.mp4"), "--json",
                   str(tmp_path / "t.jsonl"), "--threads", "1", "--quiet")  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    _check_outputs(tmp_path, 15, (1088, 1920))


@pytest.mark.parametrize("source", ["rtsp://127.0.0.1:9/nothing", "/no/such/clip.mp4"])
def test_bad_source_exits_2_with_the_reason(source: str, tmp_path: Path) -> None:
    r = okpose_cli("track", source, "--json", str(tmp_path / "t.jsonl"), "--timeout", "2", timeout=60)
    assert r.returncode == 2 and "error:" in r.stderr and source.split("/")[-1] in r.stderr
    assert "Traceback" not in r.stderr


def test_image_command_on_a_folder(tmp_path: Path, frames_dir: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for p in sorted(frames_dir.glob("*.jpg"))[:3]:
        (src / p.name).write_bytes(p.read_bytes())
    r = okpose_cli("image", str(src), "--out", str(tmp_path / "drawn"), "--json", str(tmp_path / "p.jsonl"),
                   "--threads", "1", "--quiet")  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "drawn").iterdir()) == sorted(p.name for p in src.iterdir())
    lines = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [x["name"] for x in lines] == sorted(p.name for p in src.iterdir())
    assert all(x["frame"] is None and x["persons"] and x["persons"][0]["track_id"] is None for x in lines)


def test_writers_round_trip_a_result(pipe: okpose.Pipeline, clip_frames: list[np.ndarray], tmp_path: Path) -> None:
    stream = pipe.stream()
    results = [pipe.process(f, stream) for f in clip_frames[:3]]
    with JsonLines(tmp_path / "r.jsonl") as js, TrackCsv(tmp_path / "r.csv") as tc:
        for i, r in enumerate(results):
            js.write(r, time_s=i / 25)
            tc.write(r, time_s=i / 25)
    back = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    for r, b in zip(results, back, strict=True):
        assert b["persons"] == json.loads(json.dumps(r.persons()))
        np.testing.assert_allclose([p["box"] for p in b["persons"]], r.boxes, atol=0.06)
    # invisible keypoints are written as 0, 0, 0 (COCO's convention)
    kps = np.array([p["keypoints"] for p in back[0]["persons"]])
    hidden = results[0].keypoints[..., 2] <= results[0].keypoint_threshold
    assert (kps[hidden] == 0).all() and (kps[~hidden][:, 2] > 0).all()
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert len(rows) == sum(len(r) for r in results)
    coco = coco_results(results[0], image_id=7)
    assert {c["image_id"] for c in coco} == {7} and coco[0]["bbox"][2] > 0
    with CocoResults(tmp_path / "c.json", image_ids={"a.jpg": 3}) as cw:
        cw.write(results[0], name="a.jpg")
        with pytest.raises(KeyError, match="b.jpg"):
            cw.write(results[0], name="b.jpg")
    assert {c["image_id"] for c in json.loads((tmp_path / "c.json").read_text())} == {3}


def test_serve_starts_the_web_service(data_root: Path) -> None:
    import time

    import httpx

    from tests.library.media import free_port

    port = free_port()
    env = {**os.environ, "POSE_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "okpose", "serve", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        photo = data_root / "images" / "val" / "pose2sim_multi_cam03_f0000.jpg"
        r = httpx.post(f"http://127.0.0.1:{port}/pose", files={"image": photo.read_bytes()}, timeout=30)
        assert r.status_code == 200 and len(r.json()["persons"]) >= 2
    finally:
        proc.terminate()
        proc.wait(timeout=30)
