"""Where the embedded models live: ``okpose.models`` (the repository's ``models/`` folder, shipped in the wheel)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def model_dir() -> Path:
    """The folder of the embedded ONNX models and their cards (installed wheel or source checkout)."""
    try:
        return Path(str(files("okpose.models")))
    except ModuleNotFoundError:  # pragma: no cover - a source tree run without installing
        return Path(__file__).resolve().parents[1] / "models"


MODELS = model_dir()
DEFAULT_POSE_MODEL = MODELS / "okdhp-movenet-int8.onnx"
DEFAULT_DETECTOR_MODEL = MODELS / "nanodet-coco-int8.onnx"
DEFAULT_VIDEO_MODEL = MODELS / "okdhp-movenet-video-int8.onnx"
