"""The library stands alone: ``import okpose`` (and its CLI, sources, exports, drawing) loads no torch and no
web framework; nothing outside service/ imports the web package; the wheel installs and runs on its own."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WEB_AND_TORCH = ("torch", "torchvision", "ultralytics", "fastapi", "starlette", "uvicorn", "pydantic",
                 "prometheus_client", "httpx", "websockets", "service")  # fmt: skip


def test_import_okpose_loads_no_torch_and_no_web() -> None:
    code = (
        "import sys, okpose, okpose.cli, okpose.sources, okpose.export, okpose.draw, okpose.detect, okpose.track;"
        "okpose.Pipeline(threads=1, video=False);"
        f"bad = sorted({{m.split('.')[0] for m in sys.modules}} & set({WEB_AND_TORCH!r}));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stdout + r.stderr


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append((node.lineno, node.module))
    return out


def test_no_package_outside_service_imports_service() -> None:
    # the one allowed dispatch: `okpose serve` hands its arguments to `python -m service`'s main, loaded lazily
    allowed = {("okpose/cli.py", "service.__main__")}
    found = []
    for pkg in ("okpose", "trainer", "tools", "bench", "clients"):
        for path in (REPO / pkg).rglob("*.py"):
            rel = str(path.relative_to(REPO))
            for line, mod in _imports(path):
                if (mod == "service" or mod.startswith("service.")) and (rel, mod) not in allowed:
                    found.append(f"{rel}:{line} imports {mod}")
    assert not found, "\n".join(found)


def test_wheel_installs_and_runs_on_a_photo_and_a_clip(tmp_path: Path, data_root: Path) -> None:
    """``pip install .`` (no extras, no dependencies fetched: they are this environment's) into a fresh target,
    then the installed package, not the checkout, runs a Pipeline on a real photo and a clip, and its CLI."""
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--quiet",
                        "--target", str(target), str(REPO)], capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    photo = data_root / "images" / "val" / "pose2sim_multi_cam03_f0000.jpg"
    clip = data_root / "videos" / "pose2sim_multi_cam01.mp4"
    code = (
        "import cv2, okpose, sys;"
        f"assert okpose.__file__.startswith({str(target)!r}), okpose.__file__;"
        "pipe = okpose.Pipeline(threads=1, video=False);"
        f"res = pipe(cv2.imread({str(photo)!r}));"
        f"ids = [r.track_ids.tolist() for _, r in pipe.track({str(clip)!r}, max_frames=5)];"
        "print(len(res), res.keypoints.shape, ids)"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    n, _, ids = r.stdout.partition(" ")
    assert int(n) >= 2 and "17, 3)" in ids and "[1, " in ids
    script = target / "bin" / "okpose"
    assert script.is_file(), "the console script is installed"
    r = subprocess.run([sys.executable, str(script), "track", str(clip), "--frames", "3", "--json",
                        str(tmp_path / "t.jsonl"), "--quiet", "--threads", "1"], capture_output=True, text=True,
                       cwd=tmp_path, env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert len((tmp_path / "t.jsonl").read_text().splitlines()) == 3
