"""The perception pipeline in-process: image (BGR ndarray) -> person boxes -> one batched pose call -> scores ->
tracks, timed per stage. ``Pipeline`` holds the models; ``Stream`` is one video's state (its own tracker and
track ids, detector-skip bookkeeping). The web service (``service/``) wraps this same object.

    pipe = okpose.Pipeline()                       # the embedded models
    res = pipe(cv2.imread("photo.jpg"))            # stateless: boxes, scores, keypoints, per-keypoint visibility
    for frame, res in pipe.track("clip.mp4"):      # file | webcam index | rtsp:// | http(s) | folder | glob
        print(res.frame, res.track_ids)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from okpose.assets import DEFAULT_DETECTOR_MODEL, DEFAULT_POSE_MODEL, DEFAULT_VIDEO_MODEL
from okpose.core.geometry import clip_boxes
from okpose.core.oks import box_iou
from okpose.core.runtime import ModelLoadError
from okpose.core.skeleton import skeleton_for
from okpose.core.topdown import TopDown, person_score
from okpose.core.types import Detections, Poses
from okpose.detect import Detector, DetectorConfig, build_detector
from okpose.detect.detectors import CandidateDetector
from okpose.detect.tiles import TILE_MIN_SIDE, drop_covered, merge_tiles, scale_windows, tile_windows, union
from okpose.imageio import DECODE_MIN_SIDE, MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, decode_image
from okpose.pose import load_pose_model
from okpose.track.matching import assign
from okpose.track.motion import follow_box
from okpose.track.tracker import PoseFlowTracker, Track, TrackerConfig

if TYPE_CHECKING:
    from okpose.sources import Frame

log = logging.getLogger("okpose")
F32 = npt.NDArray[np.float32]
MAX_TILES = 6
TILE_PAUSE_FRAMES = (30, 480)  # a tiled stream whose tiles found no small person pauses them, doubling, up to 16 s
SMALL_SHARE = 1 / 8  # a "small" person for tiling: box height under this share of the frame's
STAGES = ("queue", "decode", "detect", "crop", "pose", "decode_heatmaps", "track")


class BoxError(ValueError):
    """Given person boxes that cannot be used (none of the box inside the image)."""


@dataclass(frozen=True)
class PipelineOptions:
    """What one frame is processed with (the service's per-request options carry the same fields and bounds)."""

    keypoint_threshold: float = 0.2  # keypoints scoring at or below this are not visible and unused in tracking
    pose_score_threshold: float = 0.3  # persons scoring below this are not returned
    max_persons: int = 20  # at most this many persons per frame (best detections first)
    detect_interval: int = 3  # streams: run the detector every k-th frame, follow the tracks in between
    smoothing: bool = True  # streams: One-Euro smoothing of the returned keypoints
    video_mode: bool = False  # streams: the video model (needs one), which also reads each person's last pose
    # streams, detector frames: detections scoring from this up to the detector's own threshold are kept where they
    # continue a tracked person (ByteTrack's second association); at or above the detector's threshold: off
    rescue_score: float = 0.1
    # frames with a long side >= TILE_MIN_SIDE: the detector also runs on a tiles x tiles grid of overlapping tiles
    # (small people); streams: one tile per frame in turn, paused while tiles find no small person; 0 or 1: off
    tiles: int = 3

    def __post_init__(self) -> None:
        for name in ("keypoint_threshold", "pose_score_threshold", "rescue_score"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 1 <= self.max_persons <= 200:
            raise ValueError(f"max_persons must be in [1, 200], got {self.max_persons}")
        if not 1 <= self.detect_interval <= 300:
            raise ValueError(f"detect_interval must be in [1, 300], got {self.detect_interval}")
        if not 0 <= self.tiles <= MAX_TILES:
            raise ValueError(f"tiles must be in [0, {MAX_TILES}], got {self.tiles}")

    def replace(self, **changes: Any) -> PipelineOptions:
        return PipelineOptions(**{**asdict(self), **changes})


@dataclass
class Result:
    """One frame's persons, best first. Keypoints in the image's own pixels, in ``keypoint_names`` order."""

    width: int
    height: int
    boxes: F32  # (N, 4) x1, y1, x2, y2
    scores: F32  # (N,) pose quality x sqrt(detection confidence)
    keypoints: F32  # (N, K, 3) x, y, score (raw scores: ``visible`` applies the threshold)
    keypoint_names: tuple[str, ...]
    keypoint_threshold: float
    track_ids: npt.NDArray[np.int64] | None = None  # streams only
    frame: int = -1  # the stream's frame index (-1: a single image)
    detector_ran: bool = False
    timings_ms: dict[str, float] = field(default_factory=dict)  # per stage, plus ``total``
    pose_model: str = ""
    video_priors: int = 0  # persons whose previous pose the video model read
    rescued: int = 0  # detections below the detector's threshold kept because they continue a track
    tiles: int = 0  # detector tiles run on this frame (small people; ``PipelineOptions.tiles``)

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def xy(self) -> F32:
        return self.keypoints[..., :2]

    @property
    def keypoint_scores(self) -> F32:
        return self.keypoints[..., 2]

    @property
    def visible(self) -> npt.NDArray[np.bool_]:
        return self.keypoints[..., 2] > self.keypoint_threshold

    def persons(self) -> list[dict[str, Any]]:
        """JSON-ready persons (the service's wire layout): keypoints not visible are [0, 0, 0]."""
        kps = self.keypoints.astype(np.float64)
        kps[kps[..., 2] <= self.keypoint_threshold] = 0.0
        rows, boxes = np.round(kps, 2).tolist(), np.round(self.boxes.astype(np.float64), 1).tolist()
        scores = np.round(self.scores.astype(np.float64), 4).tolist()
        ids = None if self.track_ids is None else self.track_ids.tolist()
        return [
            {"box": boxes[i], "score": scores[i], "keypoints": rows[i], "track_id": None if ids is None else ids[i]}
            for i in range(len(self))
        ]


class Stopwatch:
    """Stage timings of one frame from its arrival (``arrived``, perf_counter seconds)."""

    def __init__(self, arrived: float | None = None):
        self.arrived = self.last = time.perf_counter() if arrived is None else arrived
        self.ms: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.ms[stage] = (now - self.last) * 1e3
        self.last = now

    def timings(self) -> dict[str, float]:
        return {**{k: self.ms.get(k, 0.0) for k in STAGES}, "total": (self.last - self.arrived) * 1e3}


@dataclass
class Stream:
    """One video's state: its own tracker (own id counter) and detector-skip bookkeeping."""

    tracker: PoseFlowTracker
    frame: int = 0  # frames processed so far
    last_detect: int = -1_000_000  # frame index of the last detector run
    tile_turn: int = 0  # tiled frames: the next tile to run (one per frame, in turn)
    tile_idle: int = 0  # tile runs in a row that found no small person
    tile_resume: int = 0  # tiles pause (after a whole round found no small person) until this frame
    tile_pause: int = TILE_PAUSE_FRAMES[0]  # the next pause's length (doubles up to TILE_PAUSE_FRAMES[1])

    def tracks_to_follow(self, detect_interval: int) -> list[Track]:
        """On a skip frame (the detector ran fewer than ``detect_interval`` frames ago), the confirmed tracks seen
        since that run; an empty list means: run the detector on this frame. (A skip frame on which a followed
        person was not re-found resets ``last_detect``: the detector runs on the next frame.)"""
        if self.frame - self.last_detect >= detect_interval:
            return []
        return [t for t in self.tracker.seen_since(self.last_detect) if t.confirmed]

    def tracks_to_keep(self, n_tiles: int, detect_interval: int) -> list[Track]:
        """Tiled streams: the confirmed tracks matched on the previous frame whose last detector box (whole frame
        or tile) is at most ``tile_follow_frames`` old, followed on every frame until a detector box takes them
        (a person only a tile finds is missed by the whole-frame detector in between)."""
        limit = tile_follow_frames(n_tiles, detect_interval)
        return [t for t in self.tracker.tracks if t.confirmed and t.last_frame == self.frame - 1
                and self.frame - t.last_detected <= limit]  # fmt: skip

    def tile_due(self) -> bool:
        return self.frame >= self.tile_resume

    def tile_ran(self, found_small: bool, n_tiles: int) -> None:
        """Book one tile run: a round of ``n_tiles`` runs without a small person pauses tiling (doubling pauses);
        a small person resets it."""
        self.tile_turn = (self.tile_turn + 1) % n_tiles
        if found_small:
            self.tile_idle, self.tile_pause = 0, TILE_PAUSE_FRAMES[0]
            return
        self.tile_idle += 1
        if self.tile_idle >= n_tiles:
            self.tile_resume, self.tile_idle = self.frame + self.tile_pause, 0
            self.tile_pause = min(2 * self.tile_pause, TILE_PAUSE_FRAMES[1])


def tile_follow_frames(n_tiles: int, detect_interval: int) -> int:
    """How long a tiled stream follows a confirmed track without a detector box: two rounds of tiles (which run
    on the frames between whole-frame detections) and one detector interval."""
    per_round = n_tiles if detect_interval == 1 else -(-n_tiles * detect_interval // (detect_interval - 1))
    return 2 * per_round + detect_interval


def second_association(
    tracks_xyxy: npt.ArrayLike, high_xyxy: npt.ArrayLike, low_xyxy: npt.ArrayLike, first_iou: float = 0.2,
    second_iou: float = 0.5,
) -> npt.NDArray[np.int64]:  # fmt: skip
    """ByteTrack's second association on boxes: the tracks (their predicted boxes) take the confident detections
    first (IoU > ``first_iou``); the tracks left over take low-scoring detections (IoU > ``second_iou``), both
    steps one-to-one by ``okpose.track.matching.assign`` (maximum total IoU). Returns the indices of the
    low-scoring detections taken; the rest are dropped (a low score alone never starts a person)."""
    t = np.asarray(tracks_xyxy, np.float64).reshape(-1, 4)
    hi = np.asarray(high_xyxy, np.float64).reshape(-1, 4)
    lo = np.asarray(low_xyxy, np.float64).reshape(-1, 4)
    if not len(t) or not len(lo):
        return np.zeros(0, np.int64)
    left = np.ones(len(t), bool)
    if len(hi):
        left[assign(box_iou(t, hi), first_iou)[0]] = False
    if not left.any():
        return np.zeros(0, np.int64)
    return np.sort(assign(box_iou(t[left], lo), second_iou)[1])


def given_boxes(boxes: npt.ArrayLike, wh: tuple[int, int]) -> F32:
    """Given boxes clipped to the image; a box with no area inside it is refused (``BoxError``)."""
    raw = np.asarray(boxes, np.float32).reshape(-1, 4)
    clipped = clip_boxes(raw, wh).astype(np.float32)
    empty = (clipped[:, 2] - clipped[:, 0] < 1) | (clipped[:, 3] - clipped[:, 1] < 1)
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise BoxError(f"box {i} {raw[i].tolist()} lies outside the {wh[0]}x{wh[1]} image")
    return clipped


ModelArg = str | Path | TopDown | None
DetectorArg = str | Path | Detector | DetectorConfig | None


class Pipeline:
    """Detector -> batched top-down pose -> PoseFlow tracks, in this process.

    ``pose`` / ``video``: an ONNX path (its spec is read from the file's metadata) or a loaded ``TopDown``;
    ``detector``: an ONNX or ``.pt`` path, a ``DetectorConfig`` or any object with the ``Detector`` protocol.
    Defaults: the embedded student and NanoDet. ``video=None`` loads the embedded video model when it exists
    (used only where ``options.video_mode`` is on); ``video=False`` loads none.
    """

    def __init__(
        self,
        pose: ModelArg = None,
        detector: DetectorArg = None,
        *,
        video: ModelArg | bool = None,
        providers: str = "auto",
        threads: int = 0,
        flip_test: bool = False,
        options: PipelineOptions | None = None,
        tracker: TrackerConfig | None = None,
        warmup: bool = True,
    ):
        self.pose = pose if isinstance(pose, TopDown) else load_pose_model(pose or DEFAULT_POSE_MODEL, providers,
                                                                           threads, flip_test)  # fmt: skip
        if video is None:
            video = DEFAULT_VIDEO_MODEL if DEFAULT_VIDEO_MODEL.is_file() else False
        self.video: TopDown | None = None
        if isinstance(video, TopDown):
            self.video = video
        elif video is not False and video is not True and video:
            self.video = load_pose_model(video, providers, threads, flip_test)
        if self.video is not None and self.video.prior is None:
            raise ModelLoadError(f"video model {self.video.spec.name} has no previous-pose input (spec extra 'video')")
        if self.video is not None and self.video.spec.keypoint_names != self.pose.spec.keypoint_names:
            raise ModelLoadError(
                f"video model {self.video.spec.name} and pose model {self.pose.spec.name} differ in keypoints"
            )
        if detector is None or isinstance(detector, str | Path):
            detector = DetectorConfig(model=str(detector or DEFAULT_DETECTOR_MODEL), providers=providers,
                                      threads=threads)  # fmt: skip
        self.detector: Detector = build_detector(detector) if isinstance(detector, DetectorConfig) else detector
        self.options = options or PipelineOptions()
        self.tracker_config = tracker or TrackerConfig()
        try:
            sk = skeleton_for(self.pose.spec.keypoint_names)
            self.sigmas, self.torso = sk.sigmas, sk.torso
        except ValueError:
            self.sigmas, self.torso = (0.07,) * self.pose.spec.num_keypoints, ()
            log.warning("keypoint schema of %s is not a known one: pose NMS uses OKS sigma 0.07 for every keypoint",
                        self.pose.spec.name)  # fmt: skip
        # the batched pose calls; the service swaps in its cross-stream micro-batchers
        self.pose_infer: Callable[..., F32] = self.pose.infer
        self.video_infer: Callable[..., F32] | None = self.video.infer if self.video is not None else None
        if warmup:
            self.warmup()

    @property
    def keypoint_names(self) -> tuple[str, ...]:
        return tuple(self.pose.spec.keypoint_names)

    def warmup(self) -> None:
        img = np.zeros((240, 320, 3), np.uint8)
        box = np.array([[100, 40, 200, 220]], np.float32)
        kps = self.pose(img, box)
        if self.video is not None:
            self.video(img, box, kps)
        self.detector(img)

    def stream(self) -> Stream:
        """A new video's state (track ids start at 1)."""
        return Stream(PoseFlowTracker(self.tracker_config, self.sigmas, self.torso))

    def __call__(
        self, image: npt.NDArray[np.uint8], boxes: npt.ArrayLike | None = None, options: PipelineOptions | None = None
    ) -> Result:
        """One image, no tracking; ``boxes`` (N, 4) given = skip the detector."""
        return self.process(image, boxes=boxes, options=options)

    def process_bytes(
        self,
        data: bytes,
        stream: Stream | None = None,
        boxes: npt.ArrayLike | None = None,
        options: PipelineOptions | None = None,
        *,
        max_bytes: int = MAX_IMAGE_BYTES,
        max_pixels: int = MAX_IMAGE_PIXELS,
        decode_min_side: int = DECODE_MIN_SIDE,
        clock: Stopwatch | None = None,
    ) -> Result:
        """One encoded frame (JPEG / PNG bytes), the service's path: limits checked before any pixel is decoded
        (``okpose.imageio.ImageError`` otherwise), large JPEGs decoded at a reduced scale (``decode_min_side``);
        boxes and keypoints come back in the image's own pixels, only the detector and crops see fewer."""
        clock = clock or Stopwatch()
        decoded = decode_image(data, max_bytes, max_pixels, decode_min_side)
        clock.lap("decode")
        return self.process(decoded.pixels, stream, boxes, options, scale_xy=decoded.scale_xy,
                            size_wh=(decoded.width, decoded.height), clock=clock)  # fmt: skip

    def process(
        self,
        image: npt.NDArray[np.uint8],
        stream: Stream | None = None,
        boxes: npt.ArrayLike | None = None,
        options: PipelineOptions | None = None,
        *,
        scale_xy: tuple[float, float] = (1.0, 1.0),
        size_wh: tuple[int, int] | None = None,
        clock: Stopwatch | None = None,
        timestamp: float | None = None,
    ) -> Result:
        """One frame (BGR uint8). ``stream`` None = stateless. ``scale_xy``/``size_wh``: the image was decoded at a
        reduced scale (the service's large JPEGs): boxes and keypoints come back in the full image's pixels.
        ``timestamp``: the frame's time in seconds on the stream's own clock (a video's timestamps), which the
        tracker's motion model uses; default: its arrival (``clock.arrived``)."""
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            got = getattr(image, "shape", type(image).__name__)
            raise ValueError(f"expected a BGR uint8 image (H, W, 3), got {got}")
        opts = options or self.options
        if opts.video_mode and self.video is None:
            raise ModelLoadError("video_mode is on but no video model is loaded")
        clock = clock or Stopwatch()
        now = clock.arrived if timestamp is None else float(timestamp)
        sx, sy = scale_xy
        w, h = size_wh or (image.shape[1], image.shape[0])
        to_px = np.array([1 / sx, 1 / sy, 1 / sx, 1 / sy], np.float32)
        # 1. person boxes: the given ones, the stream's tracks (skip frames), or the detector
        rows: list[Track | None] = []  # the track each box row was cropped for (None: a detector or given box)
        detector_ran = False
        rescued = tiled = 0
        lost_means_detect = True  # a followed person not re-found: run the detector on the next frame
        windows = self._tiles(opts, (w, h), (sx, sy), image)
        if boxes is not None:
            given = given_boxes(boxes, (w, h))
            dets = Detections(given, np.ones(len(given), np.float32))
        elif stream is not None and len(windows):
            dets, rows, detector_ran, rescued, tiled = self._tiled_stream(image, stream, opts, now, to_px, (w, h),
                                                                          windows)  # fmt: skip
            lost_means_detect = not detector_ran
        else:
            followed = stream.tracks_to_follow(opts.detect_interval) if stream is not None else []
            if stream is not None and followed:
                dets, rows = self._follow(stream.tracker, followed, now, (w, h)), list(followed)
            elif stream is None and len(windows):  # a single large image: the whole frame and every tile
                found = merge_tiles(image, self.detector(image), windows, self.detector, self._nms_iou())
                dets, detector_ran, tiled = Detections(found.xyxy / to_px, found.scores), True, len(windows)
            else:
                dets, rescued = self._detect(image, stream, opts, now, to_px, (w, h))
                detector_ran = True
                if stream is not None:
                    stream.last_detect = stream.frame
        order = np.argsort(-dets.scores, kind="stable")[: opts.max_persons]
        xyxy, det_scores = dets.xyxy[order], dets.scores[order]
        rows = [rows[i] for i in order] if rows else [None] * len(order)
        followed = [t for t in rows if t is not None]
        clock.lap("detect")
        # 2. one batched pose call for every crop (video mode: with each tracked person's previous pose)
        video = stream is not None and opts.video_mode and self.video is not None
        runner = self.video if video and self.video is not None else self.pose
        kps = np.zeros((0, runner.spec.num_keypoints, 3), np.float32)
        priors = 0
        if len(xyxy):
            x, mats = runner.preprocess(image, xyxy * to_px)
            if video and stream is not None and self.video_infer is not None:
                previous = self._previous_poses(stream.tracker, rows, xyxy, now, runner)
                priors = int((previous[..., 2] > 0).any(axis=1).sum())
                previous[..., 0] /= sx  # image pixels -> the decoded pixels the crops come from
                previous[..., 1] /= sy
                clock.lap("crop")
                heatmaps = self.video_infer(x, runner.priors(previous, mats))
            else:
                clock.lap("crop")
                heatmaps = self.pose_infer(x)
            clock.lap("pose")
            kps = runner.postprocess(heatmaps, mats)
            kps[..., 0] *= sx
            kps[..., 1] *= sy
        else:
            clock.lap("crop")
            clock.lap("pose")
        # 3. one definition of a person's box and score on every frame
        if followed:
            thr = opts.keypoint_threshold
            xyxy = xyxy.copy()
            for i, (t, kp) in enumerate(zip(rows, kps, strict=True)):
                if t is not None:
                    xyxy[i] = follow_box(t.box, t.keypoints, kp.astype(np.float64), thr)
            xyxy = clip_boxes(xyxy, (w, h)).astype(np.float32) if len(xyxy) else xyxy
        scores = person_score(kps, opts.keypoint_threshold) * np.sqrt(np.clip(det_scores, 0.0, 1.0))
        keep = np.flatnonzero(scores >= opts.pose_score_threshold)
        poses = Poses(kps[keep], xyxy[keep], scores[keep])
        det_scores = det_scores[keep]
        origins = np.array([0 if t is None else t.id for t in rows], np.int64)[keep] if followed else None
        clock.lap("decode_heatmaps")
        # 4. tracking (streams only)
        ids: npt.NDArray[np.int64] | None = None
        frame = -1
        if stream is not None:
            tracked = stream.tracker.update(
                poses,
                frame=stream.frame,
                timestamp=now,
                det_scores=det_scores,
                kp_threshold=opts.keypoint_threshold,
                smoothing=opts.smoothing,
                image=image,
                image_scale_xy=(sx, sy),
                origins=origins,
            )
            poses, ids = tracked.poses, tracked.track_ids
            if followed and lost_means_detect and not {t.id for t in followed} <= set(ids.tolist()):
                stream.last_detect = -1_000_000  # a followed person was not re-found: detector on the next frame
            frame = stream.frame
            stream.frame += 1
        clock.lap("track")
        return Result(
            width=w,
            height=h,
            boxes=np.asarray(poses.boxes, np.float32).reshape(-1, 4),
            scores=np.asarray(poses.scores, np.float32).reshape(-1),
            keypoints=np.asarray(poses.keypoints, np.float32).reshape(-1, runner.spec.num_keypoints, 3),
            keypoint_names=tuple(runner.spec.keypoint_names),
            keypoint_threshold=opts.keypoint_threshold,
            track_ids=ids,
            frame=frame,
            detector_ran=detector_ran,
            timings_ms=clock.timings(),
            pose_model=f"{runner.spec.name} {runner.spec.version}",
            video_priors=priors,
            rescued=rescued,
            tiles=tiled,
        )

    def track(
        self,
        source: Any,
        options: PipelineOptions | None = None,
        **source_options: Any,
    ) -> Iterator[tuple[npt.NDArray[np.uint8], Result]]:
        """Frames of ``source`` (see ``okpose.sources.open_source``: a path, glob, folder, webcam index, rtsp:// or
        http(s) URL, or an iterable of BGR images) with their tracked result, one ``Stream`` for the whole source."""
        for f, res in self.track_frames(source, options, **source_options):
            yield f.image, res

    def track_frames(
        self, source: Any, options: PipelineOptions | None = None, **source_options: Any
    ) -> Iterator[tuple[Frame, Result]]:
        """``track`` with each frame's ``okpose.sources.Frame`` (index, time, file name) instead of the bare image;
        the tracker runs on the source's clock (``Frame.time_s``)."""
        from okpose.sources import open_source

        stream = self.stream()
        with open_source(source, **source_options) as src:
            for f in src.frames():
                yield f, self.process(f.image, stream, options=options, timestamp=f.time_s)

    def _detect(
        self,
        image: npt.NDArray[np.uint8],
        stream: Stream | None,
        opts: PipelineOptions,
        now: float,
        to_px: F32,
        wh: tuple[int, int],
    ) -> tuple[Detections, int]:
        """The detector's persons in image pixels; on a stream with tracked persons, also the ones it scores
        below its threshold (down to ``opts.rescue_score``) that continue a track (``second_association``),
        which count as detections at the threshold. Returns them and how many were rescued so."""
        det = self.detector
        live = [] if stream is None else [t for t in stream.tracker.seen_since(stream.last_detect) if t.confirmed]
        if stream is None or not live or not isinstance(det, CandidateDetector) or opts.rescue_score >= det.score:
            found = det(image)
            return Detections(found.xyxy / to_px, found.scores), 0
        threshold = det.score
        found = det.candidates(image, opts.rescue_score)
        xyxy, scores = found.xyxy / to_px, found.scores
        high = np.flatnonzero(scores > threshold)
        low = np.flatnonzero(scores <= threshold)
        predicted = clip_boxes(stream.tracker.predict(live, now)[0], wh)
        taken = low[second_association(predicted, xyxy[high], xyxy[low])]
        keep = np.concatenate([high, taken])
        out_scores = scores[keep].astype(np.float32)
        out_scores[len(high) :] = threshold
        return Detections(xyxy[keep].astype(np.float32), out_scores), len(taken)

    def _tiles(
        self, opts: PipelineOptions, wh: tuple[int, int], scale_xy: tuple[float, float], image: npt.NDArray[np.uint8]
    ) -> npt.NDArray[np.int64]:
        """This frame's tile windows in the pixels the detector sees (none: small frames, ``tiles`` < 2)."""
        win = tile_windows(wh, opts.tiles, TILE_MIN_SIDE)
        return scale_windows(win, scale_xy, (image.shape[1], image.shape[0])) if len(win) else win

    def _tile_detections(self, image: npt.NDArray[np.uint8], windows: npt.ArrayLike, to_px: F32) -> Detections:
        """The detector on each of ``windows`` (decoded pixels), cut persons dropped, merged; in image pixels."""
        found = merge_tiles(image, Detections.empty(), windows, self.detector, self._nms_iou())
        return Detections(found.xyxy / to_px, found.scores)

    def _nms_iou(self) -> float:
        return float(getattr(self.detector, "nms_iou", 0.6))

    def _tiled_stream(
        self,
        image: npt.NDArray[np.uint8],
        stream: Stream,
        opts: PipelineOptions,
        now: float,
        to_px: F32,
        wh: tuple[int, int],
        windows: npt.NDArray[np.int64],
    ) -> tuple[Detections, list[Track | None], bool, int, int]:
        """A large frame of a stream: the whole-frame detector every ``detect_interval`` frames, one tile on the
        frames between (while tiles find small people; paused otherwise), and the tracks kept on every frame
        that no detector box took. Returns the boxes, the track of each (None: a detector box), whether the
        whole-frame detector ran, how many boxes the second association rescued, and the tiles run."""
        interval = opts.detect_interval
        kept = stream.tracks_to_keep(len(windows), interval)
        predicted = self._follow(stream.tracker, kept, now, wh) if kept else Detections.empty()
        turn_come = stream.frame - stream.last_detect >= interval
        whole = turn_come or not kept  # nobody to keep: the whole frame on every frame, as untiled streams do
        dets, rescued, n_tiles = Detections.empty(), 0, 0
        if whole:
            dets, rescued = self._detect(image, stream, opts, now, to_px, wh)
            stream.last_detect = stream.frame
        if stream.tile_due() and (not turn_come or interval == 1):
            turn = stream.tile_turn % len(windows)
            found = self._tile_detections(image, windows[turn : turn + 1], to_px)
            # a tile box that is part of a person the frame has is dropped; one that finds a kept person again
            # (IoU >= 0.5) is that person's detector box (it refreshes the track)
            found = drop_covered(found, np.concatenate([dets.xyxy, predicted.xyxy]), same_iou=0.5)
            heights = found.xyxy[:, 3] - found.xyxy[:, 1]
            stream.tile_ran(bool((heights < SMALL_SHARE * wh[1]).any()), len(windows))
            n_tiles = 1
            dets = union(dets, found, self._nms_iou())
        rows: list[Track | None] = [None] * len(dets)
        if kept:
            free = box_iou(predicted.xyxy, dets.xyxy).max(axis=1) < 0.3 if len(dets) else np.ones(len(kept), bool)
            if free.any():
                dets = Detections(np.concatenate([dets.xyxy, predicted.xyxy[free]]),
                                  np.concatenate([dets.scores, predicted.scores[free]]))  # fmt: skip
                rows += [t for t, f in zip(kept, free.tolist(), strict=True) if f]
        return dets, rows, whole, rescued, n_tiles

    def _follow(self, tracker: PoseFlowTracker, tracks: list[Track], now: float, wh: tuple[int, int]) -> Detections:
        """Crop boxes for a skip frame: each followed track's box moved to this frame's time."""
        boxes = clip_boxes(tracker.predict(tracks, now)[0], wh).astype(np.float32)
        return Detections(boxes, np.array([t.det_score for t in tracks], np.float32))

    def _previous_poses(
        self, tracker: PoseFlowTracker, rows: list[Track | None], xyxy: F32, now: float, runner: TopDown
    ) -> F32:
        """Each crop's previous pose (N, K, 3) in image pixels, zeros where there is none: a crop cut for a
        followed track gets that track's; a detector box the recent track (not followed on this frame) whose
        predicted box overlaps it most (IoU >= 0.3, one box per track). Poses older than the model's
        ``max_age_s`` are not used."""
        assert runner.prior is not None
        out = np.zeros((len(xyxy), runner.spec.num_keypoints, 3), np.float32)
        max_age = runner.prior.max_age_s
        for i, t in enumerate(rows):
            if t is not None and now - t.last_time <= max_age:
                out[i] = t.keypoints
        free = [i for i, t in enumerate(rows) if t is None]
        taken = {t.id for t in rows if t is not None}
        recent = [t for t in tracker.tracks if now - t.last_time <= max_age and t.id not in taken]
        if not recent or not free:
            return out
        iou = box_iou(xyxy[free], tracker.predict(recent, now)[0])
        for _ in range(min(len(free), len(recent))):
            d, r = (int(v) for v in np.unravel_index(int(np.argmax(iou)), iou.shape))
            if iou[d, r] < 0.3:
                break
            out[free[d]] = recent[r].keypoints
            iou[d, :] = -1.0
            iou[:, r] = -1.0
        return out
