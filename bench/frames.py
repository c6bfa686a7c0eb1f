"""Real frames for benchmarks: the multi-person clips, resized, with their GT boxes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from okpose.sources import open_source

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "realpose-lab"
CLIPS = ("pose2sim_multi_cam01", "pose2sim_multi_cam02", "pose2sim_multi_cam03")


@dataclass(frozen=True)
class Frame:
    clip: str
    index: int
    image: np.ndarray  # BGR, resized
    jpeg: bytes
    gt_boxes: np.ndarray  # (G, 4) xyxy in resized pixels (non-ignored persons)


def load_frames(per_clip: int, long_side: int = 640, clips: tuple[str, ...] = CLIPS, root: Path = DATA) -> list[Frame]:
    out: list[Frame] = []
    for clip in clips:
        tracks = json.loads((root / "tracks" / f"{clip}.json").read_text())["frames"]
        for i, img in enumerate(open_source(root / "videos" / f"{clip}.mp4", max_frames=per_clip)):
            h, w = img.shape[:2]
            s = long_side / max(h, w)
            small = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
            boxes = [
                [x * s, y * s, (x + bw) * s, (y + bh) * s]
                for p in tracks[i]["persons"]
                if not p["ignore"]
                for x, y, bw, bh in [p["bbox"]]
            ]
            jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
            out.append(Frame(clip, i, small, jpeg, np.asarray(boxes, np.float32).reshape(-1, 4)))
    return out
