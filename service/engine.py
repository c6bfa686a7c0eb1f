"""The engine: models, pools and limits loaded once, and the one frame path both routes await.

``Engine.run`` (async) hands a frame's bytes to a worker thread, where ``Engine.process`` walks
bytes -> image -> person boxes -> batched pose -> scores -> track -> ``FrameAnswer`` in one
direction, timing every stage itself (the only writer of the timings); ``run`` then does all the
metrics bookkeeping. Detector and pose runner are constructor arguments (tests and the benchmark
inject their own instead of patching).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from posecore.geometry import clip_boxes
from posecore.oks import box_iou
from posecore.runtime import GPU_PROVIDERS, ModelLoadError
from posecore.skeleton import skeleton_for
from posecore.topdown import TopDown, person_score
from posecore.types import Detections, Poses
from service.batching import MicroBatcher
from service.detector import Detector, DetectorConfig, build_detector
from service.imageio import ImageError, decode_image
from service.metrics import Metrics
from service.motion import follow_box
from service.options import Options
from service.pose import load_pose_model
from service.schemas import FrameAnswer, ModelInfo, Person, Timings
from service.security import StreamLimiter
from service.settings import Settings
from service.tracker import PoseFlowTracker, Track, TrackerConfig

log = logging.getLogger("service")
Source = Literal["rest", "stream"]


class BoxError(ValueError):
    """Client boxes that cannot be used (none of the box inside the image); REST answers 422."""


@dataclass
class StreamState:
    """Per-connection state: its own tracker (own ID counter) and detector-skip bookkeeping."""

    tracker: PoseFlowTracker
    frame: int = 0  # frames processed so far
    last_detect: int = -1_000_000  # frame index of the last detector run

    def tracks_to_follow(self, detect_interval: int) -> list[Track]:
        """On a skip frame (detector ran fewer than ``detect_interval`` frames ago), the tracks seen
        since that run and confirmed (found by the detector twice); an empty list means: run the detector
        on this frame. (A skip frame on which a followed person was not re-found resets ``last_detect``:
        the detector runs on the next frame.)"""
        if self.frame - self.last_detect >= detect_interval:
            return []
        return [t for t in self.tracker.seen_since(self.last_detect) if t.confirmed]


class Stopwatch:
    """Stage timings of one frame, from its arrival at the engine (``arrived``, perf_counter seconds)."""

    def __init__(self, arrived: float):
        self.arrived = self.last = arrived
        self.ms: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.ms[stage] = (now - self.last) * 1e3
        self.last = now

    def timings(self) -> Timings:
        # microsecond resolution on the wire
        return Timings(**{k: round(v, 3) for k, v in self.ms.items()}, total=round((self.last - self.arrived) * 1e3, 3))


def client_boxes(boxes: npt.NDArray[np.float32], wh: tuple[int, int]) -> npt.NDArray[np.float32]:
    """Client boxes clipped to the image; a box with no area inside it is refused (``BoxError``)."""
    clipped = clip_boxes(boxes, wh).astype(np.float32)
    empty = (clipped[:, 2] - clipped[:, 0] < 1) | (clipped[:, 3] - clipped[:, 1] < 1)
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise BoxError(f"box {i} {boxes[i].tolist()} lies outside the {wh[0]}x{wh[1]} image")
    return clipped


class Engine:
    def __init__(
        self,
        settings: Settings,
        detector: Detector,
        pose: TopDown,
        tracker: TrackerConfig | None = None,
        video: TopDown | None = None,
    ):
        self.detector, self.pose, self.tracker_config = detector, pose, tracker or TrackerConfig()
        if video is not None and video.prior is None:
            raise ModelLoadError(f"video model {video.spec.name} has no previous-pose input (spec extra 'video')")
        if settings.video_mode and video is None:
            raise ModelLoadError("POSE_VIDEO_MODE is on but no video model is loaded (POSE_VIDEO_MODEL)")
        if video is not None and video.spec.keypoint_names != pose.spec.keypoint_names:
            raise ModelLoadError(f"video model {video.spec.name} and pose model {pose.spec.name} differ in keypoints")
        self.video = video
        try:
            sk = skeleton_for(pose.spec.keypoint_names)
            self.sigmas, self.torso = sk.sigmas, sk.torso
        except ValueError:
            self.sigmas, self.torso = (0.07,) * pose.spec.num_keypoints, ()
            log.warning(
                "keypoint schema of %s is not a known one: pose NMS uses OKS sigma 0.07 for every keypoint",
                pose.spec.name,
            )
        self.defaults = Options.from_settings(settings)
        self.max_image_bytes, self.max_image_pixels = settings.max_image_bytes, settings.max_image_pixels
        self.decode_min_side = settings.decode_min_side
        window = settings.batch_window_ms / 1e3
        self.batcher = MicroBatcher(pose.infer, window) if window else None
        self.video_batcher = MicroBatcher(video.infer, window) if window and video is not None else None
        self.metrics = Metrics()
        self.executor = ThreadPoolExecutor(settings.workers, thread_name_prefix="pose")
        self.limiter = StreamLimiter(settings.max_streams, settings.max_streams_per_client)
        self.rest_limiter = StreamLimiter(64 * settings.workers, settings.max_requests_per_client)
        self.started = time.time()
        # set on SIGTERM: /ready answers 503, new streams are refused, open ones finish and close (1001)
        self.draining = asyncio.Event()
        # one token per executor thread: callers hold one while their frame runs (``worker``)
        self._workers = asyncio.Semaphore(settings.workers)
        self.info = model_info(pose, detector.name)
        self.video_info = model_info(video, detector.name) if video is not None else None

    @classmethod
    def load(
        cls, settings: Settings, detector: Detector | None = None, pose: TopDown | None = None,
        video: TopDown | None = None,
    ) -> Engine:  # fmt: skip
        """Load the models ``settings`` name (fails loudly, naming the file) unless given, check the
        providers, warm up."""
        if pose is None:
            pose = load_pose_model(settings.pose_model, settings.providers, settings.threads, settings.flip_test)
        if video is None and settings.video_model:
            video = load_pose_model(settings.video_model, settings.providers, settings.threads, settings.flip_test)
            log.info("video model: %s %s (%s)", video.spec.name, video.spec.version, settings.video_model)
        if detector is None:
            detector = build_detector(DetectorConfig.from_settings(settings))
        log.info("pose model: %s %s (%s) on %s", pose.spec.name, pose.spec.version, settings.pose_model, pose.providers)
        log.info("detector backend: %s", detector.name)
        if settings.require_gpu:
            on_cpu = {
                n: p
                for n, p in (("pose model", pose.providers), ("detector", detector.providers))
                if not set(p) & set(GPU_PROVIDERS)
            }
            if on_cpu:
                raise ModelLoadError(f"POSE_REQUIRE_GPU is set but no GPU provider is active: {on_cpu}")
        engine = cls(settings, detector, pose, video=video)
        engine.warmup()
        return engine

    @property
    def providers(self) -> list[str]:
        return self.pose.providers

    def new_stream(self) -> StreamState:
        return StreamState(PoseFlowTracker(self.tracker_config, self.sigmas, self.torso))

    def warmup(self) -> None:
        img = np.zeros((240, 320, 3), np.uint8)
        box = np.array([[100, 40, 200, 220]], np.float32)
        kps = self.pose(img, box)
        if self.video is not None:
            self.video(img, box, kps)
        self.detector(img)

    def worker(self) -> asyncio.Semaphore:
        """``async with engine.worker():`` waits until a worker thread is free (waiters are served
        in arrival order, so streams take turns) and holds it; ``run`` inside it starts at once."""
        return self._workers

    async def run(
        self,
        data: bytes,
        opts: Options,
        source: Source,
        stream: StreamState | None = None,
        boxes: npt.NDArray[np.float32] | None = None,
        arrived: float | None = None,
    ) -> FrameAnswer:
        """One frame, processed on a worker thread; metrics recorded here and only here.

        Raises ``ImageError`` / ``BoxError`` (the client's fault) or whatever processing raised.
        """
        arrived = time.perf_counter() if arrived is None else arrived
        loop = asyncio.get_running_loop()
        m = self.metrics
        try:
            answer = await loop.run_in_executor(self.executor, self.process, data, opts, stream, boxes, arrived)
        except (ImageError, BoxError):
            m.frames.labels(source, "rejected").inc()
            raise
        except Exception:
            m.errors.labels("frame").inc()
            m.frames.labels(source, "failed").inc()
            raise
        m.frames.labels(source, "processed").inc()
        m.observe(answer)
        return answer

    def process(
        self,
        data: bytes,
        opts: Options,
        stream: StreamState | None = None,
        boxes: npt.NDArray[np.float32] | None = None,
        arrived: float | None = None,
    ) -> FrameAnswer:
        """bytes -> answer. ``stream`` None = stateless (REST); ``boxes`` given = the client's person boxes."""
        clock = Stopwatch(time.perf_counter() if arrived is None else arrived)
        clock.lap("queue")
        # 1. decode (limits checked before any pixel is decoded; large JPEGs at a reduced scale).
        #    Boxes and keypoints are in the image's own pixels throughout; only the detector and the
        #    crops touch the decoded pixels (boxes through ``to_px``, keypoints back through sx, sy).
        decoded = decode_image(data, self.max_image_bytes, self.max_image_pixels, self.decode_min_side)
        image, w, h = decoded.pixels, decoded.width, decoded.height
        sx, sy = decoded.scale_xy
        to_px = np.array([1 / sx, 1 / sy, 1 / sx, 1 / sy], np.float32)
        clock.lap("decode")
        # 2. person boxes: the client's, the stream's tracks (skip frames), or the detector
        followed: list[Track] = []
        detector_ran = False
        if boxes is not None:
            dets = Detections(client_boxes(boxes, (w, h)), np.ones(len(boxes), np.float32))
        else:
            followed = stream.tracks_to_follow(opts.detect_interval) if stream is not None else []
            if stream is not None and followed:
                dets = self._follow(stream.tracker, followed, clock.arrived, (w, h))
            else:
                found, detector_ran = self.detector(image), True
                dets = Detections(found.xyxy / to_px, found.scores)
                if stream is not None:
                    stream.last_detect = stream.frame
        order = np.argsort(-dets.scores, kind="stable")[: opts.max_persons]
        xyxy, det_scores = dets.xyxy[order], dets.scores[order]
        followed = [followed[i] for i in order] if followed else []
        clock.lap("detect")
        # 3. one batched pose call for every crop (video mode: with each tracked person's previous pose)
        video = stream is not None and opts.video_mode and self.video is not None
        runner = self.video if video and self.video is not None else self.pose
        k = runner.spec.num_keypoints
        kps = np.zeros((0, k, 3), np.float32)
        priors = 0
        if len(xyxy):
            x, mats = runner.preprocess(image, xyxy * to_px)
            if video and stream is not None:
                previous = self._previous_poses(stream.tracker, followed, xyxy, clock.arrived, runner)
                priors = int((previous[..., 2] > 0).any(axis=1).sum())
                previous[..., 0] /= sx  # image pixels -> the decoded pixels the crops come from
                previous[..., 1] /= sy
                clock.lap("crop")
                prior = runner.priors(previous, mats)
                assert prior is not None  # a video model (checked at load)
                heatmaps = self.video_batcher(x, prior) if self.video_batcher is not None else runner.infer(x, prior)
            else:
                clock.lap("crop")
                heatmaps = self.batcher(x) if self.batcher is not None else self.pose.infer(x)
            clock.lap("pose")
            kps = runner.postprocess(heatmaps, mats)
            kps[..., 0] *= sx
            kps[..., 1] *= sy
        else:
            clock.lap("crop")
            clock.lap("pose")
        # 4. one definition of a person's box and score on every frame
        if followed:
            thr = opts.keypoint_threshold
            xyxy = np.stack(
                [
                    follow_box(t.box, t.keypoints, kp.astype(np.float64), thr)
                    for t, kp in zip(followed, kps, strict=True)
                ]
            ).astype(np.float32)
            xyxy = clip_boxes(xyxy, (w, h)).astype(np.float32) if len(xyxy) else xyxy
        scores = person_score(kps, opts.keypoint_threshold) * np.sqrt(np.clip(det_scores, 0.0, 1.0))
        keep = np.flatnonzero(scores >= opts.pose_score_threshold)
        poses = Poses(kps[keep], xyxy[keep], scores[keep])
        det_scores = det_scores[keep]
        origins = np.array([t.id for t in followed], np.int64)[keep] if followed else None
        clock.lap("decode_heatmaps")
        # 5. tracking (streams only)
        ids: npt.NDArray[np.int64] | None = None
        if stream is not None:
            tracked = stream.tracker.update(
                poses,
                frame=stream.frame,
                timestamp=clock.arrived,
                det_scores=det_scores,
                kp_threshold=opts.keypoint_threshold,
                smoothing=opts.smoothing,
                image=image,
                image_scale_xy=(sx, sy),
                origins=origins,
            )
            poses, ids = tracked.poses, tracked.track_ids
            if followed and not {t.id for t in followed} <= set(ids.tolist()):
                stream.last_detect = -1_000_000  # a followed person was not re-found: detector on the next frame
            stream.frame += 1
        clock.lap("track")
        # 6. the answer
        return FrameAnswer(
            width=w,
            height=h,
            persons=persons(poses, ids, opts.keypoint_threshold),
            detector_ran=detector_ran,
            timings_ms=clock.timings(),
            pose_model=f"{runner.spec.name} {runner.spec.version}",
            video_priors=priors,
        )

    def _follow(self, tracker: PoseFlowTracker, tracks: list[Track], now: float, wh: tuple[int, int]) -> Detections:
        """Crop boxes for a skip frame: each followed track's box moved to this frame's time."""
        boxes = clip_boxes(tracker.predict(tracks, now)[0], wh).astype(np.float32)
        return Detections(boxes, np.array([t.det_score for t in tracks], np.float32))

    def _previous_poses(
        self, tracker: PoseFlowTracker, followed: list[Track], xyxy: npt.NDArray[np.float32], now: float,
        runner: TopDown,
    ) -> npt.NDArray[np.float32]:  # fmt: skip
        """Each crop's previous pose (N, K, 3) in image pixels, zeros where there is none: on a skip frame the
        followed track's; on a detector frame the recent track whose predicted box overlaps the detection
        most (IoU >= 0.3, one detection per track). Poses older than the model's ``max_age_s`` are not used."""
        assert runner.prior is not None
        out = np.zeros((len(xyxy), runner.spec.num_keypoints, 3), np.float32)
        max_age = runner.prior.max_age_s
        if followed:
            for i, t in enumerate(followed):
                if now - t.last_time <= max_age:
                    out[i] = t.keypoints
            return out
        recent = [t for t in tracker.tracks if now - t.last_time <= max_age]
        if not recent or not len(xyxy):
            return out
        iou = box_iou(xyxy, tracker.predict(recent, now)[0])
        for _ in range(min(len(xyxy), len(recent))):
            d, r = (int(v) for v in np.unravel_index(int(np.argmax(iou)), iou.shape))
            if iou[d, r] < 0.3:
                break
            out[d] = recent[r].keypoints
            iou[d, :] = -1.0
            iou[:, r] = -1.0
        return out

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=False)


def model_info(model: TopDown, detector: str) -> ModelInfo:
    s = model.spec
    return ModelInfo(name=s.name, version=s.version, input_wh=s.input_wh, keypoints=list(s.keypoint_names),
                     skeleton=list(s.limbs), detector=detector)  # fmt: skip


def persons(poses: Poses, ids: npt.NDArray[np.int64] | None, keypoint_threshold: float) -> list[Person]:
    """Wire persons; keypoints at or below ``keypoint_threshold`` become [0, 0, 0]."""
    kps = poses.keypoints.astype(np.float64)
    kps[kps[..., 2] <= keypoint_threshold] = 0.0
    kp_rows = np.round(kps, 2).tolist()
    boxes = np.round(poses.boxes.astype(np.float64), 1).tolist()
    scores = np.round(poses.scores.astype(np.float64), 4).tolist()
    return [
        Person(box=boxes[i], score=scores[i], keypoints=kp_rows[i], track_id=None if ids is None else int(ids[i]))
        for i in range(len(poses))
    ]
