"""The clients' overlays: ``okpose.draw`` applied to a wire answer (``clients.api.FrameResult``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clients.api import FrameResult
from okpose.core.skeleton import COCO_LIMBS
from okpose.draw import draw_hud, draw_persons, track_color

__all__ = ["draw_hud", "draw_result", "track_color"]


def draw_result(
    image: np.ndarray, result: FrameResult, limbs: Sequence[tuple[int, int]] = COCO_LIMBS, kp_threshold: float = 0.2
) -> np.ndarray:
    """Draw boxes, skeletons and track ids in place; returns the image."""
    persons = result.persons
    return draw_persons(
        image,
        [p.box for p in persons],
        [p.keypoints for p in persons],
        [p.score for p in persons],
        [p.track_id for p in persons],
        limbs,
        kp_threshold,
    )
