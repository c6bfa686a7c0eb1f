"""Benchmark assets: Ultralytics YOLO11n detect and pose models built from their yaml (speed does
not depend on weights) and exported to ONNX, in a separate venv (.venv-export) so Ultralytics and
its opencv-python never enter the service or dev environments."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache"
VENV = ROOT / ".venv-export"
log = logging.getLogger("bench.assets")

EXPORT = """
import re, shutil, sys
from pathlib import Path
import ultralytics
from ultralytics import YOLO
name, imgsz, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if "pose" in name:  # person-only like the released yolo11n-pose.pt (the packaged yaml says nc: 80)
    src = Path(ultralytics.__file__).parent / "cfg" / "models" / "11" / "yolo11-pose.yaml"
    local = Path("pose1") / name  # the file name keeps the "n" scale
    local.parent.mkdir(exist_ok=True)
    local.write_text(re.sub(r"^nc: \\d+", "nc: 1", src.read_text(), flags=re.M))
    name = str(local.resolve())
path = YOLO(name).export(format="onnx", imgsz=imgsz, dynamic=False, simplify=False, opset=17, verbose=False)
shutil.move(path, out)
"""


def ensure_venv() -> Path | None:
    py = VENV / "bin" / "python"
    if py.exists():
        return py
    log.info("creating %s with Ultralytics (one-time, ~2 min)", VENV)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "torch==2.13.0"], check=True)
        subprocess.run([*pip, "torchvision==0.28.*", "ultralytics", "onnx"], check=True)
    except subprocess.CalledProcessError as e:
        log.warning("could not build the export venv: %s", e)
        return None
    return py


def yolo_onnx(kind: str, imgsz: int) -> Path | None:
    """models: kind 'detect' -> yolo11n.yaml, 'pose' -> yolo11n-pose.yaml. None if unavailable."""
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / f"yolo11n-{kind}-{imgsz}.onnx"
    if out.exists():
        return out
    py = ensure_venv()
    if py is None:
        return None
    yaml = "yolo11n.yaml" if kind == "detect" else "yolo11n-pose.yaml"
    r = subprocess.run(
        [str(py), "-c", EXPORT, yaml, str(imgsz), str(out)],
        capture_output=True,
        text=True,
        cwd=CACHE,
        env={"YOLO_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(CACHE)},
    )
    if r.returncode != 0 or not out.exists():
        log.warning("export of %s failed: %s", yaml, r.stderr[-2000:])
        return None
    return out
