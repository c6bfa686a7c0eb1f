"""Export an Ultralytics YOLO person detector to ONNX for the service (needs network for the .pt,
or a local .pt). Usage: python deploy/export_detector.py --weights yolo11n.pt --imgsz 320 --out models/yolo11n.onnx
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--weights", default="yolo11n.pt", help="Ultralytics weights name (downloaded) or local .pt")
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--out", default="models/yolo11n.onnx")
    a = p.parse_args()
    from ultralytics import YOLO

    path = YOLO(a.weights).export(format="onnx", imgsz=a.imgsz, dynamic=False, simplify=False, opset=17)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    shutil.move(path, a.out)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
