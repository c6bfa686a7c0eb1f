"""python -m bench.student: per-crop cost of the pose students against MoveNet Lightning, same run.

Batch 1, one ONNX Runtime thread (the budget the student issue sets: <= 3 ms per crop), real val crops
prepared as the service prepares them; each model alternates with the others in rounds so that load on
the machine hits them alike. Reports the median and p95 per model and its ratio to MoveNet Lightning's
median (the teacher at 192x192, the cost the student must undercut by 3x).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from okpose.core.runtime import open_session
from okpose.core.spec import ModelSpec
from okpose.core.topdown import normalize_crops, prepare_crops

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "realpose-lab"
DEFAULTS = [
    ROOT / "models" / "okpose-movenet.onnx",
    ROOT / "models" / "okdhp-movenet-int8.onnx",
    ROOT / "models" / "okdhp-nanodet-w64-int8.onnx",
]
LIGHTNING = ROOT / "models" / "teachers" / "movenet-lightning.onnx"


def _inputs(path: Path, crops: int) -> tuple[Any, list[np.ndarray]]:  # (onnxruntime session, inputs)
    sess = open_session(path, "cpu", threads=1)
    val = sorted((DATA / "images" / "val").glob("*.jpg"))[:crops]
    meta = sess.get_modelmeta().custom_metadata_map
    if "okpose.spec" in meta:
        spec = ModelSpec.from_metadata(meta)
        xs = []
        for p in val:
            img = cv2.imread(str(p))
            h, w = img.shape[:2]
            box = np.array([[w * 0.3, h * 0.2, w * 0.7, h * 0.9]], np.float32)
            xs.append(normalize_crops(prepare_crops(img, box, spec)[0], spec))
        return sess, xs
    side = int(sess.get_inputs()[0].shape[1])  # MoveNet: int32 NHWC square
    return sess, [cv2.resize(cv2.imread(str(p)), (side, side))[None, :, :, ::-1].astype(np.int32) for p in val]


def measure(paths: list[Path], rounds: int = 30, per_round: int = 10) -> list[dict]:
    runs = {p: _inputs(p, per_round) for p in paths}
    times: dict[Path, list[float]] = {p: [] for p in paths}
    for sess, xs in runs.values():  # warm-up
        for x in xs:
            sess.run(None, {sess.get_inputs()[0].name: x})
    for _ in range(rounds):
        for p, (sess, xs) in runs.items():
            name = sess.get_inputs()[0].name
            for x in xs:
                t0 = time.perf_counter()
                sess.run(None, {name: x})
                times[p].append((time.perf_counter() - t0) * 1e3)
    ref = float(np.median(times[paths[-1]]))
    return [
        {
            "model": p.name,
            "input": "x".join(str(d) for d in runs[p][1][0].shape[1:]),
            "ms_p50": round(float(np.median(t)), 3),
            "ms_p95": round(float(np.percentile(t, 95)), 3),
            "vs_lightning": round(float(np.median(t)) / ref, 3),
        }
        for p, t in times.items()
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("onnx", nargs="*", type=Path, default=[d for d in DEFAULTS if d.is_file()])
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    rows = measure([*a.onnx, LIGHTNING], a.rounds)
    print("| model | input | ms per crop p50 / p95 (1 thread, batch 1) | cost vs MoveNet Lightning |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['input']} | {r['ms_p50']:.2f} / {r['ms_p95']:.2f} | {r['vs_lightning']:.2f}x |")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
