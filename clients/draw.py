"""Skeleton overlay and HUD drawing shared by the clients (OpenCV)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from clients.api import FrameResult
from okpose.core.skeleton import COCO_LIMBS


def track_color(track_id: int | None) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per track id (golden-ratio hue walk)."""
    if track_id is None:
        return (0, 220, 255)
    hue = int((track_id * 0.618033988749895 % 1.0) * 179)
    hsv = np.uint8([[[hue, 220, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def draw_result(
    image: np.ndarray, result: FrameResult, limbs: Sequence[tuple[int, int]] = COCO_LIMBS, kp_threshold: float = 0.2
) -> np.ndarray:
    """Draw boxes, skeletons and track ids in place; returns the image."""
    thick = max(2, round(max(image.shape[:2]) / 400))
    for p in result.persons:
        color = track_color(p.track_id)
        x1, y1, x2, y2 = (int(round(v)) for v in p.box)
        cv2.rectangle(image, (x1, y1), (x2, y2), color, 1)
        kps = p.keypoints
        for a, b in limbs:
            if kps[a][2] > kp_threshold and kps[b][2] > kp_threshold:
                cv2.line(
                    image, (int(kps[a][0]), int(kps[a][1])), (int(kps[b][0]), int(kps[b][1])), color, thick, cv2.LINE_AA
                )
        for x, y, s in kps:
            if s > kp_threshold:
                cv2.circle(image, (int(x), int(y)), thick + 1, (255, 255, 255), -1, cv2.LINE_AA)
        label = f"#{p.track_id}" if p.track_id is not None else f"{p.score:.2f}"
        cv2.putText(
            image, label, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thick / 2, color, thick, cv2.LINE_AA
        )
    return image


def draw_hud(image: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """Semi-transparent text box in the top-left corner."""
    if not lines:
        return image
    h = 18 * len(lines) + 8
    w = 8 + 9 * max(len(s) for s in lines)
    roi = image[:h, :w]
    roi[:] = (roi * 0.4).astype(image.dtype)
    for i, s in enumerate(lines):
        cv2.putText(image, s, (6, 18 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return image
