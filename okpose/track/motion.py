"""Motion of one tracked person: robust keypoint shift, constant-velocity prediction, box following,
One-Euro smoothing of the returned keypoints (Casiez et al. 2012) on real time steps."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


def keypoint_shift(prev: F64, cur: F64, thr: float) -> F64:
    """Median displacement (M, 2) of keypoints confident in both poses (NaN rows: fewer than 3).

    prev, cur: (M, K, 3). Robust to box glitches (a limb leaving the frame moves the box, not the body).
    """
    both = (prev[..., 2] > thr) & (cur[..., 2] > thr)
    d = np.where(both[..., None], cur[..., :2] - prev[..., :2], np.inf)  # invalid entries sort last
    n = both.sum(axis=1)  # (M,)
    d.sort(axis=1)
    rows = np.arange(len(d))
    med = 0.5 * (d[rows, np.maximum((n - 1) // 2, 0)] + d[rows, np.maximum(n // 2, 0)])  # (M, 2)
    return np.asarray(np.where((n >= 3)[:, None], med, np.nan), dtype=np.float64)


def follow_box(box: F64, prev_kps: F64, kps: F64, thr: float) -> F64:
    """Move a person box (4,) with its pose: the translation and scale that take the keypoints
    confident in both poses from ``prev_kps`` to ``kps`` (K, 3) (median shift, ratio of spreads).

    Keeps the box in the convention it came in (a detector box stays a detector-style box on
    frames where the detector does not run); with fewer than 3 shared keypoints the box is kept.
    """
    both = (prev_kps[:, 2] > thr) & (kps[:, 2] > thr)
    if both.sum() < 3:
        return box.copy()
    a, b = prev_kps[both, :2], kps[both, :2]
    ca, cb = np.median(a, axis=0), np.median(b, axis=0)
    sa = np.median(np.linalg.norm(a - ca, axis=1))
    sb = np.median(np.linalg.norm(b - cb, axis=1))
    scale = float(np.clip(sb / sa, 0.9, 1.1)) if sa > 1e-6 else 1.0
    centre, half = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) / 2
    centre = cb + (centre - ca) * scale
    return np.concatenate([centre - half * scale, centre + half * scale])


def cap_speed(v: F64, boxes: F64, frac: float) -> F64:
    """A body moves at most ``frac`` of its size per unit of ``v``'s time: larger jumps are label or
    detector noise."""
    wh = np.maximum(boxes[:, 2:] - boxes[:, :2], 1.0)
    size = np.sqrt(wh[:, 0] * wh[:, 1])
    return np.asarray(v * np.minimum(1.0, frac * size / np.maximum(np.linalg.norm(v, axis=1), 1e-9))[:, None])


def one_euro_step(
    x: F64, prev_x: F64, prev_dx: F64, dt: F64, min_cutoff: float, beta: float, d_cutoff: float
) -> tuple[F64, F64]:
    """One step of the One-Euro filter, vectorised over tracks.

    x, prev_x, prev_dx: (M, K, 2); dt: (M,) seconds since each track's previous observation.
    Returns (filtered x, filtered derivative).
    """
    dt3 = np.maximum(dt, 1e-3)[:, None, None]

    def alpha(cutoff: F64 | float) -> F64:
        tau = 1.0 / (2 * math.pi * np.asarray(cutoff, dtype=np.float64))
        return np.asarray(1.0 / (1.0 + tau / dt3), dtype=np.float64)

    dx = prev_dx + alpha(d_cutoff) * ((x - prev_x) / dt3 - prev_dx)
    cutoff = min_cutoff + beta * np.abs(dx)
    return prev_x + alpha(cutoff) * (x - prev_x), dx
