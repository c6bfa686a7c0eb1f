"""Skeleton, box and track-id overlays (OpenCV), for ``okpose.Result`` and the clients' wire answers.

okpose.draw.draw(frame, result)        # in place; returns the frame
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np
import numpy.typing as npt

from okpose.core.skeleton import COCO_LIMBS, skeleton_for

if TYPE_CHECKING:
    from okpose.pipeline import Result


def track_color(track_id: int | None) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per track id (golden-ratio hue walk); one colour for untracked persons."""
    if track_id is None:
        return (0, 220, 255)
    hue = int((track_id * 0.618033988749895 % 1.0) * 179)
    hsv = np.array([[[hue, 220, 255]]], np.uint8)
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def draw_persons(
    image: npt.NDArray[np.uint8],
    boxes: npt.ArrayLike,
    keypoints: npt.ArrayLike,
    scores: npt.ArrayLike,
    track_ids: Sequence[int | None] | None = None,
    limbs: Sequence[tuple[int, int]] = COCO_LIMBS,
    kp_threshold: float = 0.2,
) -> npt.NDArray[np.uint8]:
    """Boxes (N, 4), keypoints (N, K, 3) with scores, skeletons and labels (track id, else score), in place."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if not len(boxes):
        return image
    kps = np.asarray(keypoints, np.float64).reshape(len(boxes), -1, 3)
    scores = np.asarray(scores, np.float64).reshape(-1)
    thick = max(2, round(max(image.shape[:2]) / 400))
    for i, box in enumerate(boxes):
        tid = None if track_ids is None else track_ids[i]
        color = track_color(tid)
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(image, (x1, y1), (x2, y2), color, 1)
        k = kps[i]
        for a, b in limbs:
            if k[a, 2] > kp_threshold and k[b, 2] > kp_threshold:
                pa, pb = (int(k[a, 0]), int(k[a, 1])), (int(k[b, 0]), int(k[b, 1]))
                cv2.line(image, pa, pb, color, thick, cv2.LINE_AA)
        for x, y, s in k:
            if s > kp_threshold:
                cv2.circle(image, (int(x), int(y)), thick + 1, (255, 255, 255), -1, cv2.LINE_AA)
        label = f"#{tid}" if tid is not None else f"{scores[i]:.2f}"
        cv2.putText(image, label, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.25 * thick, color, thick,
                    cv2.LINE_AA)  # fmt: skip
    return image


def draw(image: npt.NDArray[np.uint8], result: Result) -> npt.NDArray[np.uint8]:
    """One ``okpose.Result`` drawn in place (its own skeleton's limbs and keypoint threshold)."""
    try:
        limbs: Sequence[tuple[int, int]] = skeleton_for(result.keypoint_names).limbs
    except ValueError:
        limbs = ()
    ids = None if result.track_ids is None else [int(t) for t in result.track_ids]
    return draw_persons(image, result.boxes, result.keypoints, result.scores, ids, limbs, result.keypoint_threshold)


def draw_hud(image: npt.NDArray[np.uint8], lines: Sequence[str]) -> npt.NDArray[np.uint8]:
    """Semi-transparent text box in the top-left corner, in place."""
    if not lines:
        return image
    h = 18 * len(lines) + 8
    w = 8 + 9 * max(len(s) for s in lines)
    roi = image[:h, :w]
    roi[:] = (roi * 0.4).astype(image.dtype)
    for i, s in enumerate(lines):
        cv2.putText(image, s, (6, 18 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return image
