"""Keypoint AP of the served configuration at each JPEG decode scale (``POSE_DECODE_MIN_SIDE``).

python -m bench.decode_scale

realpose-lab val (100 frames, 137 people), the engine's own frame path with the shipped defaults; the
val frames as they are (800 px) and upscaled x2.4 to 1920 px (what a full-HD camera would send),
decoded in full or at a reduced scale. Bootstrap 95 % intervals over images; decode stage p50.
"""

from __future__ import annotations

import json

import cv2
import numpy as np

from bench.frames import DATA
from okpose.pipeline import Pipeline
from okpose.sources import open_source
from trainer.peers import bootstrap_ap, oks_ap

RUNS = ((0, 1.0), (400, 1.0), (0, 2.4), (960, 2.4), (480, 2.4))  # (decode_min_side, upscale)


def run(gt: dict, min_side: int, upscale: float) -> tuple[float, float, float, float]:
    pipe = Pipeline(threads=2, video=False)
    dets, decode_ms = [], []
    for im in gt["images"]:
        data = (DATA / "images" / im["file_name"]).read_bytes()
        if upscale != 1:
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            img = cv2.resize(img, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC)
            data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
        res = pipe.process_bytes(data, decode_min_side=min_side)
        decode_ms.append(res.timings_ms["decode"])
        for p in res.persons():
            kp = (np.asarray(p["keypoints"], np.float64) / [upscale, upscale, 1]).reshape(-1).tolist()
            dets.append({"image_id": im["id"], "category_id": 1, "keypoints": kp, "score": p["score"]})
    lo, hi = bootstrap_ap(gt, dets)
    return oks_ap(gt["images"], gt["annotations"], dets), lo, hi, float(np.median(decode_ms))


def upload_sizes() -> str:
    """What a client sends for one full-HD frame (JPEG q80), as captured and at the clients' 960 px."""
    with open_source(DATA / "videos" / "pose2sim_multi_cam01.mp4", max_frames=1) as src:
        img = next(iter(src))
    h, w = img.shape[:2]
    small = cv2.resize(img, (round(w * 960 / max(h, w)), round(h * 960 / max(h, w))), interpolation=cv2.INTER_AREA)
    kb = [len(cv2.imencode(".jpg", i, [cv2.IMWRITE_JPEG_QUALITY, 80])[1]) // 1024 for i in (img, small)]
    return f"one {w}x{h} frame at JPEG q80: {kb[0]} KB; at a 960 px long side: {kb[1]} KB"


def main() -> int:
    print(upload_sizes())
    gt = json.loads((DATA / "annotations" / "person_keypoints_val.json").read_text())
    print("| frames | POSE_DECODE_MIN_SIDE | keypoint AP [95 % CI] | decode p50 ms |\n|---|---|---|---|")
    for min_side, up in RUNS:
        ap, lo, hi, dec = run(gt, min_side, up)
        frames = "val (800 px)" if up == 1 else f"val x{up} ({round(800 * up)} px)"
        print(f"| {frames} | {min_side or 'off'} | {ap:.3f} [{lo:.3f}, {hi:.3f}] | {dec:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
