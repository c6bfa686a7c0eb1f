"""Association scores between open tracks and this frame's poses, and the assignment.

Every term is in [0, 1] and the score is their weighted mean over the terms available for a pair
(PoseFlow weighs box IoU and keypoint-box IoU 2:2 and its two ORB terms 1:1; here the ORB terms are
replaced by one appearance term, ``okpose.track.appearance``), so a threshold means the same with or
without a cue. A pair farther apart than the track's motion gate scores 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from okpose.core.oks import box_iou

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Weights:
    box: float = 2.0
    pose: float = 2.0
    appearance: float = 1.0


def keypoint_similarity(
    tracks_kps: F64, poses_kps: F64, radius: F64, top_n: int, thr: float, paired: bool = False
) -> F64:
    """PoseFlow pose similarity for every (track, pose) pair: mean IoU of ±r boxes around
    corresponding keypoints, over the ``top_n`` most similar keypoints **among those confident in
    both** poses; NaN for pairs sharing fewer than 3 (the term is then left out, not counted as 0).

    tracks_kps (T, K, 3), poses_kps (P, K, 3), radius (T,) in pixels -> (T, P); ``paired``: the i-th
    track against the i-th pose only (equal lengths) -> (T,).
    """
    if paired:
        a, b, side = tracks_kps, poses_kps, (2.0 * radius)[:, None]
    else:
        a, b, side = tracks_kps[:, None], poses_kps[None, :], (2.0 * radius)[:, None, None]
    d = np.abs(a[..., :2] - b[..., :2])  # (..., K, 2)
    inter = np.maximum(side - d[..., 0], 0.0) * np.maximum(side - d[..., 1], 0.0)
    iou = inter / (2 * side * side - inter)
    both = (a[..., 2] > thr) & (b[..., 2] > thr)
    n_both = both.sum(axis=-1)
    n = np.minimum(top_n, np.maximum(n_both, 1))
    # the top_n largest, invalid keypoints (-1) last: their -1s among the top_n are added back
    top = np.sort(np.where(both, iou, -1.0), axis=-1)[..., : -top_n - 1 : -1].sum(axis=-1)
    mean = (top + (top_n - n)) / n
    return np.asarray(np.where(n_both >= 3, mean, np.nan), dtype=np.float64)


@dataclass(frozen=True)
class Terms:
    """The appearance-free terms of every (track, pose) pair, computed once per matching stage."""

    box: F64  # (T, P) box IoU
    pose: F64  # (T, P) keypoint similarity, NaN where unavailable
    far: npt.NDArray[np.bool_]  # (T, P) beyond the track's gate


def association_terms(
    track_boxes: F64, track_kps: F64, boxes: F64, kps: F64, kp_radius: F64, gate: F64, top_n: int, thr: float
) -> Terms:
    """Box IoU, keypoint similarity (``kp_radius`` (T,) px) and the gate (T,) px between the predicted
    and the observed box centres. The keypoint term is computed only for pairs inside the gate (the
    others score 0 whatever it says): with people spread over a frame most pairs are far apart."""
    ct = (track_boxes[:, None, :2] + track_boxes[:, None, 2:]) / 2
    cp = (boxes[None, :, :2] + boxes[None, :, 2:]) / 2
    d = ct - cp
    far = np.hypot(d[..., 0], d[..., 1]) > gate[:, None]
    pose = np.full(far.shape, np.nan)
    ti, pi = np.nonzero(~far)
    if len(ti):
        pose[ti, pi] = keypoint_similarity(track_kps[ti], kps[pi], kp_radius[ti], top_n, thr, paired=True)
    return Terms(box_iou(track_boxes, boxes), pose, far)


def combine(terms: Terms, appearance: F64 | None = None, weights: Weights = Weights()) -> F64:
    """(T, P) scores in [0, 1]: the weighted mean of the terms available for each pair (appearance
    (T, P), NaN = unavailable); 0 beyond the gate."""
    if appearance is None or weights.appearance <= 0:  # the common case, in fewer array operations
        missing = np.isnan(terms.pose)
        mixed = (weights.box * terms.box + weights.pose * np.where(missing, 0.0, terms.pose)) / (
            weights.box + weights.pose
        )
        return np.asarray(np.where(terms.far, 0.0, np.where(missing, terms.box, mixed)), dtype=np.float64)
    parts = [(weights.box, terms.box), (weights.pose, terms.pose), (weights.appearance, appearance)]
    num = np.zeros(terms.box.shape)
    den = np.zeros_like(num)
    for w, t in parts:
        ok = t == t  # not NaN
        num += np.where(ok, w * t, 0.0)
        den += w * ok
    return np.asarray(np.where(terms.far, 0.0, num / np.maximum(den, 1e-9)), dtype=np.float64)


def assign(scores: F64, threshold: float) -> tuple[I64, I64]:
    """Hungarian assignment maximising the total score; pairs scoring at most ``threshold`` are dropped."""
    if scores.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows, cols = linear_sum_assignment(-scores)
    ok = scores[rows, cols] > threshold
    return rows[ok].astype(np.int64), cols[ok].astype(np.int64)


def assign_fresh_first(scores: F64, fresh: npt.NDArray[np.bool_], threshold: float) -> tuple[I64, I64]:
    """``assign`` in two steps, so that a joint optimum cannot trade a track away from the pose it fits:
    first the ``fresh`` tracks (matched on the previous frame) take the poses on which none of the other
    tracks scores higher, then every track left competes for the poses left."""
    if not fresh.any() or fresh.all():
        return assign(scores, threshold)
    above = scores > threshold
    if not (above[fresh].any(axis=0) & above[~fresh].any(axis=0)).any():
        return assign(scores, threshold)  # no pose wanted by a fresh and an older track: nothing to trade
    f_rows, o_rows = np.flatnonzero(fresh), np.flatnonzero(~fresh)
    older_best = scores[o_rows].max(axis=0)
    r1, c1 = assign(np.where(scores[f_rows] >= older_best, scores[f_rows], 0.0), threshold)
    row_free = np.ones(len(scores), bool)
    row_free[f_rows[r1]] = False
    col_free = np.ones(scores.shape[1], bool)
    col_free[c1] = False
    rows_left, cols_left = np.flatnonzero(row_free), np.flatnonzero(col_free)
    r2, c2 = assign(scores[np.ix_(rows_left, cols_left)], threshold)
    return np.concatenate([f_rows[r1], rows_left[r2]]), np.concatenate([c1, cols_left[c2]])
