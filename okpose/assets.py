"""Where the embedded models live: ``okpose.models`` (the repository's ``models/`` folder, shipped in the wheel)."""

from __future__ import annotations

from pathlib import Path


def model_dir() -> Path:
    """The folder of the embedded ONNX models and their cards: ``okpose/models`` in an installed wheel (the
    package-dir mapping of pyproject.toml), else the source checkout's ``models/``. (Not importlib.resources:
    ``okpose.models`` is a namespace package there, which an editable install and a second copy on the path
    turn into a MultiplexedPath that is no folder.)"""
    here = Path(__file__).resolve().parent
    installed = here / "models"
    return installed if installed.is_dir() else here.parent / "models"


MODELS = model_dir()
DEFAULT_POSE_MODEL = MODELS / "okpose-movenet.onnx"
DEFAULT_DETECTOR_MODEL = MODELS / "nanodet-coco-int8.onnx"
DEFAULT_VIDEO_MODEL = MODELS / "okdhp-movenet-video-int8.onnx"
