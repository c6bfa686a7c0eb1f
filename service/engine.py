"""Everything loaded once at startup (models, pipeline, pools, limits), held by the app."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from service.detector import build_detector
from service.metrics import Metrics
from service.pipeline import Pipeline
from service.pose import PoseEstimator
from service.schemas import ModelInfo, model_info
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

    @property
    def info(self) -> ModelInfo:
        return model_info(self.pipeline.pose.spec, self.pipeline.detector.name)

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=False)
