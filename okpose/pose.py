"""The pose model: an ONNX student whose spec (input size, normalisation, keypoint schema) is read
from its own metadata, run by ``okpose.core.topdown.TopDown`` (one batched call per frame)."""

from __future__ import annotations

from pathlib import Path

from okpose.core.runtime import ModelLoadError, open_session
from okpose.core.spec import ModelSpec
from okpose.core.topdown import TopDown


def load_pose_model(path: str | Path, providers: str = "auto", threads: int = 0, flip_test: bool = False) -> TopDown:
    session = open_session(path, providers, threads)
    try:
        spec = ModelSpec.from_metadata(session.get_modelmeta().custom_metadata_map)
    except (ValueError, KeyError) as e:
        raise ModelLoadError(f"{path}: {e}") from e
    return TopDown.from_session(session, spec, flip_test)
