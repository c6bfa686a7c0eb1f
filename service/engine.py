"""Everything loaded once at startup (models, pipeline, pools, limits), held by the app."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from service.detector import build_detector
from service.metrics import Metrics
from service.pipeline import Options, Pipeline, StreamState
from service.pose import PoseEstimator
from service.schemas import ModelInfo, model_info, persons_json
from service.security import StreamLimiter
from service.settings import Settings

log = logging.getLogger("service")


@dataclass
class Engine:
    settings: Settings
    pipeline: Pipeline
    metrics: Metrics
    executor: ThreadPoolExecutor
    limiter: StreamLimiter
    started: float
    rest_limiter: StreamLimiter
    # set on SIGTERM: streams finish their in-flight frame, say goodbye and close (1001)
    draining: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def load(cls, settings: Settings) -> Engine:
        """Load models (fails loudly, naming the file) and warm them up."""
        pose = PoseEstimator(settings.pose_model, settings.providers, settings.threads, settings.flip_test)
        detector = build_detector(settings)
        log.info("pose model: %s %s (%s)", pose.spec.name, pose.spec.version, settings.pose_model)
        log.info("detector backend: %s", detector.name)
        pipeline = Pipeline(settings, detector, pose)
        engine = cls(
            settings=settings, pipeline=pipeline, metrics=Metrics(),
            executor=ThreadPoolExecutor(settings.workers, thread_name_prefix="pose"),
            limiter=StreamLimiter(settings.max_streams, settings.max_streams_per_client), started=time.time(),
            rest_limiter=StreamLimiter(64 * settings.workers, settings.max_requests_per_client),
        )  # fmt: skip
        engine.warmup()
        return engine

    def warmup(self) -> None:
        import numpy as np

        img = np.zeros((240, 320, 3), np.uint8)
        self.pipeline.pose(img, np.array([[100, 40, 200, 220]], np.float32))
        self.pipeline.detector(img)

    def answer(
        self, data: bytes, opts: Options, state: StreamState | None = None, boxes: npt.NDArray[np.float32] | None = None
    ) -> dict[str, Any]:
        """One image's answer (CPU-bound, run it in ``executor``): decode, pipeline, JSON-ready persons.

        Timings are in ms and unrounded; ``ImageError`` propagates for the caller to report.
        """
        t0 = time.perf_counter()
        image = self.pipeline.decode(data)
        res = self.pipeline.process(image, opts, state, boxes, (time.perf_counter() - t0) * 1e3)
        if res.detector_ran:
            self.metrics.detector_runs.inc()
        t1 = time.perf_counter()
        persons = persons_json(res)
        res.timings_ms["serialize"] = (time.perf_counter() - t1) * 1e3
        return {"width": res.width, "height": res.height, "persons": persons, "detector_ran": res.detector_ran,
                "timings_ms": res.timings_ms}  # fmt: skip

    @property
    def info(self) -> ModelInfo:
        return model_info(self.pipeline.pose.spec, self.pipeline.detector.name)

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=False)
