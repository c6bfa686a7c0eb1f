"""End to end on real data (a few images): train 2 epochs, resume, evaluate, export, load in ORT, DDP."""

import json
import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest

from okpose.core.spec import ModelSpec
from trainer.__main__ import main

TINY = [
    "data.max_train=8",
    "data.max_val=4",
    "data.input_wh=[48,64]",
    "optim.batch_size=4",
    "model.width=16",
    "train.threads=1",
    "optim.warmup_iters=2",
]


def _args(root, out, name, *extra):
    return [
        "train",
        "--config",
        "trainer/configs/litehg_cmp.yaml",
        f"data.root={root}",
        f"train.out_dir={out}",
        f"train.name={name}",
        *TINY,
        *extra,
    ]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, data_root):
    out = tmp_path_factory.mktemp("runs")
    assert main(_args(data_root, out, "smoke", "optim.epochs=2")) == 0
    return out / "smoke"


def test_train_writes_metrics_log_and_checkpoints(smoke_run):
    metrics = json.loads((smoke_run / "metrics.json").read_text())["metrics"]
    assert set(metrics) == {"b0", "b1", "b2", "ensemble"}
    assert all(0.0 <= m["AP"] <= 1.0 for m in metrics.values())
    rows = (smoke_run / "log.csv").read_text().strip().splitlines()
    assert len(rows) == 3 and "kl" in rows[0] and "mse_b0" in rows[0]
    assert (smoke_run / "final.pt").exists() and (smoke_run / "last.pt").exists()


def test_resume_continues_from_checkpoint(smoke_run, data_root):
    out = smoke_run.parent
    assert main(_args(data_root, out, "smoke", "optim.epochs=3", f"train.resume={smoke_run / 'last.pt'}")) == 0
    rows = (smoke_run / "log.csv").read_text().strip().splitlines()
    assert rows[-1].split(",")[0] == "2"  # only epoch index 2 was added


def test_export_loads_in_onnxruntime_with_spec(smoke_run, tmp_path, capsys, data_root):
    onnx_path = tmp_path / "student.onnx"
    assert (
        main(["export", "--checkpoint", str(smoke_run / "final.pt"), "--out", str(onnx_path), "--branch", "best"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["max_abs_diff"] < 1e-4 and 0 <= report["branch"] < 3
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    spec = ModelSpec.from_metadata(sess.get_modelmeta().custom_metadata_map)
    assert spec.input_wh == (48, 64) and spec.num_keypoints == 17 and spec.extra["branch"] == str(report["branch"])
    out = sess.run(None, {"input": np.zeros((5, 3, 64, 48), np.float32)})[0]
    assert out.shape == (5, 17, 16, 12)  # dynamic batch
    assert main(["evaluate", "--onnx", str(onnx_path), f"data.root={data_root}", "data.max_val=4"]) == 0
    assert "AP" in capsys.readouterr().out


def test_ddp_two_processes_gloo(tmp_path, data_root):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29533",
        "-m",
        "trainer",
        *_args(data_root, tmp_path, "ddp", "optim.epochs=1"),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "ddp" / "final.pt").exists()


def test_quantize_keeps_the_spec_and_the_outputs(smoke_run, tmp_path, capsys, data_root):
    """`trainer quantize`: an int8 (QDQ) graph with the same spec, close to the float model on real crops."""
    import onnx

    from trainer.quantize import quantize_student

    fp32, int8 = tmp_path / "s.onnx", tmp_path / "s-int8.onnx"
    assert main(["export", "--checkpoint", str(smoke_run / "final.pt"), "--out", str(fp32)]) == 0
    capsys.readouterr()
    n = quantize_student(
        fp32, int8, data_root / "annotations" / "person_keypoints_train.json", data_root / "images", 100
    )
    assert n == 12  # every 100th of the 1170 train persons
    ops = {node.op_type for node in onnx.load(str(int8)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    a = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    spec_a = ModelSpec.from_metadata(a.get_modelmeta().custom_metadata_map)
    spec_b = ModelSpec.from_metadata(b.get_modelmeta().custom_metadata_map)
    assert spec_b.input_wh == spec_a.input_wh and spec_b.version == spec_a.version
    assert spec_b.extra["precision"].startswith("int8") and "precision" not in spec_a.extra
    # real val crops (the calibration saw train crops)
    import cv2

    from okpose.core.topdown import normalize_crops, prepare_crops
    from trainer.data import load_coco

    recs = load_coco(data_root / "annotations" / "person_keypoints_val.json", data_root / "images")[::20]
    x = np.concatenate(
        [
            normalize_crops(prepare_crops(cv2.imread(r.image_path), np.asarray([r.box_xyxy]), spec_a)[0], spec_a)
            for r in recs
        ]
    )
    ref, got = a.run(None, {"input": x})[0], b.run(None, {"input": x})[0]
    # a 2-epoch model's heatmaps are nearly flat, so compare the whole maps, not single extremes
    assert np.corrcoef(ref.ravel(), got.ravel())[0, 1] > 0.9
    assert np.abs(ref - got).mean() < 0.1 * (ref.max() - ref.min())


def test_movenet_student_trains_exports_without_pads_and_quantizes(tmp_path, capsys, data_root):
    """The shipped family end to end on real frames: a few OKDHP steps on the MoveNet trunk, export (the
    one-sided "SAME" pads folded into the convolutions, torch == ONNX Runtime, RGB [-1, 1] spec and the
    inherited weights' source in the metadata), then int8 through the symbolic-shape-inference fallback."""
    import onnx

    from trainer.quantize import quantize_student

    args = [
        "train",
        "--config",
        "trainer/configs/movenet_student.yaml",
        f"data.root={data_root}",
        f"train.out_dir={tmp_path}",
        "train.name=mn",
        "train.mode=okdhp",
        "data.max_train=8",
        "data.max_val=4",
        "data.extra_train=[]",
        "augment.backgrounds=",  # no opencv-doc photos needed
        "optim.batch_size=4",
        "optim.epochs=1",
        "optim.warmup_iters=1",
        "train.eval_every=0",
    ]
    assert main(args) == 0
    capsys.readouterr()
    fp32, int8 = tmp_path / "mn.onnx", tmp_path / "mn-int8.onnx"
    assert main(["export", "--checkpoint", str(tmp_path / "mn" / "final.pt"), "--out", str(fp32)]) == 0
    assert json.loads(capsys.readouterr().out)["max_abs_diff"] < 1e-4
    model = onnx.load(str(fp32))
    ops = {n.op_type for n in model.graph.node}
    assert "Pad" not in ops and "Sigmoid" in ops
    assert any(len(set(a.ints[:2]) | set(a.ints[2:])) > 1 for n in model.graph.node for a in n.attribute
               if n.op_type == "Conv" and a.name == "pads")  # fmt: skip  # one-sided pads now live in the convs
    sess = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    spec = ModelSpec.from_metadata(sess.get_modelmeta().custom_metadata_map)
    assert spec.input_wh == (128, 192) and spec.color == "rgb" and spec.mean == (127.5,) * 3
    assert "MoveNet" in spec.extra["pretrained"] and spec.extra["arch"] == "movenet"
    out = sess.run(None, {"input": np.zeros((2, 3, 192, 128), np.float32)})[0]
    assert out.shape == (2, 17, 48, 32) and out.min() >= 0.0 and out.max() <= 1.0  # sigmoid heatmaps
    from pathlib import Path

    scratch = set(Path.cwd().glob("*.data")) | set(Path.cwd().glob("sym_shape_infer_temp.onnx"))
    quantize_student(fp32, int8, data_root / "annotations" / "person_keypoints_train.json", data_root / "images", 200)
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in onnx.load(str(int8)).graph.node}
    # ONNX Runtime's shape-inference scratch files stay out of the working directory
    assert set(Path.cwd().glob("*.data")) | set(Path.cwd().glob("sym_shape_infer_temp.onnx")) == scratch


def test_l2sp_holds_the_weights_near_where_training_started(tmp_path, data_root):
    """L2-SP on the pretrained MoveNet trunk: same seed and data, the drift from the starting weights
    with a strong pull is a small fraction of the drift without it, and the log records it."""
    import torch

    from trainer.network import OKDHPNet

    def drift(name, *extra):
        args = [
            "train", "--config", "trainer/configs/movenet_student.yaml", f"data.root={data_root}",
            f"train.out_dir={tmp_path}", f"train.name={name}", "data.max_train=8", "data.max_val=2",
            "data.extra_train=[]", "augment.backgrounds=", "optim.batch_size=4", "optim.epochs=2",
            "optim.warmup_iters=1", "optim.lr=1e-3", "train.eval_every=0", *extra,
        ]  # fmt: skip
        assert main(args) == 0
        state = torch.load(tmp_path / name / "final.pt", map_location="cpu", weights_only=False)
        cfg = json.loads((tmp_path / name / "config.json").read_text())
        from trainer.config import ExperimentConfig, build

        net = OKDHPNet(build(ExperimentConfig, cfg).model, "single")
        start = {k: p.detach() for k, p in net.named_parameters()}
        trunk = [k for k in start if ".stem." in k]  # MoveNet's pretrained encoder
        assert trunk
        return sum(float(((state["model"][k] - start[k]) ** 2).sum()) for k in trunk), name

    free, _ = drift("free")
    held, name = drift("held", "optim.l2sp=10")
    assert held < 0.2 * free
    assert "l2sp_drift" in (tmp_path / name / "log.csv").read_text().splitlines()[0]
