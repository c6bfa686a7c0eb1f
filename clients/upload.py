"""python -m clients.upload photo.jpg [more.jpg | folder/ ...] [--out annotated/] [--url http://host:8000]

Posts each image to /pose, prints a compact table (persons, scores, timing), and with --out
writes annotated images and one JSON per image. Folders are walked for .jpg/.jpeg/.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from clients.api import PoseClient, PoseServiceError
from clients.draw import draw_result

EXTS = {".jpg", ".jpeg", ".png"}


def collect(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in EXTS)
        elif p.is_file():
            out.append(p)
        else:
            raise SystemExit(f"no such file or folder: {p}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m clients.upload", description=__doc__.split("\n\n")[1])
    p.add_argument("paths", nargs="+")
    p.add_argument("--out", help="folder for annotated images and JSON")
    p.add_argument("--url", default="http://localhost:8000")
    p.add_argument("--api-key", default=os.environ.get("POSE_API_KEY"))
    p.add_argument("--keypoint-threshold", type=float, default=None)
    a = p.parse_args(argv)
    files = collect(a.paths)
    out = Path(a.out) if a.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    failures = 0
    rows = []
    with PoseClient(a.url, a.api_key) as client:
        for f in tqdm(files, unit="img", disable=len(files) < 3, file=sys.stderr):
            data = f.read_bytes()
            try:
                res = client.pose(data, keypoint_threshold=a.keypoint_threshold)
            except PoseServiceError as e:
                failures += 1
                rows.append(f"{f.name:32s} ERROR {e}")
                continue
            scores = ", ".join(f"{p.score:.2f}" for p in res.persons) or "-"
            rows.append(
                f"{f.name:32s} {res.width:5d}x{res.height:<5d} {len(res.persons):3d}  "
                f"{res.timings_ms.get('total', 0):7.1f}  {scores}"
            )
            if out:
                (out / f"{f.stem}.json").write_text(json.dumps(res.raw, indent=1))
                img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                limbs = [tuple(x) for x in (res.model or {}).get("skeleton", [])]
                drawn = draw_result(img, res, limbs) if limbs else draw_result(img, res)
                cv2.imwrite(str(out / f"{f.stem}_pose.jpg"), drawn)
    print(f"{'image':32s} {'size':>11s} {'ppl':>3s}  {'ms':>7s}  scores")
    print("\n".join(rows))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
