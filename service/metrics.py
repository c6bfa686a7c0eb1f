"""Prometheus metrics, owned by the engine (no import-time global registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from service.schemas import STAGES, FrameAnswer

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.033, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.stage_latency = Histogram(
            "pose_stage_latency_seconds",
            f"Per-stage latency of one frame (stages: {', '.join(STAGES)})",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.frames = Counter("pose_frames_total", "Frames by outcome", ["source", "outcome"], registry=r)
        self.errors = Counter("pose_errors_total", "Errors by kind", ["kind"], registry=r)
        self.active_streams = Gauge("pose_active_streams", "Open websocket streams", registry=r)
        self.persons = Histogram(
            "pose_persons_per_frame", "Persons per processed frame", buckets=(0, 1, 2, 3, 4, 6, 8, 12, 20), registry=r
        )
        self.requests = Counter("pose_http_requests_total", "HTTP requests", ["route", "status"], registry=r)
        self.detector_runs = Counter("pose_detector_runs_total", "Detector invocations", registry=r)

    def observe(self, answer: FrameAnswer) -> None:
        """Book one processed frame: stage latencies, persons, detector runs."""
        for stage, ms in answer.timings_ms.model_dump().items():
            self.stage_latency.labels(stage).observe(ms / 1e3)
        self.persons.observe(len(answer.persons))
        if answer.detector_ran:
            self.detector_runs.inc()
