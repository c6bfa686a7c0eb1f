"""The benchmark's smoke run (seconds, no thresholds on time) so it cannot rot."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_quick_runs_and_reports_every_section(tmp_path):
    out = tmp_path / "bench"
    r = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    res = json.loads((out.with_suffix(".json")).read_text())
    assert {"ours, NanoDet (default) every frame", "ours, YOLO11n-det (timing) + GT boxes, every frame"} <= set(
        res["stages"]
    )
    assert res["detector_in_service"].startswith("nanodet:")
    for stages in res["stages"].values():
        assert stages["total"]["p50"] > 0 and stages["persons"]["p50"] >= 2  # the clips' people are found
    assert set(res["yolo_pose"]) == {"320", "640"}
    # batching changes the speed, never the answer (timing ratios are reported, not asserted)
    assert res["batching"]["max_keypoint_diff_px"] < 0.5
    # following tracks on skip frames keeps the poses of running the detector on every frame
    assert res["interval_oks_ap_vs_every_frame"] > 0.6
    assert [c["streams"] for c in res["concurrency"]] == [1, 2, 4, 8]
    assert all(c["unaccounted"] == 0 for c in res["concurrency"])  # every frame answered or reported dropped
    assert "| concurrent streams" in (out.with_suffix(".md")).read_text()
    # camera resolutions: the clips' full-HD frames and 720p-class frames (long side 1280) went through
    sizes = {k: v["size"] for k, v in res["resolutions"].items()}
    assert sizes == {"1920": [1088, 1920], "1280": [725, 1280]}
    for name in ("bench_streams.svg", "bench_people.svg"):
        assert (tmp_path / name).read_text().count("<polyline") >= 1


def test_student_bench_times_each_model_on_its_own_inputs_against_lightning(tmp_path):
    """`python -m bench.student`: every student (spec-driven NCHW float crops) and MoveNet Lightning (its own int32
    NHWC input) timed in one run, ratios against Lightning's median, the JSON written."""
    import json

    from bench.student import DEFAULTS, main
    from okpose.core.runtime import open_session
    from okpose.core.spec import ModelSpec

    out = tmp_path / "s.json"
    assert main([str(DEFAULTS[0]), "--rounds", "2", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["model"] for r in rows] == [DEFAULTS[0].name, "movenet-lightning.onnx"]
    meta = open_session(DEFAULTS[0], "cpu", 1).get_modelmeta().custom_metadata_map
    w, h = ModelSpec.from_metadata(meta).input_wh  # each model fed its own spec's input
    assert rows[0]["input"] == f"3x{h}x{w}" and rows[1]["input"] == "192x192x3"
    assert rows[1]["vs_lightning"] == 1.0 and 0 < rows[0]["ms_p50"] <= rows[0]["ms_p95"]
    # the ratio of the (unrounded) medians
    assert abs(rows[0]["vs_lightning"] - rows[0]["ms_p50"] / rows[1]["ms_p50"]) < 0.01


def test_detector_bench_reports_people_diverse_recall_and_camera_sizes(tmp_path):
    out = tmp_path / "detector"
    r = subprocess.run([sys.executable, "-m", "bench.detector", "--quick", "--out", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=900)  # fmt: skip
    assert r.returncode == 0, r.stderr[-4000:]
    rows = json.loads(out.with_suffix(".json").read_text())["rows"]
    nano = [x for x in rows if x["detector"].startswith("NanoDet")]
    assert len(nano) >= 4 and all("diverse" in x for x in nano)
    for x in nano:
        d = x["diverse"]
        assert {"stanford40", "stanford40-small", "stanford40-dark", "coco8-human"} <= set(d)
        assert d["stanford40"]["persons"] == 80 and d["coco8-human"]["persons"] > 0
        assert 0.5 < d["stanford40"]["recall"] <= 1.0 and 0.0 < d["coco8-human"]["precision"] <= 1.0
        assert set(x["sizes_ms"]) == {"640x480", "1280x720", "1920x1080"}
    assert "People-diverse human boxes" in out.with_suffix(".md").read_text()


def test_live_tracking_bench_scores_quiet_and_busy_runs(tmp_path):
    out = tmp_path / "live"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.tracking_live",
            "--videos",
            "pose2sim_multi_cam01",
            "--load",
            "1",
            "--out",
            str(out),
        ],  # fmt: skip
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    res = json.loads(out.with_suffix(".json").read_text())
    assert list(res) == ["quiet", "busy (1 busy loops)"]
    for rows in res.values():
        (row,) = rows
        assert row["errors"] == 0 and 0 < row["answered"] <= row["sent"] == 50
        assert row["idf1"] > 0.5  # the clip's people are found and followed, answers matched to their frames
    assert "| busy (1 busy loops) |" in out.with_suffix(".md").read_text()
