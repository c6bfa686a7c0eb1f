"""PoseFlow-style online tracker (Xiu et al., BMVC 2018), one instance per stream; time in seconds
from the frames' timestamps.

``update`` in numbered steps:
1. pose NMS within the frame (OKS, greedy): one pose per person;
2. every open track is moved to this frame's time: constant velocity (px/s) that decays with time
   unseen (``velocity_tau_s``), so a person who stopped while hidden and one who walked on are both
   within reach; the uncertainty (gate and keypoint-box size) grows with the time unseen;
3. recently seen tracks are matched (box IoU, keypoint similarity over keypoints visible in both,
   appearance; Hungarian with a floor: ``okpose.track.matching``) fresh first: the tracks matched on the
   previous frame take the poses no other track fits better, then the rest compete jointly for the
   rest, so the joint optimum cannot trade a followed person's pose to a stale track that fits it
   worse (``assign_fresh_first``);
4. tracks lost for longer get a second chance on the poses left (re-identification: the same terms,
   appearance weighted up, a wider gate): ByteTrack's two-stage idea applied to track age;
5. poses left over: a pose that repeats a person matched on this frame (OKS over the keypoints
   confident in both >= ``birth_nms_oks``) is a duplicate and is dropped; so is a pose cropped for a
   track on a skip frame (``origins``) that no track took (the crop drifted onto someone else: the
   engine runs the detector on the next frame); the others open tracks;
6. pose-flow NMS over time: two tracks whose poses overlap (OKS >= ``flow_nms_oks``) on
   ``flow_nms_frames`` consecutive frames are one person's two flows, and the younger one is merged
   into the older (it ends, and its pose is not reported);
7. matched tracks update (robust velocity, optional One-Euro smoothing); tracks unseen for more than
   ``max_age_s`` end.

Every dropped pose is counted in ``dropped`` (duplicates, merged flows, stray skip-frame crops).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from okpose.core.oks import box_iou, pose_nms
from okpose.core.skeleton import COCO17
from okpose.core.types import Poses, TrackedPoses
from okpose.track.appearance import BINS, similarity, torso_histograms
from okpose.track.matching import Weights, assign, assign_fresh_first, association_terms, combine
from okpose.track.motion import cap_speed, keypoint_shift, one_euro_step

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TrackerConfig:
    max_age_s: float = 3.3  # link window (PoseFlow: 100 frames at 30 fps)
    recent_s: float = 0.12  # tracks seen this recently are matched first
    fresh_first: bool = True  # tracks matched on the previous frame keep the poses they fit best (no trades)
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
    birth_nms_oks: float = 0.5  # a leftover pose this close to a matched one is a duplicate, not a new person
    flow_nms_oks: float = 0.5  # two tracks this close on ``flow_nms_frames`` consecutive frames are merged
    flow_nms_frames: int = 3
    appearance: bool = True
    appearance_every: int = (
        15  # frames between refreshes of a track's appearance model when not needed (0.5 s at 30 fps)
    )
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
    overlaps: dict[int, int] = field(default_factory=dict)  # other track id -> consecutive overlapping frames
    detections: int = 1  # detector boxes (origin 0) this track was matched to, its birth included
    last_detected: int = 0  # the last frame a detector box (origin 0) was matched to it (its birth: that frame)

    @property
    def confirmed(self) -> bool:
        """Found by the detector twice: only confirmed tracks are followed on skip frames (a one-off
        detection between two people must not steer crops)."""
        return self.detections >= 2


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
        self.dropped = {"duplicate": 0, "merged": 0, "stray_crop": 0}

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
        boxes = np.array([tr.box for tr in tracks])
        kps = np.array([tr.keypoints for tr in tracks])
        vel = np.array([tr.velocity for tr in tracks]) if c.motion else np.zeros((len(tracks), 2))
        dt = np.maximum(t_now - np.array([tr.last_time for tr in tracks]), 0.0)
        decayed = c.velocity_tau_s * (1.0 - np.exp(-dt / c.velocity_tau_s))
        shift = vel * decayed[:, None]
        kps[..., :2] += shift[:, None, :]
        boxes[:, :2] += shift
        boxes[:, 2:] += shift
        return boxes, kps, vel, dt, decayed

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
        fresh: npt.NDArray[np.bool_] | None = None,
    ) -> list[tuple[Track, int]]:
        """Score ``tracks`` against the free poses; returns matched (track, pose index) pairs.

        The appearance term is computed where it can change the outcome: for every pose when
        re-identifying lost tracks, otherwise only for ambiguous poses (``ambiguous``: a pose two tracks
        could take, or a track with two candidate poses, the runner-up close to the best)."""
        c = self.cfg
        pboxes, pkps, vel, dt, decayed = self.predict(tracks, t_now)
        wh = np.maximum(pboxes[:, 2:] - pboxes[:, :2], 1.0)
        size = np.sqrt(wh[:, 0] * wh[:, 1])
        speed = np.hypot(vel[:, 0], vel[:, 1])
        # a hidden person may have stopped (at 0) or walked on (at v * dt): the prediction sits in
        # between, and the keypoint boxes and the gate widen to reach both ends
        ambiguity = speed * np.maximum(decayed, dt - decayed)
        kp_radius = c.kp_box_frac * size + ambiguity
        gate = size * (c.gate_base + c.gate_growth * dt) + ambiguity
        if len(cols_free) < len(boxes):
            boxes, kps = boxes[cols_free], kps[cols_free]
        terms = association_terms(pboxes, pkps, boxes, kps, kp_radius, gate, c.top_n, thr)
        scores = combine(terms, None, w)
        if hists is not None:
            need = (
                np.ones(len(cols_free), bool)
                if reidentify
                else ambiguous(scores, c.match_threshold, c.ambiguity_margin)
            )
            if need.any():
                th = np.stack([tr.appearance if tr.appearance is not None else np.zeros(hists.h.shape[1], np.float32)
                               for tr in tracks])  # fmt: skip
                app = np.full(scores.shape, np.nan)
                app[:, need] = similarity(th, hists.get(cols_free[need]))
                scores = combine(terms, app, w)
        if fresh is None:
            rows, cols = assign(scores, c.match_threshold)
        else:
            rows, cols = assign_fresh_first(scores, fresh, c.match_threshold)
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
        origins: npt.ArrayLike | None = None,
    ) -> TrackedPoses:
        """Assign track ids to this frame's poses (frame indices and timestamps must increase). The
        answer holds the poses kept, in input order (duplicates and merged flows are left out).

        timestamp: seconds (default: frame / 30); det_scores (N,): the detector confidence behind each
        pose (default 1); kp_threshold: keypoints at or below it are ignored in matching and motion;
        smoothing: return One-Euro smoothed keypoints (raw ones are kept either way); image (optional,
        with the image-to-pixels scale of a reduced decode): enables the appearance cue; origins (N,):
        on a skip frame, the id of the track each pose was cropped for (0: a detector box).
        """
        c = self.cfg
        frame = self._frame + 1 if frame is None else frame
        previous, self._frame = self._frame, frame
        t_now = frame / 30.0 if timestamp is None else float(timestamp)
        dets = np.ones(len(poses)) if det_scores is None else np.asarray(det_scores, np.float64).reshape(-1)
        origin = np.zeros(len(poses), np.int64) if origins is None else np.asarray(origins, np.int64).reshape(-1)
        # 1. pose NMS within the frame (only where boxes overlap: no OKS matrix otherwise)
        iou = box_iou(poses.boxes, poses.boxes) if len(poses) > 1 else np.zeros((len(poses), len(poses)))
        np.fill_diagonal(iou, 0.0)
        if iou.size and iou.max() > 0.3:
            wh = np.maximum(poses.boxes[:, 2:] - poses.boxes[:, :2], 1.0)
            keep = np.sort(pose_nms(poses.keypoints, poses.scores, wh[:, 0] * wh[:, 1], c.nms_oks, self.sigmas))
            self.dropped["duplicate"] += len(poses) - len(keep)
            poses, dets, origin, iou = poses.subset(keep), dets[keep], origin[keep], iou[np.ix_(keep, keep)]
        kps = poses.keypoints.astype(np.float64)
        boxes = poses.boxes.astype(np.float64)
        hists = None
        if c.appearance and image is not None and len(poses):
            hists = LazyHistograms(image, kps, self.torso, kp_threshold, image_scale_xy)
        # 2-4. recent tracks (fresh first), then the lost ones on the poses left
        pairs: list[tuple[Track, int]] = []
        recent = [t for t in self.tracks if t_now - t.last_time <= c.recent_s]
        lost = [t for t in self.tracks if t_now - t.last_time > c.recent_s]
        free = np.arange(len(poses))
        for tracks, w, reid in ((recent, c.weights, False), (lost, c.lost_weights, True)):
            if tracks and len(free):
                fresh = np.array([t.last_frame == previous for t in tracks]) if c.fresh_first and not reid else None
                found = self._stage(tracks, t_now, boxes, kps, hists, free, kp_threshold, w, reid, fresh)
                if found:
                    pairs += found
                    taken = {col for _, col in found}
                    free = np.array([i for i in free.tolist() if i not in taken], np.int64)
        # 5. poses left over: duplicates, skip-frame crops back to their track, new persons
        ids = np.zeros(len(poses), np.int64)
        for t, col in pairs:
            ids[col] = t.id
        overlap = PairOverlap(kps, boxes, iou, self.sigmas, kp_threshold)
        births = self._leftovers(pairs, ids, overlap, origin)
        # 6. pose-flow NMS over time: merge flows that keep overlapping
        merged = self._merge_flows(pairs, overlap)
        pairs = [(t, col) for t, col in pairs if t.id not in merged]
        # 7a. matched tracks: robust velocity (median keypoint shift, capped), smoothing, new observation
        out_kps = kps.copy()
        if pairs:
            matched = [tr for tr, _ in pairs]
            cols = np.array([p for _, p in pairs], np.int64)
            prev_kps = np.array([t.keypoints for t in matched])
            prev_boxes = np.array([t.box for t in matched])
            dt = np.maximum(np.array([t_now - t.last_time for t in matched]), 1e-3)
            shift = keypoint_shift(prev_kps, kps[cols], kp_threshold)
            centre = ((boxes[cols, :2] + boxes[cols, 2:]) - (prev_boxes[:, :2] + prev_boxes[:, 2:])) / 2
            v = cap_speed(np.where(np.isnan(shift), centre, shift) / dt[:, None], boxes[cols], c.max_speed)
            if smoothing:
                prev_x = np.array([t.smooth_x if t.smooth_x is not None else t.keypoints[:, :2] for t in matched])
                zero = np.zeros_like(prev_x[0])
                prev_dx = np.array([t.smooth_dx if t.smooth_dx is not None else zero for t in matched])
                x, dx = one_euro_step(kps[cols, :, :2], prev_x, prev_dx, dt,
                                      c.smooth_min_cutoff, c.smooth_beta, c.smooth_d_cutoff)  # fmt: skip
                out_kps[cols, :, :2] = x
            m = c.velocity_momentum
            velocity = m * np.array([t.velocity for t in matched]) + (1 - m) * v
            refresh: list[tuple[Track, int]] = []
            for j, (t, col) in enumerate(pairs):
                t.velocity = velocity[j]
                t.smooth_x, t.smooth_dx = (x[j], dx[j]) if smoothing else (None, None)
                t.keypoints, t.box, t.det_score = kps[col], boxes[col], float(dets[col])
                t.last_frame, t.last_time = frame, t_now
                if origin[col] == 0:
                    t.detections += 1
                    t.last_detected = frame
                # the appearance model: refreshed when this frame's histogram was needed anyway, and every
                # ``appearance_every`` frames otherwise (staggered over tracks)
                if hists is not None and (hists.done[col] or (frame + t.id) % c.appearance_every == 0):
                    refresh.append((t, col))
            if refresh and hists is not None:
                for (t, _), h in zip(refresh, hists.get(np.array([col for _, col in refresh])), strict=True):
                    if h.any():
                        t.appearance = h if t.appearance is None else 0.8 * t.appearance + 0.2 * h
        # 7b. new persons open tracks
        for col in births:
            h = hists.get(np.array([col]))[0] if hists is not None else None
            app = h if h is not None and h.any() else None
            self.tracks.append(Track(self._next_id, kps[col], boxes[col], float(dets[col]), frame, t_now,
                                     appearance=app, last_detected=frame))  # fmt: skip
            ids[col] = self._next_id
            self._next_id += 1
        # 7c. tracks unseen for longer than the link window end
        self.tracks = [t for t in self.tracks if t_now - t.last_time <= c.max_age_s and t.id not in merged]
        out = Poses(out_kps.astype(np.float32), poses.boxes, poses.scores)
        if ids.all():
            return TrackedPoses(out, ids)
        keep = np.flatnonzero(ids > 0)
        return TrackedPoses(out.subset(keep), ids[keep])

    def _leftovers(
        self,
        pairs: list[tuple[Track, int]],
        ids: npt.NDArray[np.int64],
        overlap: PairOverlap,
        origin: npt.NDArray[np.int64],
    ) -> list[int]:
        """Step 5: the poses no track took; returns those that open new tracks (duplicates of a person
        matched on this frame and skip-frame crops are dropped)."""
        births: list[int] = []
        left = np.flatnonzero(ids == 0)
        if not len(left):
            return births
        matched_cols = np.array([col for _, col in pairs], np.int64)
        # IoU floor 0.1, not 0.3: a partial pose inside a whole person's box has a small IoU with it
        dup = np.asarray(overlap.same_person(matched_cols, left, self.cfg.birth_nms_oks, 0.1).any(axis=0), bool)
        for col, is_dup in zip(left.tolist(), dup.tolist(), strict=True):
            if is_dup:
                self.dropped["duplicate"] += 1
            elif origin[col] == 0:
                births.append(col)
            else:  # a skip-frame crop that no track took (it drifted onto someone else): never a newcomer
                self.dropped["stray_crop"] += 1
        return births

    def _merge_flows(self, pairs: list[tuple[Track, int]], overlap: PairOverlap) -> set[int]:
        """Step 6: ids of the tracks merged away on this frame (the younger of two flows that overlapped
        on ``flow_nms_frames`` consecutive frames). Overlap counts reset when a pair stops overlapping."""
        c = self.cfg
        merged: set[int] = set()
        pairs = sorted(pairs, key=lambda p: p[1])  # by pose index: ``same_person`` skips indexing a full set
        cols = np.array([col for _, col in pairs], np.int64)
        close = overlap.same_person(cols, cols, c.flow_nms_oks, 0.3)
        close &= close.T
        counts: dict[int, dict[int, int]] = {}
        for a in np.flatnonzero(close.any(axis=1)).tolist():
            ta = pairs[a][0]
            row = counts[ta.id] = {}
            for b in np.flatnonzero(close[a]).tolist():
                tb = pairs[b][0]
                row[tb.id] = ta.overlaps.get(tb.id, 0) + 1
                if row[tb.id] >= c.flow_nms_frames:
                    merged.add(max(ta.id, tb.id))  # ids grow with age: the younger flow goes
        for t, _ in pairs:
            t.overlaps = counts.get(t.id, {})
        self.dropped["merged"] += len(merged)
        return merged


def ambiguous(scores: F64, threshold: float, margin: float) -> npt.NDArray[np.bool_]:
    """(P,) poses whose match the appearance term could change: a pose two tracks could take, or a pose
    competing with another for one track, with the runner-up within ``margin`` of the best (both
    above ``threshold - margin``)."""
    near = scores > threshold - margin
    if (near.sum(axis=0) <= 1).all() and (near.sum(axis=1) <= 1).all():
        return np.zeros(scores.shape[1], bool)  # every pose has at most one candidate and vice versa
    close = near & (scores >= scores.max(axis=0, keepdims=True) - margin)  # per pose: tracks close to its best
    need = close.sum(axis=0) >= 2
    close_rows = near & (scores >= scores.max(axis=1, keepdims=True) - margin)  # per track: poses close to its best
    contested = close_rows.sum(axis=1) >= 2
    return np.asarray(need | close_rows[contested].any(axis=0))


def mutual_oks(kps: F64, areas: F64, sigmas: tuple[float, ...], thr: float) -> F64:
    """(P, P) OKS between this frame's poses over the keypoints confident in **both** (row i's box area
    as the scale; 0 for pairs sharing fewer than 3): a partial pose of a person scores high against
    the whole one, two different people score low."""
    d2 = ((kps[:, None, :, :2] - kps[None, :, :, :2]) ** 2).sum(axis=-1)  # (P, P, K)
    var = (2.0 * np.asarray(sigmas)) ** 2
    e = np.exp(-d2 / (2.0 * areas[:, None, None] * var))
    conf = kps[..., 2] > thr
    both = conf[:, None, :] & conf[None, :, :]
    n = both.sum(axis=-1)
    return np.asarray(np.where(n >= 3, (e * both).sum(axis=-1) / np.maximum(n, 1), 0.0), dtype=np.float64)


class PairOverlap:
    """Which of this frame's poses are the same person: boxes overlapping (IoU above ``min_iou``) and
    pose OKS at or above ``min_oks``. The OKS matrix is computed once per frame, only when boxes overlap."""

    def __init__(self, kps: F64, boxes: F64, iou: F64, sigmas: tuple[float, ...], thr: float):
        self.kps, self.boxes, self.iou, self.sigmas, self.thr = kps, boxes, iou, sigmas, thr
        self._oks: F64 | None = None

    def same_person(
        self, a: npt.NDArray[np.int64], b: npt.NDArray[np.int64], min_oks: float, min_iou: float
    ) -> npt.NDArray[np.bool_]:
        """(len(a), len(b)): poses a[i] and b[j] overlap (box IoU > ``min_iou``, OKS >= ``min_oks``, a[i]
        the reference)."""
        near: npt.NDArray[np.bool_] = self._take(self.iou, a, b) > min_iou
        if not near.any():
            return near
        if self._oks is None:
            wh = np.maximum(self.boxes[:, 2:] - self.boxes[:, :2], 1.0)
            self._oks = mutual_oks(self.kps, wh[:, 0] * wh[:, 1], self.sigmas, self.thr)
        return np.asarray(near & (self._take(self._oks, a, b) >= min_oks), dtype=bool)

    @staticmethod
    def _take(m: F64, a: npt.NDArray[np.int64], b: npt.NDArray[np.int64]) -> F64:
        """m[a][:, b], without copies when a or b is every index (callers pass sorted unique indices)."""
        rows = m if len(a) == len(m) else m[a]
        return rows if len(b) == len(m) else rows[:, b]
