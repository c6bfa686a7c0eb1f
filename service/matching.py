"""Association scores between open tracks and this frame's poses, and the assignment."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from posecore.oks import box_iou

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def keypoint_similarity(tracks_kps: F64, poses_kps: F64, radius: F64, top_n: int, thr: float) -> F64:
    """PoseFlow pose similarity for every (track, pose) pair: mean IoU of ±r boxes around
    corresponding keypoints, over the ``top_n`` most similar keypoints.

    tracks_kps (T, K, 3), poses_kps (P, K, 3), radius (T,) in pixels -> (T, P). Keypoints below
    ``thr`` in either pose score 0.
    """
    side = (2.0 * radius)[:, None, None]
    d = np.abs(tracks_kps[:, None, :, :2] - poses_kps[None, :, :, :2])  # (T, P, K, 2)
    inter = np.maximum(side - d[..., 0], 0.0) * np.maximum(side - d[..., 1], 0.0)
    iou = inter / (2 * side * side - inter)
    both = (tracks_kps[:, None, :, 2] > thr) & (poses_kps[None, :, :, 2] > thr)
    iou = np.where(both, iou, 0.0)
    n = min(top_n, iou.shape[2])
    if n == 0:
        return np.zeros(iou.shape[:2])
    return np.asarray(np.sort(iou, axis=2)[..., -n:].mean(axis=2), dtype=np.float64)


def association_scores(
    track_boxes: F64,
    track_kps: F64,
    boxes: F64,
    kps: F64,
    box_weight: float,
    kp_box_frac: float,
    top_n: int,
    thr: float,
) -> F64:
    """(T, P) in [0, 1]: ``box_weight`` x box IoU + the rest x keypoint similarity, the keypoint boxes'
    half-size a fraction of the track box's sqrt(area) (PoseFlow: a fixed 30 px at its resolution)."""
    if len(track_boxes) == 0 or len(boxes) == 0:
        return np.zeros((len(track_boxes), len(boxes)))
    wh = np.maximum(track_boxes[:, 2:] - track_boxes[:, :2], 1.0)
    radius = kp_box_frac * np.sqrt(wh[:, 0] * wh[:, 1])
    sims = keypoint_similarity(track_kps, kps, radius, top_n, thr)
    return np.asarray(box_weight * box_iou(track_boxes, boxes) + (1 - box_weight) * sims, dtype=np.float64)


def assign(scores: F64, threshold: float) -> tuple[I64, I64]:
    """Hungarian assignment maximising the total score; pairs scoring at most ``threshold`` are dropped."""
    if scores.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows, cols = linear_sum_assignment(-scores)
    ok = scores[rows, cols] > threshold
    return rows[ok].astype(np.int64), cols[ok].astype(np.int64)
