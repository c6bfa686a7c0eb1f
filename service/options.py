"""Per-frame options: one frozen, validated type; bounds declared once (the ``Annotated`` aliases below).

``Settings`` declares the server-wide defaults with these aliases, ``Options.from_settings`` builds the
default options, and a request (REST query) or a websocket ``config`` message changes them with
``OptionsUpdate`` (every field optional, same bounds) applied by ``Options.updated`` -> a new object.
"""

from __future__ import annotations

from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

KeypointThreshold = Annotated[
    float,
    Field(ge=0.0, le=1.0, description="keypoints scoring at or below this come back as [0, 0, 0], unused in tracking"),
]
PoseScoreThreshold = Annotated[float, Field(ge=0.0, le=1.0, description="persons scoring below this are not returned")]
MaxPersons = Annotated[int, Field(ge=1, le=200, description="at most this many persons per frame (best scores first)")]
DetectInterval = Annotated[
    int, Field(ge=1, le=300, description="streams: run the detector every k-th frame, follow the tracks in between")
]
Smoothing = Annotated[bool, Field(description="streams: One-Euro smoothing of the returned keypoints")]
RescueScore = Annotated[
    float,
    Field(
        ge=0.0,
        le=1.0,
        description="streams: detections scoring from this up to the detector's threshold are kept where they "
        "continue a tracked person (ByteTrack's second association); at or above the detector's threshold: off",
    ),
]
Tiles = Annotated[
    int,
    Field(
        ge=0,
        le=6,
        description="frames with a long side of 1280 px or more: the detector also runs on an N x N grid of "
        "overlapping tiles, for small people (streams: one tile per frame in turn, paused while tiles find no "
        "small person; single images: every tile); 0 or 1: off",
    ),
]
VideoMode = Annotated[
    bool,
    Field(
        description="streams: run the video model (POSE_VIDEO_MODEL), which also reads each tracked person's previous "
        "pose; persons without a recent one get its first-frame path. Off by default: docs/video.md"
    ),
]


class _Defaults(Protocol):
    keypoint_threshold: float
    pose_score_threshold: float
    max_persons: int
    detect_interval: int
    smoothing: bool
    video_mode: bool
    rescue_score: float
    tiles: int


class Options(BaseModel):
    """What one frame is processed with; immutable (a stream swaps in a new object between frames)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    keypoint_threshold: KeypointThreshold
    pose_score_threshold: PoseScoreThreshold
    max_persons: MaxPersons
    detect_interval: DetectInterval
    smoothing: Smoothing
    video_mode: VideoMode
    rescue_score: RescueScore
    tiles: Tiles

    @classmethod
    def from_settings(cls, s: _Defaults) -> Options:
        return cls(**{name: getattr(s, name) for name in cls.model_fields})

    def updated(self, update: OptionsUpdate) -> Options:
        """A new ``Options`` with the fields ``update`` sets (already validated by its bounds)."""
        return self.model_copy(update=update.changes())


class OptionsUpdate(BaseModel):
    """The changeable subset, every field optional (None = keep)."""

    model_config = ConfigDict(extra="forbid")
    keypoint_threshold: KeypointThreshold | None = None
    pose_score_threshold: PoseScoreThreshold | None = None
    max_persons: MaxPersons | None = None
    detect_interval: DetectInterval | None = None
    smoothing: Smoothing | None = None
    video_mode: VideoMode | None = None
    rescue_score: RescueScore | None = None
    tiles: Tiles | None = None

    def changes(self) -> dict[str, Any]:
        """The option fields set (subclasses may carry other fields: those are not options)."""
        return {k: v for k in OptionsUpdate.model_fields if (v := getattr(self, k)) is not None}


class RestOptions(BaseModel):
    """``POST /pose`` query parameters: the per-image options (stream-only ones make no sense there)."""

    model_config = ConfigDict(extra="forbid")
    keypoint_threshold: KeypointThreshold | None = None
    pose_score_threshold: PoseScoreThreshold | None = None
    max_persons: MaxPersons | None = None
    boxes: str | None = Field(
        None, description="JSON list of [x1, y1, x2, y2] in image pixels; skips the detector (multipart field too)"
    )

    def update(self) -> OptionsUpdate:
        return OptionsUpdate(**self.model_dump(exclude_none=True, exclude={"boxes"}))
