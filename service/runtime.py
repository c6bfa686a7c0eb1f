"""ONNX Runtime sessions: provider choice (TensorRT/CUDA when present, CPU otherwise) and threads."""

from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime as ort

log = logging.getLogger("service.runtime")

PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


class ModelLoadError(RuntimeError):
    """A model file is missing or unreadable; the message names the file."""


def _tensorrt_libs_present() -> bool:
    """onnxruntime-gpu lists TensorRT whether or not libnvinfer is installed; only use it if it is."""
    import ctypes.util

    return ctypes.util.find_library("nvinfer") is not None


def choose_providers(setting: str) -> list[str]:
    available = ort.get_available_providers()
    if setting == "auto":
        usable = [p for p in PREFERRED if p in available]
        if "TensorrtExecutionProvider" in usable and not _tensorrt_libs_present():
            usable.remove("TensorrtExecutionProvider")
        return usable or ["CPUExecutionProvider"]
    wanted = [p.strip() for p in setting.split(",") if p.strip()]
    missing = [p for p in wanted if p not in available]
    if missing:
        raise ModelLoadError(f"providers {missing} not available (available: {available})")
    return wanted


def open_session(path: str | Path, providers: str = "auto", threads: int = 0) -> ort.InferenceSession:
    p = Path(path)
    if not p.is_file():
        raise ModelLoadError(f"model file not found: {p}")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    # the detector and pose sessions alternate on the same cores: idle ORT workers that spin-wait
    # after each run steal the CPU the other session needs (measured: 2-3x slower stages)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        sess = ort.InferenceSession(str(p), opts, providers=choose_providers(providers))
    except ModelLoadError:
        raise
    except Exception as e:  # noqa: BLE001 - ORT raises several unrelated types for a bad file
        raise ModelLoadError(f"cannot load model {p}: {e}") from e
    log.info("loaded %s with providers %s", p.name, sess.get_providers())
    return sess
