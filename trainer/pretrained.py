"""COCO-pretrained features for the student: the early stages of the shipped NanoDet detector.

No ImageNet torch weights exist offline; NanoDet's backbone (Apache-2.0) is the only
COCO-trained feature extractor at hand. Its ONNX graph is cut after the stride-4, -8 and -16
stages (``onnx.utils.extract_model``) and turned into a trainable torch module by ``onnx2torch``
(identical outputs). Input: float (N, 3, H, W), BGR, ImageNet mean/std (the detector's own
normalisation, see ``NANODET_MEAN`` / ``NANODET_STD``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from torch import nn

NANODET_MEAN = (103.53, 116.28, 123.675)  # BGR order, 0-255
NANODET_STD = (57.375, 57.12, 58.395)
NANODET_ONNX = Path(__file__).resolve().parents[1] / "models" / "nanodet-coco-fp32.onnx"


def _stage_outputs(model) -> tuple[str, list[str]]:  # noqa: ANN001 - onnx.ModelProto
    """(normalised-image tensor, [stride-4, stride-8, stride-16 stage outputs]).

    The stage outputs are the inputs of the stride-2 convolutions after the first one (which
    takes the normalised image); found by structure, not by tensor name."""
    stride2 = [
        n for n in model.graph.node
        if n.op_type == "Conv" and any(a.name == "strides" and list(a.ints) == [2, 2] for a in n.attribute)
    ]  # fmt: skip
    if len(stride2) < 4:
        raise ValueError(f"expected at least 4 stride-2 convolutions, found {len(stride2)}")
    return stride2[0].input[0], [n.input[0] for n in stride2[1:4]]


def nanodet_encoder(path: Path = NANODET_ONNX) -> nn.Module:
    """Trainable module: (N, 3, H, W) normalised BGR -> [c4 (N,64,H/4,W/4), c8 (N,128,..), c16 (N,256,..)]."""
    import onnx
    import onnx.utils
    from onnx2torch import convert

    model = onnx.load(str(path))
    image, outs = _stage_outputs(model)
    with tempfile.TemporaryDirectory() as tmp:
        sub = Path(tmp) / "encoder.onnx"
        onnx.utils.extract_model(str(path), str(sub), [image], outs)
        return convert(str(sub))
