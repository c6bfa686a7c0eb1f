"""The engine: the library's ``okpose.Pipeline`` plus what a web service adds — decoding with limits, a worker
pool, stream limits, cross-stream micro-batching and metrics — loaded once; the one frame path both routes await.

``Engine.run`` (async) hands a frame's bytes to a worker thread, where ``Engine.process`` decodes them and runs
``Pipeline.process`` (person boxes -> batched pose -> scores -> track, timed per stage on one ``Stopwatch``), then
turns the ``Result`` into the wire's ``FrameAnswer``; ``run`` does all the metrics bookkeeping. Detector and pose
runner are constructor arguments (tests and the benchmark inject their own instead of patching).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numpy as np
import numpy.typing as npt

from okpose.core.runtime import GPU_PROVIDERS, ModelLoadError
from okpose.core.topdown import TopDown
from okpose.detect import Detector, DetectorConfig, build_detector
from okpose.imageio import ImageError
from okpose.pipeline import BoxError, Pipeline, PipelineOptions, Stopwatch, Stream
from okpose.pose import load_pose_model
from okpose.track import TrackerConfig
from service.batching import MicroBatcher
from service.metrics import Metrics
from service.options import Options
from service.schemas import FrameAnswer, ModelInfo
from service.security import StreamLimiter
from service.settings import Settings

log = logging.getLogger("service")
Source = Literal["rest", "stream"]
StreamState = Stream  # a stream's per-connection state is the library's
__all__ = ["BoxError", "Engine", "StreamState"]


class Engine:
    def __init__(
        self,
        settings: Settings,
        detector: Detector,
        pose: TopDown,
        tracker: TrackerConfig | None = None,
        video: TopDown | None = None,
    ):
        if settings.video_mode and video is None:
            raise ModelLoadError("POSE_VIDEO_MODE is on but no video model is loaded (POSE_VIDEO_MODEL)")
        # the frame path is the library's; the engine adds decoding, limits, pools, batching and metrics
        self.pipeline = Pipeline(pose, detector, video=video or False, tracker=tracker, warmup=False)
        self.detector, self.pose, self.video = detector, pose, self.pipeline.video
        self.defaults = Options.from_settings(settings)
        self.max_image_bytes, self.max_image_pixels = settings.max_image_bytes, settings.max_image_pixels
        self.decode_min_side = settings.decode_min_side
        window = settings.batch_window_ms / 1e3
        self.batcher = MicroBatcher(pose.infer, window) if window else None
        self.video_batcher = MicroBatcher(video.infer, window) if window and video is not None else None
        if self.batcher is not None:
            self.pipeline.pose_infer = self.batcher
        if self.video_batcher is not None:
            self.pipeline.video_infer = self.video_batcher
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
        if detector is None and settings.detector_factory:
            detector = load_detector_factory(settings.detector_factory)
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
        return self.pipeline.stream()

    def warmup(self) -> None:
        self.pipeline.warmup()

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
        clock = Stopwatch(arrived)
        clock.lap("queue")
        result = self.pipeline.process_bytes(
            data,
            stream,
            boxes,
            PipelineOptions(**opts.model_dump()),
            max_bytes=self.max_image_bytes,
            max_pixels=self.max_image_pixels,
            decode_min_side=self.decode_min_side,
            clock=clock,
        )
        return FrameAnswer.from_result(result)

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=False)


def load_detector_factory(spec: str) -> Detector:
    """``module:callable`` -> the detector it returns (``POSE_DETECTOR_FACTORY``); failures name the plugin."""
    import importlib

    module, _, name = spec.partition(":")
    try:
        detector = getattr(importlib.import_module(module), name)()
    except Exception as e:  # noqa: BLE001 - any plugin failure is a startup error naming it
        raise ModelLoadError(f"detector factory {spec}: {type(e).__name__}: {e}") from e
    if not callable(detector):
        raise ModelLoadError(f"detector factory {spec} returned {type(detector).__name__}, not a detector")
    return detector  # type: ignore[no-any-return]


def model_info(model: TopDown, detector: str) -> ModelInfo:
    s = model.spec
    return ModelInfo(name=s.name, version=s.version, input_wh=s.input_wh, keypoints=list(s.keypoint_names),
                     skeleton=list(s.limbs), detector=detector)  # fmt: skip
