"""bytes -> decode -> detect (or boxes from the previous frame's tracks) -> batched pose -> track.

Returns typed results plus per-stage timings; CPU-bound, called from a worker thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from posecore.geometry import clip_boxes, keypoints_to_box
from posecore.types import Detections, Poses, TrackedPoses
from service.detector import Detector
from service.imageio import decode_image
from service.pose import PoseEstimator
from service.settings import Settings
from service.tracker import PoseFlowTracker, TrackerConfig


@dataclass
class Options:
    """Per-request / per-stream knobs (validated at the API boundary)."""

    keypoint_threshold: float = 0.2
    pose_score_threshold: float = 0.3
    max_persons: int = 20
    detect_interval: int = 1


@dataclass
class StreamState:
    """Per-connection state: its own tracker (own ID counter) and detector-skip bookkeeping."""

    tracker: PoseFlowTracker = field(default_factory=PoseFlowTracker)
    frames_since_detect: int = 1_000_000
    processed: int = 0


@dataclass(frozen=True)
class FrameResult:
    width: int
    height: int
    poses: Poses
    track_ids: npt.NDArray[np.int64] | None
    timings_ms: dict[str, float]
    detector_ran: bool


def pose_scores(kps: npt.NDArray[np.float32], thr: float) -> npt.NDArray[np.float32]:
    """Instance score: mean confidence of keypoints above ``thr`` times the fraction above it."""
    s = kps[..., 2]
    above = s > thr
    mean = np.where(above.any(1), (s * above).sum(1) / np.maximum(above.sum(1), 1), 0.0)
    return np.asarray(mean * above.mean(1), dtype=np.float32)


class Pipeline:
    def __init__(self, settings: Settings, detector: Detector, pose: PoseEstimator):
        self.settings, self.detector, self.pose = settings, detector, pose

    def default_options(self) -> Options:
        s = self.settings
        return Options(s.keypoint_threshold, s.pose_score_threshold, s.max_persons, s.detect_interval)

    def new_stream(self) -> StreamState:
        return StreamState(tracker=PoseFlowTracker(TrackerConfig(kp_threshold=self.settings.keypoint_threshold)))

    def decode(self, data: bytes) -> npt.NDArray[np.uint8]:
        return decode_image(data, self.settings.max_image_bytes, self.settings.max_image_pixels)

    def _boxes_from_tracks(self, state: StreamState, frame: int, wh: tuple[int, int], opts: Options) -> Detections:
        """Boxes for a detector-free frame: each live track's last keypoints, moved by its velocity, padded."""
        boxes, scores = [], []
        _, _, kps_all = state.tracker.recent(frame, max_missed=1)
        for kps in kps_all:
            tight = keypoints_to_box(kps[None], opts.keypoint_threshold)[0]
            if np.isnan(tight).any():
                continue
            c, half = (tight[:2] + tight[2:]) / 2, (tight[2:] - tight[:2]) / 2 * 1.15 + 4
            boxes.append(np.concatenate([c - half, c + half]))
            scores.append(1.0)
        if not boxes:
            return Detections.empty()
        b = clip_boxes(np.stack(boxes), wh)
        ok = (b[:, 2] - b[:, 0] > 4) & (b[:, 3] - b[:, 1] > 4)
        return Detections(b[ok].astype(np.float32), np.asarray(scores, np.float32)[ok])

    def process(
        self,
        image: npt.NDArray[np.uint8],
        opts: Options,
        state: StreamState | None = None,
        boxes: npt.NDArray[np.float32] | None = None,
        decode_ms: float = 0.0,
    ) -> FrameResult:
        """One frame. ``state`` None = stateless (REST); ``boxes`` given = skip the detector."""
        t0 = time.perf_counter()
        h, w = image.shape[:2]
        timings = {"decode": decode_ms}
        frame = state.processed if state is not None else 0
        # 1. person boxes: client boxes, detector, or (every k-1 of k stream frames) the tracks
        detector_ran = False
        if boxes is not None:
            dets = Detections(clip_boxes(boxes, (w, h)).astype(np.float32), np.ones(len(boxes), np.float32))
        elif state is not None and state.frames_since_detect + 1 < opts.detect_interval and len(state.tracker):
            dets = self._boxes_from_tracks(state, frame, (w, h), opts)
            state.frames_since_detect += 1
        else:
            dets = self.detector(image)
            detector_ran = True
            if state is not None:
                state.frames_since_detect = 0
        if len(dets) > opts.max_persons:
            order = np.argsort(-dets.scores)[: opts.max_persons]
            dets = Detections(dets.xyxy[order], dets.scores[order])
        t1 = time.perf_counter()
        timings["detect"] = (t1 - t0) * 1e3
        # 2. one batched pose call for every crop
        poses, pt = self.pose(image, dets.xyxy)
        scores = pose_scores(poses.keypoints, opts.keypoint_threshold)
        if boxes is None:
            scores = scores * np.sqrt(np.clip(dets.scores, 0, 1)) if detector_ran else scores
        keep = np.flatnonzero(scores >= opts.pose_score_threshold) if boxes is None else np.arange(len(poses))
        poses = Poses(poses.keypoints[keep], dets.xyxy[keep], scores[keep])
        timings.update(crop=pt.crop_ms, pose=pt.pose_ms, decode_heatmaps=pt.decode_ms)
        # 3. tracking (streams only)
        ids = None
        t2 = time.perf_counter()
        if state is not None:
            tracked: TrackedPoses = state.tracker.update(poses, frame)
            poses, ids = tracked.poses, tracked.track_ids
            state.processed += 1
        timings["track"] = (time.perf_counter() - t2) * 1e3
        timings["total"] = decode_ms + (time.perf_counter() - t0) * 1e3
        return FrameResult(w, h, poses, ids, timings, detector_ran)
