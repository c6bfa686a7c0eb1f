"""Wire schemas (JSON) of REST and websocket messages. Depends on nothing in the engine: the engine
builds these from its results, both routes send them (``model_dump_json``), OpenAPI documents them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.options import Options

if TYPE_CHECKING:
    from okpose.pipeline import Result

Keypoint = tuple[float, float, float]


class Person(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)
    box: tuple[float, float, float, float] = Field(
        description="x1, y1, x2, y2 in image pixels, the detector's convention on every frame (on frames where "
        "a stream follows its tracks instead of running the detector, the last detection moved and scaled "
        "with the person's keypoints; client boxes clipped to the image)"
    )
    score: float = Field(
        ge=0, le=1, description="pose quality x sqrt(confidence of the person's latest detection; 1 for client boxes)"
    )
    keypoints: list[Keypoint] = Field(
        description="K x [x, y, score] in image pixels, in the model's schema order; keypoints scoring at or "
        "below keypoint_threshold are [0, 0, 0]; on streams with smoothing on, x and y are One-Euro smoothed"
    )
    track_id: int | None = Field(None, description="per-stream identity (streams only)")


class ModelInfo(BaseModel):
    name: str
    version: str
    input_wh: tuple[int, int]
    keypoints: list[str]
    skeleton: list[tuple[int, int]]
    detector: str


class Timings(BaseModel):
    """Milliseconds per stage of one frame, measured by the engine (the only writer)."""

    queue: float = Field(description="arrival at the engine -> a worker starts the frame")
    decode: float
    detect: float = Field(description="person boxes: detector, client boxes or the stream's tracks")
    crop: float
    pose: float = Field(description="the batched pose network call")
    decode_heatmaps: float
    track: float
    total: float = Field(description="arrival at the engine -> result ready (the sum of the stages above)")


STAGES: tuple[str, ...] = tuple(Timings.model_fields)


class FrameAnswer(BaseModel):
    @classmethod
    def from_result(cls, r: Result) -> FrameAnswer:
        """The wire form of a library result (rounded: pixels to 0.01, boxes 0.1, scores 1e-4, ms 1e-3)."""
        return cls(
            width=r.width,
            height=r.height,
            persons=[Person(**p) for p in r.persons()],
            detector_ran=r.detector_ran,
            timings_ms=Timings(**{k: round(v, 3) for k, v in r.timings_ms.items()}),
            pose_model=r.pose_model,
            video_priors=r.video_priors,
        )

    width: int
    height: int
    persons: list[Person]
    detector_ran: bool
    timings_ms: Timings
    pose_model: str = Field(
        "",
        description="name and version of the pose model that ran on this frame (the video model on video-mode "
        "stream frames, else the per-frame student)",
    )
    video_priors: int = Field(
        0,
        description="video mode: persons whose crop was given their track's previous pose (the others ran the "
        "video model's first-frame path)",
    )


class PoseResponse(FrameAnswer):
    """``POST /pose``."""

    model: ModelInfo


class StreamResult(FrameAnswer):
    """Websocket: the answer to frame ``frame``; ``dropped`` lists ids skipped since the previous message."""

    type: Literal["result"] = "result"
    frame: int
    dropped: list[int] = []


class StreamError(BaseModel):
    """Websocket: a frame (``frame`` set) or a control message (``frame`` null) was refused or failed."""

    type: Literal["error"] = "error"
    error: str
    frame: int | None = None
    dropped: list[int] = []


class Hello(BaseModel):
    type: Literal["hello"] = "hello"
    model: ModelInfo
    video_model: ModelInfo | None = Field(None, description="the model `video_mode` runs (none: video mode is refused)")
    config: Options
    max_frame_bytes: int = Field(description="frames larger than this are refused (error with their id)")


class ErrorResponse(BaseModel):
    """Every REST error (4xx and 503), request validation included."""

    detail: str
