"""PoseFlow-style online tracker (Xiu et al., BMVC 2018), one instance per stream.

Each frame: (1) pose-flow NMS removes duplicate poses of one person; (2) every open track (seen in
the last ``max_age`` frames) is moved to the current frame by a constant-velocity model; (3) the
association score mixes box IoU and PoseFlow's keypoint-box similarity (IoU of small boxes around
each keypoint, averaged over the ``top_n`` most similar keypoints); (4) Hungarian assignment with a
minimum score; (5) matched tracks update (velocity, optional One-Euro smoothing), unmatched poses
open new tracks, tracks unseen for more than ``max_age`` frames end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from posecore.oks import box_iou, pose_nms
from posecore.types import Poses, TrackedPoses

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TrackerConfig:
    max_age: int = 30  # L: frames a track stays open without a match (PoseFlow: 100 at its frame rate)
    top_n: int = 7  # n most similar keypoints in the pose similarity
    kp_box_frac: float = 0.1  # keypoint box half-size as a fraction of sqrt(person box area) (PoseFlow: 30 px)
    box_weight: float = 0.5  # score = w * box IoU + (1 - w) * pose similarity
    match_threshold: float = 0.2  # PoseFlow accepts matches scoring above 0.2
    nms_oks: float = 0.7
    kp_threshold: float = 0.2
    velocity_momentum: float = 0.5
    smoothing: bool = True
    smooth_min_cutoff: float = 1.0  # One-Euro (Hz)
    smooth_beta: float = 0.05
    smooth_d_cutoff: float = 1.0
    fps: float = 30.0  # frame index -> seconds for the One-Euro filter


def one_euro_step(
    x: F64, prev_x: F64, prev_dx: F64, dt: F64, min_cutoff: float, beta: float, d_cutoff: float
) -> tuple[F64, F64]:
    """One step of the One-Euro filter (Casiez et al. 2012), vectorised over tracks.

    x, prev_x, prev_dx: (M, K, 2); dt: (M,) seconds. Returns (filtered x, filtered derivative).
    """
    dt3 = dt[:, None, None]

    def alpha(cutoff: F64 | float) -> F64:
        tau = 1.0 / (2 * math.pi * np.asarray(cutoff, dtype=np.float64))
        return np.asarray(1.0 / (1.0 + tau / dt3), dtype=np.float64)

    dx = prev_dx + alpha(d_cutoff) * ((x - prev_x) / dt3 - prev_dx)
    cutoff = min_cutoff + beta * np.abs(dx)
    return prev_x + alpha(cutoff) * (x - prev_x), dx


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


class PoseFlowTracker:
    """Online pose tracker with its own ID counter (one per stream; IDs start at 1).

    Track state is kept in arrays (one row per open track) so a frame costs a few vectorised
    numpy calls whatever the number of people.
    """

    def __init__(self, config: TrackerConfig | None = None, num_keypoints: int = 17):
        self.cfg = config or TrackerConfig()
        self.k = num_keypoints
        self.reset()

    def reset(self) -> None:
        k = self.k
        self.ids = np.zeros(0, np.int64)
        self.keypoints = np.zeros((0, k, 3))  # last raw observation
        self.boxes = np.zeros((0, 4))
        self.velocity = np.zeros((0, 2))  # px / frame
        self.last_frame = np.zeros(0, np.int64)
        self.smooth_x = np.zeros((0, k, 2))
        self.smooth_dx = np.zeros((0, k, 2))
        self._next_id = 1
        self._frame = -1

    def __len__(self) -> int:
        return len(self.ids)

    def predict(self, frame: int) -> tuple[F64, F64]:
        """Every open track's box (T, 4) and keypoints (T, K, 3) moved to ``frame`` at constant velocity."""
        shift = self.velocity * (frame - self.last_frame)[:, None]
        kps = self.keypoints.copy()
        kps[..., :2] += shift[:, None, :]
        return self.boxes + np.tile(shift, 2), kps

    def score_matrix(self, poses: Poses, frame: int) -> F64:
        """Association scores (tracks, poses) in [0, 1]: box IoU and PoseFlow keypoint similarity."""
        c = self.cfg
        if len(self) == 0 or len(poses) == 0:
            return np.zeros((len(self), len(poses)))
        pboxes, pkps = self.predict(frame)
        ious = box_iou(pboxes, poses.boxes)
        wh = np.maximum(pboxes[:, 2:] - pboxes[:, :2], 1.0)
        area = wh[:, 0] * wh[:, 1]
        radius = c.kp_box_frac * np.sqrt(area)
        sims = keypoint_similarity(pkps, poses.keypoints.astype(np.float64), radius, c.top_n, c.kp_threshold)
        return np.asarray(c.box_weight * ious + (1 - c.box_weight) * sims, dtype=np.float64)

    def update(self, poses: Poses, frame: int | None = None) -> TrackedPoses:
        """Assign track ids to this frame's poses (frame indices must increase)."""
        c = self.cfg
        frame = self._frame + 1 if frame is None else frame
        self._frame = frame
        # 1. pose-flow NMS: one pose per person
        if len(poses) > 1:
            # duplicates of one person have overlapping boxes: skip the OKS matrix when none overlap
            iou = box_iou(poses.boxes, poses.boxes)
            np.fill_diagonal(iou, 0.0)
            if iou.max() > 0.3:
                wh = np.maximum(poses.boxes[:, 2:] - poses.boxes[:, :2], 1.0)
                areas = wh[:, 0] * wh[:, 1]
                poses = poses.subset(np.sort(pose_nms(poses.keypoints, poses.scores, areas, c.nms_oks)))
        kps = poses.keypoints.astype(np.float64)
        boxes = poses.boxes.astype(np.float64)
        # 2-4. score open tracks (moved to this frame) against poses; Hungarian with a floor
        scores = self.score_matrix(poses, frame)
        rows = cols = np.zeros(0, np.int64)
        if scores.size:
            rows, cols = linear_sum_assignment(-scores)
            ok = scores[rows, cols] > c.match_threshold
            rows, cols = rows[ok], cols[ok]
        out_kps = kps.copy()
        ids = np.zeros(len(poses), np.int64)
        if len(rows):
            # 5a. matched tracks: robust velocity (median keypoint shift, capped), smoothing
            steps = np.maximum(frame - self.last_frame[rows], 1)
            shift = keypoint_shift(self.keypoints[rows], kps[cols], c.kp_threshold)
            centre = ((boxes[cols, :2] + boxes[cols, 2:]) - (self.boxes[rows, :2] + self.boxes[rows, 2:])) / 2
            shift = np.where(np.isnan(shift), centre, shift)
            v = shift / steps[:, None]
            # a body moves at most ~1/4 of its size per frame: larger jumps are label or detector noise
            bwh = np.maximum(boxes[cols, 2:] - boxes[cols, :2], 1.0)
            size = np.sqrt(bwh[:, 0] * bwh[:, 1])
            v *= np.minimum(1.0, 0.25 * size / np.maximum(np.linalg.norm(v, axis=1), 1e-9))[:, None]
            m = c.velocity_momentum
            self.velocity[rows] = m * self.velocity[rows] + (1 - m) * v
            if c.smoothing:
                x, dx = one_euro_step(kps[cols, :, :2], self.smooth_x[rows], self.smooth_dx[rows], steps / c.fps,
                                      c.smooth_min_cutoff, c.smooth_beta, c.smooth_d_cutoff)  # fmt: skip
                self.smooth_x[rows], self.smooth_dx[rows] = x, dx
                out_kps[cols, :, :2] = x
            self.keypoints[rows], self.boxes[rows], self.last_frame[rows] = kps[cols], boxes[cols], frame
            ids[cols] = self.ids[rows]
        # 5b. unmatched poses open new tracks
        unmatched = np.ones(len(poses), dtype=bool)
        unmatched[cols] = False
        new = np.flatnonzero(unmatched)
        if len(new):
            new_ids = np.arange(self._next_id, self._next_id + len(new), dtype=np.int64)
            self._next_id += len(new)
            ids[new] = new_ids
            self.ids = np.concatenate([self.ids, new_ids])
            self.keypoints = np.concatenate([self.keypoints, kps[new]])
            self.boxes = np.concatenate([self.boxes, boxes[new]])
            self.velocity = np.concatenate([self.velocity, np.zeros((len(new), 2))])
            self.last_frame = np.concatenate([self.last_frame, np.full(len(new), frame, np.int64)])
            self.smooth_x = np.concatenate([self.smooth_x, kps[new, :, :2]])
            self.smooth_dx = np.concatenate([self.smooth_dx, np.zeros((len(new), self.k, 2))])
        # 5c. tracks unseen for more than max_age frames end
        alive = frame - self.last_frame <= c.max_age
        if not alive.all():
            for name in ("ids", "keypoints", "boxes", "velocity", "last_frame", "smooth_x", "smooth_dx"):
                setattr(self, name, getattr(self, name)[alive])
        return TrackedPoses(Poses(out_kps.astype(np.float32), poses.boxes, poses.scores), ids)

    def recent(self, frame: int, max_missed: int = 1) -> tuple[npt.NDArray[np.int64], F64, F64]:
        """Ids, boxes and keypoints (moved to ``frame``) of tracks seen within ``max_missed`` frames."""
        sel = frame - self.last_frame <= max_missed
        boxes, kps = self.predict(frame)
        return self.ids[sel], boxes[sel], kps[sel]
