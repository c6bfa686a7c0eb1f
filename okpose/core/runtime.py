"""The one place ONNX Runtime sessions are opened (service, evaluation, labelling, export checks).

onnxruntime is imported lazily so ``okpose.core`` stays importable with numpy and OpenCV alone.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnxruntime as ort

log = logging.getLogger("okpose.core.runtime")

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


def fold_pads_into_convs(model: Any) -> int:  # onnx.ModelProto
    """Zero ``Pad`` -> ``Conv`` pairs become one (asymmetrically) padded Conv, in place: how tf2onnx writes
    NanoDet's explicit padding and how torch exports TF's one-sided "SAME" stride-2 padding (MoveNet
    trunk). Fewer nodes and activation copies, and int8 convolutions that quantisation can fuse.
    Returns how many were folded (pads must be constant initializers: see ``constant_folded``)."""
    import numpy as np
    from onnx import helper, numpy_helper

    g = model.graph
    init = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    consumers: dict[str, list[Any]] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    folded = []
    for n in g.node:
        if n.op_type != "Pad" or n.input[1] not in init:
            continue
        pads = [int(v) for v in init[n.input[1]]]
        value = init.get(n.input[2]) if len(n.input) > 2 and n.input[2] else None
        mode = [a.s for a in n.attribute if a.name == "mode"]
        users = consumers.get(n.output[0], [])
        if (value is not None and float(np.ravel(value)[0]) != 0.0) or (mode and mode[0] != b"constant"):
            continue
        if len(users) != 1 or users[0].op_type != "Conv" or any(pads[i] for i in (0, 1, 4, 5)):
            continue
        conv = users[0]
        old = [a for a in conv.attribute if a.name == "pads"]
        cp = list(old[0].ints) if old else [0, 0, 0, 0]
        for a in old:
            conv.attribute.remove(a)
        merged = [cp[0] + pads[2], cp[1] + pads[3], cp[2] + pads[6], cp[3] + pads[7]]
        conv.attribute.append(helper.make_attribute("pads", merged))
        conv.input[0] = n.input[0]
        folded.append(n)
    for n in folded:
        g.node.remove(n)
    return len(folded)


def constant_folded(path: str | Path) -> Any:  # onnx.ModelProto
    """``path`` after ONNX Runtime's basic (standard-op) graph optimisations: constant folding turns the
    shape arithmetic torch exports around ``F.pad`` into constant pads. Metadata is kept."""
    import tempfile

    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        opts.optimized_model_filepath = str(Path(tmp) / "basic.onnx")
        ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        model = onnx.load(opts.optimized_model_filepath)
    source = onnx.load(str(path))
    del model.metadata_props[:]
    for p in source.metadata_props:
        model.metadata_props.add(key=p.key, value=p.value)
    model.producer_name = source.producer_name
    return model
