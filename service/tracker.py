"""PoseFlow-style online tracker (Xiu et al., BMVC 2018), one instance per stream; time in seconds
from the frames' timestamps.

``update`` in numbered steps:
1. pose NMS within the frame (OKS, greedy): one pose per person. (PoseFlow's PF-NMS merges whole pose
   flows over a window; this tracker is online and answers each frame at once, so it does not.)
2. every open track is moved to this frame's time: constant velocity (px/s) that decays with time
   unseen (``velocity_tau_s``), so a person who stopped while hidden and one who walked on are both
   within reach; the uncertainty (gate and keypoint-box size) grows with the time unseen;
3. recently seen tracks are matched first (box IoU, keypoint similarity over keypoints visible in both,
   appearance; Hungarian with a floor: ``service.matching``);
4. tracks lost for longer get a second chance on the poses left (re-identification: the same terms,
   appearance weighted up, a wider gate): ByteTrack's two-stage idea applied to track age;
5. matched tracks update (robust velocity, optional One-Euro smoothing), unmatched poses open tracks,
   tracks unseen for more than ``max_age_s`` end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from posecore.oks import box_iou, pose_nms
from posecore.skeleton import COCO17
from posecore.types import Poses, TrackedPoses
from service.appearance import BINS, similarity, torso_histograms
from service.matching import Weights, assign, association_scores
from service.motion import cap_speed, keypoint_shift, one_euro_step

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TrackerConfig:
    max_age_s: float = 3.3  # link window (PoseFlow: 100 frames at 30 fps)
    recent_s: float = 0.12  # tracks seen this recently are matched first
    top_n: int = 7  # n most similar keypoints in the pose similarity
    kp_box_frac: float = 0.1  # keypoint box half-size / sqrt(person box area) (PoseFlow: 30 px at its scale)
    weights: Weights = Weights()
    lost_weights: Weights = Weights(box=1.0, pose=2.0, appearance=2.0)  # re-identification stage
    match_threshold: float = 0.3  # on the weighted-mean score in [0, 1]
    gate_base: float = 0.6  # gate = sqrt(area) * (gate_base + gate_growth * seconds unseen)
    gate_growth: float = 1.5
    motion: bool = True  # constant-velocity prediction with decay and growing uncertainty (off: boxes stay put)
    velocity_tau_s: float = 0.4  # velocity decays with this time constant while unseen
    velocity_momentum: float = 0.5
    max_speed: float = 8.0  # body sizes per second (faster jumps are detector noise)
    nms_oks: float = 0.7
    appearance: bool = True
    appearance_every: int = 8  # frames between refreshes of a track's appearance model when not needed
    ambiguity_margin: float = 0.15  # a pose within this of the threshold for two tracks is ambiguous
    smooth_min_cutoff: float = 1.0  # One-Euro (Hz)
    smooth_beta: float = 0.05
    smooth_d_cutoff: float = 1.0


@dataclass
class Track:
    """One person followed over frames (positions in image pixels, times in seconds)."""

    id: int
    keypoints: F64  # (K, 3) last raw observation
    box: F64  # (4,) last box, the detector's convention
    det_score: float  # detector confidence of the person's latest detection
    last_frame: int
    last_time: float
    velocity: F64 = field(default_factory=lambda: np.zeros(2))  # px / s
    appearance: npt.NDArray[np.float32] | None = None  # torso histogram (running mean)
    smooth_x: F64 | None = None  # One-Euro state (K, 2), (K, 2)
    smooth_dx: F64 | None = None


class LazyHistograms:
    """Torso histograms of this frame's poses, computed only for the poses that need one."""

    def __init__(
        self, image: npt.NDArray[np.uint8], kps: F64, torso: tuple[int, ...], thr: float, scale_xy: tuple[float, float]
    ):
        self.image, self.kps, self.torso, self.thr, self.scale_xy = image, kps, torso, thr, scale_xy
        self.h = np.zeros((len(kps), BINS[0] * BINS[1]), np.float32)
        self.done = np.zeros(len(kps), bool)

    def get(self, idx: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        todo = idx[~self.done[idx]]
        if len(todo):
            self.h[todo] = torso_histograms(self.image, self.kps[todo], self.torso, self.thr, self.scale_xy)
            self.done[todo] = True
        return self.h[idx]


class PoseFlowTracker:
    """Online pose tracker with its own ID counter (one per stream; IDs start at 1)."""

    def __init__(
        self,
        config: TrackerConfig | None = None,
        sigmas: tuple[float, ...] = COCO17.sigmas,
        torso: tuple[int, ...] = COCO17.torso,
    ):
        """sigmas: the keypoint schema's OKS sigmas (pose NMS); torso: its torso keypoints (appearance)."""
        self.cfg, self.sigmas, self.torso = config or TrackerConfig(), sigmas, torso
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

    def predict(self, tracks: list[Track], t_now: float) -> tuple[F64, F64, F64, F64, F64]:
        """Every track moved to ``t_now`` at once: constant velocity decaying while unseen (none with
        ``motion`` off). Returns boxes (T, 4), keypoints (T, K, 3), velocities (T, 2), seconds unseen (T,)
        and the decayed time (T,) the velocity was applied for. Used for matching and, by the engine,
        for the crops of frames that follow the tracks instead of running the detector."""
        c = self.cfg
        boxes = np.stack([tr.box for tr in tracks])
        kps = np.stack([tr.keypoints for tr in tracks])
        vel = np.stack([tr.velocity for tr in tracks]) if c.motion else np.zeros((len(tracks), 2))
        dt = np.maximum(t_now - np.array([tr.last_time for tr in tracks]), 0.0)
        decayed = c.velocity_tau_s * (1.0 - np.exp(-dt / c.velocity_tau_s))
        shift = vel * decayed[:, None]
        kps[..., :2] += shift[:, None, :]
        return boxes + np.concatenate([shift, shift], axis=1), kps, vel, dt, decayed

    def _stage(
        self,
        tracks: list[Track],
        t_now: float,
        boxes: F64,
        kps: F64,
        hists: LazyHistograms | None,
        cols_free: npt.NDArray[np.int64],
        thr: float,
        w: Weights,
        reidentify: bool,
    ) -> list[tuple[Track, int]]:
        """Score ``tracks`` against the free poses; returns matched (track, pose index) pairs.

        The appearance term is computed where it can change the outcome: for every pose when
        re-identifying lost tracks, otherwise only for poses in an ambiguous neighbourhood (a pose that
        two tracks could take, or a track with two candidate poses)."""
        c = self.cfg
        if not tracks or not len(cols_free):
            return []
        pboxes, pkps, vel, dt, decayed = self.predict(tracks, t_now)
        wh = np.maximum(pboxes[:, 2:] - pboxes[:, :2], 1.0)
        size = np.sqrt(wh[:, 0] * wh[:, 1])
        speed = np.linalg.norm(vel, axis=1)
        # a hidden person may have stopped (at 0) or walked on (at v * dt): the prediction sits in
        # between, and the keypoint boxes and the gate widen to reach both ends
        ambiguity = speed * np.maximum(decayed, dt - decayed)
        kp_radius = c.kp_box_frac * size + ambiguity
        gate = size * (c.gate_base + c.gate_growth * dt) + ambiguity
        args = (pboxes, pkps, boxes[cols_free], kps[cols_free], kp_radius, gate, c.top_n, thr)
        scores = association_scores(*args, None, w)
        if hists is not None:
            near = scores > c.match_threshold - c.ambiguity_margin
            need = np.ones(len(cols_free), bool) if reidentify else (near.sum(0) >= 2) | near[near.sum(1) >= 2].any(0)
            if need.any():
                th = np.stack([tr.appearance if tr.appearance is not None else np.zeros(hists.h.shape[1], np.float32)
                               for tr in tracks])  # fmt: skip
                app = np.full(scores.shape, np.nan)
                app[:, need] = similarity(th, hists.get(cols_free[need]))
                scores = association_scores(*args, app, w)
        rows, cols = assign(scores, c.match_threshold)
        return [(tracks[r], int(cols_free[col])) for r, col in zip(rows, cols, strict=True)]

    def update(
        self,
        poses: Poses,
        frame: int | None = None,
        timestamp: float | None = None,
        det_scores: npt.ArrayLike | None = None,
        kp_threshold: float = 0.2,
        smoothing: bool = True,
        image: npt.NDArray[np.uint8] | None = None,
        image_scale_xy: tuple[float, float] = (1.0, 1.0),
    ) -> TrackedPoses:
        """Assign track ids to this frame's poses (frame indices and timestamps must increase).

        timestamp: seconds (default: frame / 30); det_scores (N,): the detector confidence behind each
        pose (default 1); kp_threshold: keypoints at or below it are ignored in matching and motion;
        smoothing: return One-Euro smoothed keypoints (raw ones are kept either way); image (optional,
        with the image-to-pixels scale of a reduced decode): enables the appearance cue.
        """
        c = self.cfg
        frame = self._frame + 1 if frame is None else frame
        self._frame = frame
        t_now = frame / 30.0 if timestamp is None else float(timestamp)
        dets = np.ones(len(poses)) if det_scores is None else np.asarray(det_scores, np.float64).reshape(-1)
        # 1. pose NMS within the frame (only where boxes overlap: no OKS matrix otherwise)
        if len(poses) > 1:
            iou = box_iou(poses.boxes, poses.boxes)
            np.fill_diagonal(iou, 0.0)
            if iou.max() > 0.3:
                wh = np.maximum(poses.boxes[:, 2:] - poses.boxes[:, :2], 1.0)
                keep = np.sort(pose_nms(poses.keypoints, poses.scores, wh[:, 0] * wh[:, 1], c.nms_oks, self.sigmas))
                poses, dets = poses.subset(keep), dets[keep]
        kps = poses.keypoints.astype(np.float64)
        boxes = poses.boxes.astype(np.float64)
        hists = None
        if c.appearance and image is not None and len(poses):
            hists = LazyHistograms(image, kps, self.torso, kp_threshold, image_scale_xy)
        # 2-3. recently seen tracks first
        free = np.arange(len(poses))
        recent = [t for t in self.tracks if t_now - t.last_time <= c.recent_s]
        pairs = self._stage(recent, t_now, boxes, kps, hists, free, kp_threshold, c.weights, reidentify=False)
        # 4. then the lost ones, on the poses left
        taken = {p for _, p in pairs}
        free = np.array([i for i in range(len(poses)) if i not in taken], np.int64)
        lost = [t for t in self.tracks if t_now - t.last_time > c.recent_s]
        pairs += self._stage(lost, t_now, boxes, kps, hists, free, kp_threshold, c.lost_weights, reidentify=True)
        # 5a. matched tracks: robust velocity (median keypoint shift, capped), smoothing, new observation
        out_kps = kps.copy()
        ids = np.zeros(len(poses), np.int64)
        if pairs:
            matched = [tr for tr, _ in pairs]
            cols = np.array([p for _, p in pairs], np.int64)
            prev_kps = np.stack([t.keypoints for t in matched])
            prev_boxes = np.stack([t.box for t in matched])
            dt = np.maximum(np.array([t_now - t.last_time for t in matched]), 1e-3)
            shift = keypoint_shift(prev_kps, kps[cols], kp_threshold)
            centre = ((boxes[cols, :2] + boxes[cols, 2:]) - (prev_boxes[:, :2] + prev_boxes[:, 2:])) / 2
            v = cap_speed(np.where(np.isnan(shift), centre, shift) / dt[:, None], boxes[cols], c.max_speed)
            if smoothing:
                prev_x = np.stack([t.smooth_x if t.smooth_x is not None else t.keypoints[:, :2] for t in matched])
                zero = np.zeros_like(prev_x[0])
                prev_dx = np.stack([t.smooth_dx if t.smooth_dx is not None else zero for t in matched])
                x, dx = one_euro_step(kps[cols, :, :2], prev_x, prev_dx, dt,
                                      c.smooth_min_cutoff, c.smooth_beta, c.smooth_d_cutoff)  # fmt: skip
                out_kps[cols, :, :2] = x
            m = c.velocity_momentum
            for j, (t, col) in enumerate(pairs):
                t.velocity = m * t.velocity + (1 - m) * v[j]
                t.smooth_x, t.smooth_dx = (x[j], dx[j]) if smoothing else (None, None)
                t.keypoints, t.box, t.det_score = kps[col], boxes[col], float(dets[col])
                # the appearance model: refreshed when this frame's histogram was needed anyway, and every
                # ``appearance_every`` frames otherwise (staggered over tracks)
                if hists is not None and (hists.done[col] or (frame + t.id) % c.appearance_every == 0):
                    h = hists.get(np.array([col]))[0]
                    if h.any():
                        t.appearance = h if t.appearance is None else 0.8 * t.appearance + 0.2 * h
                t.last_frame, t.last_time = frame, t_now
                ids[col] = t.id
        # 5b. unmatched poses open new tracks
        for col in (int(i) for i in np.flatnonzero(ids == 0)):
            h = hists.get(np.array([col]))[0] if hists is not None else None
            app = h if h is not None and h.any() else None
            self.tracks.append(Track(self._next_id, kps[col], boxes[col], float(dets[col]), frame, t_now,
                                     appearance=app))  # fmt: skip
            ids[col] = self._next_id
            self._next_id += 1
        # 5c. tracks unseen for longer than the link window end
        self.tracks = [t for t in self.tracks if t_now - t.last_time <= c.max_age_s]
        return TrackedPoses(Poses(out_kps.astype(np.float32), poses.boxes, poses.scores), ids)
