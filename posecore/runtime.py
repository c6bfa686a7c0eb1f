"""The one place ONNX Runtime sessions are opened (service, evaluation, labelling, export checks).

onnxruntime is imported lazily so ``posecore`` stays importable with numpy and OpenCV alone.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnxruntime as ort

log = logging.getLogger("posecore.runtime")

PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


class ModelLoadError(RuntimeError):
    """A model file is missing or unreadable; the message names the file."""


def _tensorrt_libs_present() -> bool:
    """onnxruntime-gpu lists TensorRT whether or not libnvinfer is installed; only use it if it is."""
    import ctypes.util

    return ctypes.util.find_library("nvinfer") is not None


def choose_providers(setting: str = "auto") -> list[str]:
    """``auto``: TensorRT (when its libraries are installed), CUDA, CPU, whichever are present;
    otherwise a comma list that must all be available."""
    import onnxruntime as ort

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


def open_session(path: str | Path, providers: str = "cpu", threads: int = 0) -> ort.InferenceSession:
    """An optimised session for ``path``; ``providers`` is ``cpu``, ``auto`` or a comma list.

    threads: intra-op threads (0 = ONNX Runtime's default). Idle workers never spin-wait: the detector
    and pose sessions alternate on the same cores, and spinning workers of one steal the CPU the other
    needs (measured: 2-3x slower stages).
    """
    import onnxruntime as ort

    p = Path(path)
    if not p.is_file():
        raise ModelLoadError(f"model file not found: {p}")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    chosen = ["CPUExecutionProvider"] if providers == "cpu" else choose_providers(providers)
    try:
        sess = ort.InferenceSession(str(p), opts, providers=chosen)
    except Exception as e:  # noqa: BLE001 - ORT raises several unrelated types for a bad file
        raise ModelLoadError(f"cannot load model {p}: {e}") from e
    log.info("loaded %s with providers %s", p.name, sess.get_providers())
    return sess


def metadata(path: str | Path) -> dict[str, str]:
    """The model's custom metadata (its spec lives there)."""
    return dict(open_session(path).get_modelmeta().custom_metadata_map)


def quantize_qdq(src: str | Path, out: str | Path, feeds: list[dict[str, Any]], op_types: list[str]) -> None:
    """Static int8 quantisation as every shipped model gets it: QDQ, per-channel int8 weights, uint8
    activations calibrated on ``feeds`` (one input dict per calibration sample); ``op_types`` quantised."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):  # type: ignore[misc]  # untyped base
        def __init__(self) -> None:
            self.items = iter(feeds)

        def get_next(self) -> dict[str, Any] | None:
            return next(self.items, None)

    quantize_static(
        str(src),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=op_types,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
