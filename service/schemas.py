"""Wire schemas (JSON) for REST and websocket responses."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from posecore.spec import ModelSpec
from service.pipeline import FrameResult


class Person(BaseModel):
    box: list[float] = Field(description="x1, y1, x2, y2 in image pixels")
    score: float
    keypoints: list[list[float]] = Field(description="K x [x, y, score] in image pixels, schema order")
    track_id: int | None = None


class ModelInfo(BaseModel):
    name: str
    version: str
    input_wh: tuple[int, int]
    keypoints: list[str]
    skeleton: list[tuple[int, int]]
    detector: str


class PoseResponse(BaseModel):
    width: int
    height: int
    persons: list[Person]
    timings_ms: dict[str, float]
    model: ModelInfo


class ErrorResponse(BaseModel):
    detail: str


def model_info(spec: ModelSpec, detector: str) -> ModelInfo:
    return ModelInfo(
        name=spec.name, version=spec.version, input_wh=spec.input_wh, keypoints=list(spec.keypoint_names),
        skeleton=list(spec.limbs), detector=detector,
    )  # fmt: skip


def persons_json(result: FrameResult) -> list[dict[str, object]]:
    """Plain dicts (fast path for the websocket; the REST route validates through ``Person``)."""
    p = result.poses
    out: list[dict[str, object]] = []
    kps = np.round(p.keypoints.astype(np.float64), 2).tolist()
    boxes = np.round(p.boxes.astype(np.float64), 1).tolist()
    for i in range(len(p)):
        d: dict[str, object] = {"box": boxes[i], "score": round(float(p.scores[i]), 4), "keypoints": kps[i]}
        if result.track_ids is not None:
            d["track_id"] = int(result.track_ids[i])
        out.append(d)
    return out
