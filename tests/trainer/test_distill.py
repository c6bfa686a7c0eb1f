"""The Lightning-start student (``trainer.models.movenet_full`` + ``trainer.distill``): it begins at Lightning,
exports with its decode in the graph (spec ``output: keypoints``), runs through okpose's TopDown, and its
losses see the labels and the frozen copy."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from okpose.core.runtime import open_session
from okpose.core.spec import ModelSpec
from okpose.core.topdown import TopDown
from trainer.distill import DistillConfig, config_from, export, losses, spec_for
from trainer.label import Teacher
from trainer.models.movenet_full import center_weights, load_movenet_full
from trainer.pretrained import MOVENET_ONNX


@pytest.fixture(scope="module")
def net():
    return load_movenet_full().eval()


@pytest.fixture(scope="module")
def persons(data_root):
    """A few real val frames with their labelled person boxes."""
    d = json.loads((data_root / "annotations" / "person_keypoints_val.json").read_text())
    images = {im["id"]: im for im in d["images"]}
    out = []
    for a in d["annotations"][::25][:6]:
        x, y, w, h = a["bbox"]
        img = cv2.imread(str(data_root / "images" / images[a["image_id"]]["file_name"]))
        out.append((img, np.array([x, y, x + w, y + h], np.float32)))
    return out


def test_centre_weights_follow_the_graphs_constant():
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(MOVENET_ONNX))
    consts = [numpy_helper.to_array(i) for i in m.graph.initializer if tuple(i.dims) == (48, 48, 1)]
    graph_w = next(c for c in consts if c.max() < 1 and c.min() > 0)[:, :, 0]  # the one that is not a grid
    np.testing.assert_allclose(center_weights(48, 48).numpy(), graph_w, rtol=2e-3)


def test_it_starts_at_lightning_on_real_crops(net, persons):
    """Trunk, heads and the torch decode give Lightning's own keypoints (the converted graph) on the same crop."""
    teacher = Teacher(MOVENET_ONNX)
    for img, box in persons:
        crop, _ = teacher._crop(img, box)
        ref = teacher._run(crop)  # (K, 3) y, x in [0, 1], score
        x = torch.from_numpy(crop.astype(np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
        with torch.no_grad():
            got = net.keypoints(x)[0].numpy()
        assert ref[:, 2].max() > 0.3  # a person is there
        np.testing.assert_allclose(got[:, 0] / 192, ref[:, 1], atol=2e-3)
        np.testing.assert_allclose(got[:, 1] / 192, ref[:, 0], atol=2e-3)
        np.testing.assert_allclose(got[:, 2], ref[:, 2], atol=1e-3)


def test_export_runs_in_okpose_topdown_like_lightning(net, persons, tmp_path):
    """The exported student (keypoints in the graph, spec ``output: keypoints``) through okpose's TopDown on
    real frames: Lightning's keypoints in image pixels, batched; flip test in TopDown stays close."""
    ckpt = tmp_path / "init.pt"
    torch.save({"ema": net.state_dict(), "config": asdict(DistillConfig(name="t")), "step": 0}, ckpt)
    out = tmp_path / "s.onnx"
    report = export(ckpt, out)
    assert report["max_abs_diff"] < 1e-2
    sess = open_session(out, "cpu", 1)
    spec = ModelSpec.from_metadata(sess.get_modelmeta().custom_metadata_map)
    assert spec.output == "keypoints" and spec.input_wh == (192, 192)
    assert "Stanford 40" in spec.extra["training_data"]
    runner = TopDown.from_session(sess, spec)
    flip = TopDown.from_session(sess, spec, flip_test=True)
    teacher = Teacher(MOVENET_ONNX)
    img, box = persons[0]
    boxes = np.stack([box, persons[0][1] + 0.0])
    got = runner(img, boxes)
    assert got.shape == (2, 17, 3)
    ref = teacher.plain(img, box)
    side = max(box[2] - box[0], box[3] - box[1])
    conf = ref[:, 2] > 0.3
    assert conf.sum() >= 5
    assert np.abs(got[0, conf, :2] - ref[conf, :2]).max() < 0.01 * side
    both = flip(img, boxes)
    assert np.median(np.linalg.norm(both[0, conf, :2] - ref[conf, :2], axis=1)) < 0.05 * side


def test_losses_see_labels_and_the_frozen_copy(net):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 192, 192) * 0.3
    with torch.no_grad():
        t = net.heads(x)
    kps = torch.rand(2, 17, 2) * 150 + 20
    w = torch.zeros(2, 17)
    same = losses(t, t, kps, w, DistillConfig())
    assert all(float(v) == 0.0 for v in same.values())  # no label, student == frozen: nothing to learn
    w[:, :5] = 0.9
    labelled = losses(t, t, kps, w, DistillConfig())
    assert float(labelled["hm_label"]) > 0 and float(labelled["off_label"]) > 0 and float(labelled["reg_label"]) > 0
    moved = type(t)(t.center, t.regression, t.heatmaps * 0.5, t.offsets)
    assert float(losses(moved, t, kps, torch.zeros(2, 17), DistillConfig())["keep"]) > 0


def test_config_overrides():
    cfg = config_from(["lr=1e-5", "input_wh=160,160", "train=data/misc,realpose-lab", "epochs=0.5"])
    assert cfg.lr == 1e-5 and cfg.input_wh == (160, 160) and cfg.train == ["data/misc", "realpose-lab"]
    assert spec_for(cfg).input_wh == (160, 160)
    with pytest.raises(SystemExit, match="unknown override"):
        config_from(["nope=1"])


def test_old_spec_metadata_reads_as_heatmaps():
    spec = ModelSpec(name="a", version="1")
    meta = spec.to_metadata()
    raw = json.loads(meta["okpose.spec"])
    raw.pop("output")
    meta["okpose.spec"] = json.dumps(raw)
    assert ModelSpec.from_metadata(meta).output == "heatmaps"
    with pytest.raises(ValueError, match="output"):
        ModelSpec(name="a", version="1", output="boxes")
    assert Path(MOVENET_ONNX).is_file()


def test_pipeline_serves_a_keypoints_model(net, persons, tmp_path):
    """okpose.Pipeline with the exported student (embedded detector, a real frame): persons with
    Lightning's keypoints for the detected boxes."""
    from okpose import Pipeline

    ckpt = tmp_path / "init.pt"
    torch.save({"ema": net.state_dict(), "config": asdict(DistillConfig(name="t")), "step": 0}, ckpt)
    out = tmp_path / "s.onnx"
    export(ckpt, out)
    pipe = Pipeline(pose=out, threads=1)
    img, _ = persons[0]
    res = pipe(img)
    assert len(res) >= 1 and res.keypoints.shape[1:] == (17, 3)
    teacher = Teacher(MOVENET_ONNX)
    ref = teacher.plain(img, res.boxes[0])
    conf = ref[:, 2] > 0.3
    side = max(res.boxes[0][2] - res.boxes[0][0], res.boxes[0][3] - res.boxes[0][1])
    assert np.abs(res.keypoints[0, conf, :2] - ref[conf, :2]).max() < 0.01 * side


def test_the_embedded_default_is_the_pretrained_export(persons, tmp_path):
    """``export-distill --pretrained`` (no checkpoint) reproduces the shipped default: Lightning's weights, no
    training data in its spec, the same keypoints as models/okpose-movenet.onnx on real frames."""
    from okpose.assets import DEFAULT_POSE_MODEL

    out = tmp_path / "pretrained.onnx"
    assert export(None, out)["steps"] == 0
    mine, shipped = open_session(out, "cpu", 1), open_session(DEFAULT_POSE_MODEL, "cpu", 1)
    spec = ModelSpec.from_metadata(mine.get_modelmeta().custom_metadata_map)
    ship_spec = ModelSpec.from_metadata(shipped.get_modelmeta().custom_metadata_map)
    assert json.loads(spec.extra["training_data"]) == [] and spec.extra["recipe"].startswith("none")
    assert ship_spec.extra["recipe"] == spec.extra["recipe"] and ship_spec.output == "keypoints"
    for img, box in persons[:3]:
        a = TopDown.from_session(mine, spec)(img, box[None])
        b = TopDown.from_session(shipped, ship_spec)(img, box[None])
        assert np.abs(a - b).max() < 1e-3


def test_pretrained_export_at_another_input_size(persons, tmp_path):
    """``export-distill --pretrained --input-wh 128,192``: the spec says the new size and the pose stays close to
    the 192x192 export's on real upright persons (the decode runs on any multiple of 32)."""
    from okpose.assets import DEFAULT_POSE_MODEL

    out = tmp_path / "tall.onnx"
    export(None, out, input_wh=(128, 192))
    sess = open_session(out, "cpu", 1)
    spec = ModelSpec.from_metadata(sess.get_modelmeta().custom_metadata_map)
    assert spec.input_wh == (128, 192) and tuple(sess.get_inputs()[0].shape[2:]) == (192, 128)
    shipped = open_session(DEFAULT_POSE_MODEL, "cpu", 1)
    ship_spec = ModelSpec.from_metadata(shipped.get_modelmeta().custom_metadata_map)
    for img, box in persons[:3]:
        a = TopDown.from_session(sess, spec)(img, box[None])[0]
        b = TopDown.from_session(shipped, ship_spec)(img, box[None])[0]
        both = (a[:, 2] > 0.3) & (b[:, 2] > 0.3)
        assert both.sum() >= 8
        assert np.median(np.linalg.norm(a[both, :2] - b[both, :2], axis=1)) < 0.05 * (box[3] - box[1])


def test_label_peak_lightning_moves_peaks_without_rescaling_them(net):
    """``label_peak=lightning``: a heatmap already shaped like the label at the frozen copy's own peak height
    costs nothing; the unit-peak label (``one``) would still pull it up to 1."""
    from trainer.models.movenet_full import HeadOutputs, cells

    with torch.no_grad():
        t = net.heads(torch.randn(1, 3, 192, 192) * 0.3)
    kps = torch.tensor([[[60.0 + 4 * j, 100.0] for j in range(17)]])
    yy, xx = cells(48, 48)
    g = kps / 4
    d2 = (xx - g[..., 0, None, None]) ** 2 + (yy - g[..., 1, None, None]) ** 2
    peak = torch.linspace(0.4, 0.8, 17).view(1, 17, 1, 1)
    shaped = HeadOutputs(t.center, t.regression, peak * torch.exp(-d2 / (2 * 1.25**2)), t.offsets)
    w = torch.ones(1, 17)
    cfg = DistillConfig(sigma=1.25, label_peak="lightning")
    assert float(losses(shaped, shaped, kps, w, cfg)["hm_label"]) < 1e-10
    assert float(losses(shaped, shaped, kps, w, DistillConfig(sigma=1.25))["hm_label"]) > 0.1
    with pytest.raises(ValueError, match="label_peak"):
        losses(shaped, shaped, kps, w, DistillConfig(label_peak="two"))


def test_wise_export_mixes_the_run_with_lightning(net, persons, tmp_path):
    """``export(wise=a)``: every float weight (1 - a) x Lightning's + a x the run's. a = 0 gives Lightning's own
    outputs, a = 1 the run's, a = 0.5 lies between them on a real crop; the recipe in the metadata says so."""
    torch.manual_seed(0)
    moved = {k: v + 0.05 * v.std() * torch.randn_like(v) if v.is_floating_point() and v.numel() > 1 else v
             for k, v in net.state_dict().items()}  # fmt: skip
    ckpt = tmp_path / "moved.pt"
    torch.save({"ema": moved, "config": asdict(DistillConfig(name="moved")), "step": 7}, ckpt)
    img, box = persons[0]
    outs = {}
    for name, kw in (("lightning", None), ("w0", 0.0), ("w05", 0.5), ("w1", 1.0)):
        path = tmp_path / f"{name}.onnx"
        export(None, path) if kw is None else export(ckpt, path, wise=kw)
        sess = open_session(path, "cpu", 1)
        meta = sess.get_modelmeta().custom_metadata_map
        spec = ModelSpec.from_metadata(meta)
        outs[name] = TopDown.from_session(sess, spec)(img, box[None])[0]
        assert ("WiSE-FT" in spec.extra.get("recipe", "")) == (kw is not None and kw < 1)
    conf = outs["lightning"][:, 2] > 0.3
    assert conf.sum() >= 5
    d = lambda a, b: float(np.abs(outs[a][conf, :2] - outs[b][conf, :2]).mean())  # noqa: E731
    assert d("w0", "lightning") < 1e-3 < d("w1", "lightning")
    assert d("w05", "lightning") < d("w1", "lightning") and d("w05", "w1") < d("lightning", "w1")
    with pytest.raises(ValueError, match="wise"):
        export(ckpt, tmp_path / "bad.onnx", wise=1.5)
