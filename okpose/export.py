"""Writing results: per-frame JSON lines, per-person track CSV, COCO keypoint results.

    with JsonLines("tracks.jsonl") as js, TrackCsv("tracks.csv") as csv:
        for frame, res in pipe.track("clip.mp4"):
            js.write(res); csv.write(res)

Every writer takes ``write(result, time_s=None, name="")`` (``name``: the image file, for folders) and is a
context manager. JSON lines carry the service's wire layout per person (``Result.persons``), so a file
written here and a ``/stream`` answer read the same way. Keypoints not visible are written as 0, 0, 0
(COCO's convention for unlabelled joints).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from okpose.pipeline import Result


class _Writer:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f: IO[str] = self.path.open("w", newline="", encoding="utf-8")
        self.frames = 0

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def frame_record(result: Result, time_s: float | None = None, name: str = "") -> dict[str, Any]:
    """One frame as a JSON-ready dict: frame index, time, size, persons (box, score, keypoints, track_id)."""
    rec: dict[str, Any] = {"frame": result.frame if result.frame >= 0 else None}
    if time_s is not None:
        rec["time_s"] = round(float(time_s), 4)
    if name:
        rec["name"] = name
    rec.update(
        width=result.width,
        height=result.height,
        keypoint_names=list(result.keypoint_names),
        persons=result.persons(),
        timings_ms={k: round(v, 3) for k, v in result.timings_ms.items()},
    )
    return rec


class JsonLines(_Writer):
    """One JSON object per frame (``frame_record``), one per line."""

    def write(self, result: Result, time_s: float | None = None, name: str = "") -> None:
        self._f.write(json.dumps(frame_record(result, time_s, name), separators=(",", ":")) + "\n")
        self.frames += 1


class TrackCsv(_Writer):
    """One row per person per frame: frame, time_s, name, track_id, score, box, then x, y, score per keypoint."""

    def __init__(self, path: str | Path):
        super().__init__(path)
        self._csv = csv.writer(self._f)
        self._names: tuple[str, ...] | None = None
        self.rows = 0

    def write(self, result: Result, time_s: float | None = None, name: str = "") -> None:
        if self._names is None:
            self._names = result.keypoint_names
            kp_cols = [f"{k}_{c}" for k in self._names for c in ("x", "y", "score")]
            self._csv.writerow(["frame", "time_s", "name", "track_id", "score", "x1", "y1", "x2", "y2", *kp_cols])
        elif result.keypoint_names != self._names:
            raise ValueError("results with different keypoint schemas cannot share one CSV")
        frame = result.frame if result.frame >= 0 else self.frames
        t = "" if time_s is None else f"{time_s:.4f}"
        for p in result.persons():
            kps = [f"{v:g}" for kp in p["keypoints"] for v in kp]
            tid = "" if p["track_id"] is None else p["track_id"]
            self._csv.writerow([frame, t, name, tid, f"{p['score']:g}", *(f"{v:g}" for v in p["box"]), *kps])
            self.rows += 1
        self.frames += 1


def coco_results(result: Result, image_id: int, category_id: int = 1) -> list[dict[str, Any]]:
    """COCO keypoint *results* for one image (the list ``COCOeval``/``loadRes`` read), ``bbox`` as x, y, w, h."""
    out = []
    for p in result.persons():
        x1, y1, x2, y2 = p["box"]
        out.append(
            {
                "image_id": int(image_id),
                "category_id": category_id,
                "keypoints": np.asarray(p["keypoints"], np.float64).reshape(-1).round(2).tolist(),
                "score": p["score"],
                "bbox": [x1, y1, round(x2 - x1, 1), round(y2 - y1, 1)],
                **({"track_id": p["track_id"]} if p["track_id"] is not None else {}),
            }
        )
    return out


class CocoResults(_Writer):
    """COCO keypoint results of every frame as one JSON list; ``image_id`` is the frame index unless given
    (``image_ids``: file name -> id, e.g. from a COCO annotation file's ``images``)."""

    def __init__(self, path: str | Path, image_ids: dict[str, int] | None = None):
        super().__init__(path)
        self.image_ids = image_ids
        self.results: list[dict[str, Any]] = []

    def write(self, result: Result, time_s: float | None = None, name: str = "") -> None:
        if self.image_ids is not None:
            if name not in self.image_ids:
                raise KeyError(f"{name!r} is not in the COCO image list")
            image_id = self.image_ids[name]
        else:
            image_id = result.frame if result.frame >= 0 else self.frames
        self.results.extend(coco_results(result, image_id))
        self.frames += 1

    def close(self) -> None:
        if not self._f.closed:
            json.dump(self.results, self._f)
        super().close()


class VideoOut:
    """An MP4 (``mp4v``) written frame by frame; its size is the first frame's, every later frame must match."""

    def __init__(self, path: str | Path, fps: float = 30.0):
        self.path, self.fps = Path(path), fps if 1 <= fps <= 240 else 30.0
        self._writer: Any = None
        self._wh: tuple[int, int] | None = None
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        h, w = image.shape[:2]
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter.fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                raise OSError(f"{self.path}: cannot write a video here")
            self._wh = (w, h)
        elif (w, h) != self._wh:
            raise ValueError(f"frame {self.frames} is {w}x{h}, the video is {self._wh}")
        self._writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> VideoOut:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
