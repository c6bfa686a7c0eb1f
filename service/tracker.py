"""PoseFlow-style online tracker (Xiu et al., BMVC 2018), one instance per stream.

``update`` in numbered steps: (1) pose-flow NMS removes duplicate poses of one person; (2) every open
track is moved to this frame at constant velocity; (3) association scores mix box IoU and PoseFlow's
keypoint-box similarity (``service.matching``); (4) Hungarian assignment with a floor; (5) matched
tracks update (velocity, optional One-Euro smoothing on the frames' timestamps, ``service.motion``),
unmatched poses open new tracks, tracks unseen for more than ``max_age`` frames end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from posecore.oks import box_iou, pose_nms
from posecore.skeleton import COCO_SIGMAS
from posecore.types import Poses, TrackedPoses
from service.matching import assign, association_scores
from service.motion import cap_speed, keypoint_shift, one_euro_step

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TrackerConfig:
    max_age: int = 30  # L: frames a track stays open without a match (PoseFlow: 100 at its frame rate)
    top_n: int = 7  # n most similar keypoints in the pose similarity
    kp_box_frac: float = 0.1  # keypoint box half-size as a fraction of sqrt(person box area) (PoseFlow: 30 px)
    box_weight: float = 0.5  # score = w * box IoU + (1 - w) * pose similarity
    match_threshold: float = 0.2  # PoseFlow accepts matches scoring above 0.2
    nms_oks: float = 0.7
    velocity_momentum: float = 0.5
    smooth_min_cutoff: float = 1.0  # One-Euro (Hz)
    smooth_beta: float = 0.05
    smooth_d_cutoff: float = 1.0


@dataclass
class Track:
    """One person followed over frames (positions in image pixels)."""

    id: int
    keypoints: F64  # (K, 3) last raw observation
    box: F64  # (4,) last box, the detector's convention
    det_score: float  # detector confidence of the person's latest detection
    last_frame: int
    last_time: float  # seconds (the frame's timestamp)
    velocity: F64 = field(default_factory=lambda: np.zeros(2))  # px / frame
    smooth_x: F64 | None = None  # One-Euro state (K, 2), (K, 2)
    smooth_dx: F64 | None = None

    def predicted(self, frame: int) -> tuple[F64, F64]:
        """Box (4,) and keypoints (K, 3) moved to ``frame`` at constant velocity."""
        shift = self.velocity * (frame - self.last_frame)
        kps = self.keypoints.copy()
        kps[:, :2] += shift
        return self.box + np.tile(shift, 2), kps


class PoseFlowTracker:
    """Online pose tracker with its own ID counter (one per stream; IDs start at 1)."""

    def __init__(self, config: TrackerConfig | None = None, sigmas: tuple[float, ...] = COCO_SIGMAS):
        """sigmas: the keypoint schema's OKS sigmas (pose-flow NMS)."""
        self.cfg, self.sigmas = config or TrackerConfig(), sigmas
        self.reset()

    def reset(self) -> None:
        self.tracks: list[Track] = []
        self._next_id = 1
        self._frame = -1

    def __len__(self) -> int:
        return len(self.tracks)

    def seen_since(self, frame: int) -> list[Track]:
        """Tracks matched at or after ``frame``."""
        return [t for t in self.tracks if t.last_frame >= frame]

    def _predicted(self, frame: int) -> tuple[F64, F64]:
        if not self.tracks:
            return np.zeros((0, 4)), np.zeros((0, 0, 3))
        boxes, kps = zip(*(t.predicted(frame) for t in self.tracks), strict=True)
        return np.stack(boxes), np.stack(kps)

    def update(
        self,
        poses: Poses,
        frame: int | None = None,
        timestamp: float | None = None,
        det_scores: npt.ArrayLike | None = None,
        kp_threshold: float = 0.2,
        smoothing: bool = True,
    ) -> TrackedPoses:
        """Assign track ids to this frame's poses (frame indices and timestamps must increase).

        timestamp: seconds (default: frame / 30); det_scores (N,): the detector confidence behind each
        pose (default 1); kp_threshold: keypoints at or below it are ignored in matching and motion;
        smoothing: return One-Euro smoothed keypoints (raw ones otherwise; raw ones are always kept).
        """
        c = self.cfg
        frame = self._frame + 1 if frame is None else frame
        self._frame = frame
        t_now = frame / 30.0 if timestamp is None else float(timestamp)
        dets = np.ones(len(poses)) if det_scores is None else np.asarray(det_scores, np.float64).reshape(-1)
        # 1. pose-flow NMS: one pose per person (only where boxes overlap: no OKS matrix otherwise)
        if len(poses) > 1:
            iou = box_iou(poses.boxes, poses.boxes)
            np.fill_diagonal(iou, 0.0)
            if iou.max() > 0.3:
                wh = np.maximum(poses.boxes[:, 2:] - poses.boxes[:, :2], 1.0)
                keep = np.sort(pose_nms(poses.keypoints, poses.scores, wh[:, 0] * wh[:, 1], c.nms_oks, self.sigmas))
                poses, dets = poses.subset(keep), dets[keep]
        kps = poses.keypoints.astype(np.float64)
        boxes = poses.boxes.astype(np.float64)
        # 2-3. open tracks moved to this frame, scored against the poses
        pboxes, pkps = self._predicted(frame)
        scores = association_scores(pboxes, pkps, boxes, kps, c.box_weight, c.kp_box_frac, c.top_n, kp_threshold)
        # 4. assignment
        rows, cols = assign(scores, c.match_threshold)
        out_kps = kps.copy()
        ids = np.zeros(len(poses), np.int64)
        # 5a. matched tracks: robust velocity (median keypoint shift, capped), smoothing, new observation
        if len(rows):
            matched = [self.tracks[r] for r in rows]
            prev_kps = np.stack([t.keypoints for t in matched])
            prev_boxes = np.stack([t.box for t in matched])
            steps = np.maximum(frame - np.array([t.last_frame for t in matched]), 1)
            shift = keypoint_shift(prev_kps, kps[cols], kp_threshold)
            centre = ((boxes[cols, :2] + boxes[cols, 2:]) - (prev_boxes[:, :2] + prev_boxes[:, 2:])) / 2
            v = cap_speed(np.where(np.isnan(shift), centre, shift) / steps[:, None], boxes[cols])
            if smoothing:
                prev_x = np.stack([t.smooth_x if t.smooth_x is not None else t.keypoints[:, :2] for t in matched])
                zero = np.zeros_like(prev_x[0])
                prev_dx = np.stack([t.smooth_dx if t.smooth_dx is not None else zero for t in matched])
                dt = np.array([t_now - t.last_time for t in matched])
                x, dx = one_euro_step(
                    kps[cols, :, :2], prev_x, prev_dx, dt, c.smooth_min_cutoff, c.smooth_beta, c.smooth_d_cutoff
                )
                out_kps[cols, :, :2] = x
            m = c.velocity_momentum
            for j, (t, col) in enumerate(zip(matched, cols, strict=True)):
                t.velocity = m * t.velocity + (1 - m) * v[j]
                t.smooth_x, t.smooth_dx = (x[j], dx[j]) if smoothing else (None, None)
                t.keypoints, t.box, t.det_score = kps[col], boxes[col], float(dets[col])
                t.last_frame, t.last_time = frame, t_now
                ids[col] = t.id
        # 5b. unmatched poses open new tracks
        unmatched = np.ones(len(poses), dtype=bool)
        unmatched[cols] = False
        for col in np.flatnonzero(unmatched):
            self.tracks.append(Track(self._next_id, kps[col], boxes[col], float(dets[col]), frame, t_now))
            ids[col] = self._next_id
            self._next_id += 1
        # 5c. tracks unseen for more than max_age frames end
        self.tracks = [t for t in self.tracks if frame - t.last_frame <= c.max_age]
        return TrackedPoses(Poses(out_kps.astype(np.float32), poses.boxes, poses.scores), ids)
