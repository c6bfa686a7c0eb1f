"""Association scores between open tracks and this frame's poses, and the assignment.

Every term is in [0, 1] and the score is their weighted mean over the terms available for a pair
(PoseFlow weighs box IoU and keypoint-box IoU 2:2 and its two ORB terms 1:1; here the ORB terms are
replaced by one appearance term, ``service.appearance``), so a threshold means the same with or
without a cue. A pair farther apart than the track's motion gate scores 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from posecore.oks import box_iou

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Weights:
    box: float = 2.0
    pose: float = 2.0
    appearance: float = 1.0


def keypoint_similarity(tracks_kps: F64, poses_kps: F64, radius: F64, top_n: int, thr: float) -> F64:
    """PoseFlow pose similarity for every (track, pose) pair: mean IoU of ±r boxes around
    corresponding keypoints, over the ``top_n`` most similar keypoints **among those confident in
    both** poses; NaN for pairs sharing fewer than 3 (the term is then left out, not counted as 0).

    tracks_kps (T, K, 3), poses_kps (P, K, 3), radius (T,) in pixels -> (T, P).
    """
    side = (2.0 * radius)[:, None, None]
    d = np.abs(tracks_kps[:, None, :, :2] - poses_kps[None, :, :, :2])  # (T, P, K, 2)
    inter = np.maximum(side - d[..., 0], 0.0) * np.maximum(side - d[..., 1], 0.0)
    iou = inter / (2 * side * side - inter)
    both = (tracks_kps[:, None, :, 2] > thr) & (poses_kps[None, :, :, 2] > thr)
    n_both = both.sum(axis=2)
    n = np.minimum(top_n, np.maximum(n_both, 1))
    ranked = -np.sort(-np.where(both, iou, -1.0), axis=2)  # best first, invalid last
    take = np.arange(iou.shape[2])[None, None, :] < n[..., None]
    mean = np.where(take, ranked, 0.0).sum(axis=2) / n
    return np.asarray(np.where(n_both >= 3, mean, np.nan), dtype=np.float64)


def association_scores(
    track_boxes: F64,
    track_kps: F64,
    boxes: F64,
    kps: F64,
    kp_radius: F64,
    gate: F64,
    top_n: int,
    thr: float,
    appearance: F64 | None = None,
    weights: Weights = Weights(),
) -> F64:
    """(T, P) scores in [0, 1]: the weighted mean of box IoU, keypoint similarity (``kp_radius`` (T,)
    px) and appearance similarity (T, P, NaN = unavailable); 0 beyond ``gate`` (T,) px between the
    predicted and the observed box centres."""
    if len(track_boxes) == 0 or len(boxes) == 0:
        return np.zeros((len(track_boxes), len(boxes)))
    terms = [(weights.box, box_iou(track_boxes, boxes))]
    terms.append((weights.pose, keypoint_similarity(track_kps, kps, kp_radius, top_n, thr)))
    if appearance is not None and weights.appearance > 0:
        terms.append((weights.appearance, appearance))
    num = np.zeros((len(track_boxes), len(boxes)))
    den = np.zeros_like(num)
    for w, t in terms:
        ok = t == t  # not NaN
        num += np.where(ok, w * t, 0.0)
        den += w * ok
    score = num / np.maximum(den, 1e-9)
    ct = (track_boxes[:, None, :2] + track_boxes[:, None, 2:]) / 2
    cp = (boxes[None, :, :2] + boxes[None, :, 2:]) / 2
    far = np.linalg.norm(ct - cp, axis=2) > gate[:, None]
    return np.asarray(np.where(far, 0.0, score), dtype=np.float64)


def assign(scores: F64, threshold: float) -> tuple[I64, I64]:
    """Hungarian assignment maximising the total score; pairs scoring at most ``threshold`` are dropped."""
    if scores.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows, cols = linear_sum_assignment(-scores)
    ok = scores[rows, cols] > threshold
    return rows[ok].astype(np.int64), cols[ok].astype(np.int64)
