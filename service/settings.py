"""Service settings from environment variables (prefix ``POSE_``); invalid values fail at startup."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from okpose.assets import DEFAULT_DETECTOR_MODEL, DEFAULT_POSE_MODEL, DEFAULT_VIDEO_MODEL
from okpose.detect import DetectorConfig
from okpose.imageio import DECODE_MIN_SIDE, MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS
from okpose.pipeline import PipelineOptions
from service.options import (
    DetectInterval,
    KeypointThreshold,
    MaxPersons,
    PoseScoreThreshold,
    RescueScore,
    Smoothing,
    Tiles,
    VideoMode,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
__all__ = ["DEFAULT_DETECTOR_MODEL", "DEFAULT_POSE_MODEL", "DEFAULT_VIDEO_MODEL", "REPO_ROOT", "Settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POSE_", env_file=None, extra="ignore")

    host: str = "0.0.0.0"
    port: int = Field(8000, ge=1, le=65535)
    log_level: str = "info"

    pose_model: Path = DEFAULT_POSE_MODEL
    # video mode (streams that ask for it, or all with video_mode=true): a model with a previous-pose input
    # (`python -m trainer video`); empty = none (a stream asking for video mode then gets an error)
    video_model: str = str(DEFAULT_VIDEO_MODEL)
    # detector: auto = what the file says it is (an ONNX with a NanoDet spec in its metadata ->
    # NanoDet, any other ONNX -> Ultralytics YOLO export, .pt -> Ultralytics); HOG only when the
    # file is missing (logged as an error) or when asked for
    detector: Literal["auto", "nanodet", "yolo-onnx", "ultralytics", "hog"] = "auto"
    detector_model: str = str(DEFAULT_DETECTOR_MODEL)
    detector_input: int | None = Field(None, ge=64, le=1920)  # long side; None = the model's own spec (YOLO: 320)
    # chosen on realpose-lab train (at 416: recall 0.990, precision 0.894)
    detector_score: float = Field(DetectorConfig.score, ge=0.0, le=1.0)
    detector_nms_iou: float = Field(0.6, gt=0.0, le=1.0)
    hog_max_side: int = Field(480, ge=128, le=4096)
    # an in-process detector plugin, "module:callable" returning an object with okpose.detect.Detector's call
    # (image -> Detections); when set, it replaces the detector* settings above
    detector_factory: str = Field("", pattern=r"^$|^[\w.]+:\w+$")
    providers: str = "auto"  # auto | comma list, e.g. "CUDAExecutionProvider,CPUExecutionProvider"
    threads: int = Field(2, ge=0, le=256)  # ONNX Runtime intra-op threads per session (0 = ORT default)
    workers: int = Field(2, ge=1, le=64)  # frames processed concurrently (thread pool)
    # cross-stream micro-batching: crops of frames processed at the same time share one pose call, the
    # first waiting up to this long for the others (0 = off; on a GPU try 2-5 ms with workers >= 4)
    batch_window_ms: float = Field(0.0, ge=0.0, le=50.0)

    require_gpu: bool = False  # refuse to start unless both sessions run on the CUDA (or TensorRT) provider

    # defaults of the per-frame options (bounds: service.options); requests and streams may change them
    detect_interval: DetectInterval = PipelineOptions.detect_interval
    keypoint_threshold: KeypointThreshold = PipelineOptions.keypoint_threshold
    pose_score_threshold: PoseScoreThreshold = PipelineOptions.pose_score_threshold
    max_persons: MaxPersons = PipelineOptions.max_persons
    smoothing: Smoothing = PipelineOptions.smoothing
    # off: video mode did not beat the per-frame student (docs/video.md)
    video_mode: VideoMode = PipelineOptions.video_mode
    rescue_score: RescueScore = PipelineOptions.rescue_score
    tiles: Tiles = PipelineOptions.tiles
    flip_test: bool = False

    max_image_bytes: int = Field(MAX_IMAGE_BYTES, ge=1024, le=256 * 1024 * 1024)
    # JPEGs with a long side of at least 2x this are decoded at 1/2, 1/4 or 1/8 scale (never below it);
    # 0 = always full resolution. Results are in the image's own pixels either way.
    decode_min_side: int = Field(DECODE_MIN_SIDE, ge=0, le=8192)
    max_image_pixels: int = Field(MAX_IMAGE_PIXELS, ge=64 * 64)
    max_fps: float = Field(60.0, gt=0)  # per stream; faster frames are dropped (and reported)
    max_streams: int = Field(32, ge=1)
    max_streams_per_client: int = Field(4, ge=1)
    max_requests_per_client: int = Field(4, ge=1)  # concurrent POST /pose per client address (429 beyond)
    send_timeout_s: float = Field(10.0, gt=0)  # a stream whose client stops reading is closed after this
    shutdown_grace_s: float = Field(5.0, ge=0)  # SIGTERM: time for streams to answer in-flight frames
    allowed_origins: str = "*"  # comma list for CORS and websocket Origin checks
    # comma list of proxy addresses whose X-Forwarded-For / X-Forwarded-Proto are believed ("*" = any);
    # empty = none: per-client limits then count the connecting address
    trusted_proxies: str = ""
    api_key: SecretStr | None = None

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, v: object) -> object:
        return None if v in ("", None) else v

    @property
    def origins(self) -> list[str]:
        return [o.strip() for o in self.allowed_origins.split(",") if o.strip()]

    @property
    def proxies(self) -> list[str]:
        return [o.strip() for o in self.trusted_proxies.split(",") if o.strip()]

    @property
    def ws_max_message_bytes(self) -> int:
        """The websocket transport limit: frames up to twice the image limit are read and answered
        with an error naming their id; larger ones close the connection (1009) unread."""
        return 2 * self.max_image_bytes + 64 * 1024
