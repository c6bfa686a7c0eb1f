"""The NanoDet-initialised student and the teacher labelling command."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from trainer.label import LabelConfig, Teacher, agree, label
from trainer.models import ModelConfig, MultiBranchNet, SingleBranchNet
from trainer.pretrained import MOVENET_ONNX, NANODET_ONNX, _stage_outputs, movenet_parts, nanodet_encoder


def test_encoder_matches_the_detector_graph_it_was_cut_from(tmp_path):
    """The converter keeps the COCO-trained weights: same stage outputs as ONNX Runtime on the cut graph."""
    import onnx.utils

    model = onnx.load(str(NANODET_ONNX))
    image, outs = _stage_outputs(model)
    sub = tmp_path / "enc.onnx"
    onnx.utils.extract_model(str(NANODET_ONNX), str(sub), [image], outs)
    x = np.random.default_rng(0).standard_normal((1, 3, 160, 128)).astype(np.float32)
    ref = ort.InferenceSession(str(sub), providers=["CPUExecutionProvider"]).run(None, {image: x})
    with torch.no_grad():
        got = nanodet_encoder()(torch.from_numpy(x))
    assert [tuple(g.shape) for g in got] == [(1, 64, 40, 32), (1, 128, 20, 16), (1, 256, 10, 8)]
    for r, g in zip(ref, got, strict=True):
        np.testing.assert_allclose(g.numpy(), r, atol=1e-4)


@pytest.mark.parametrize("stages", [2, 3])
def test_nanodet_student_shapes_and_single_branch(stages):
    net = MultiBranchNet(
        ModelConfig(arch="nanodet", width=32, num_branches=2, branch_depths=[1, 1], pretrained_stages=stages)
    ).eval()
    x = torch.randn(2, 3, 160, 128)
    with torch.no_grad():
        out = net(x)
        assert out.features.shape == (2, 32, 20, 16)  # FAU input: fused stride-8 features
        assert [b[-1].shape for b in out.branches] == [(2, 17, 40, 32)] * 2
        torch.testing.assert_close(SingleBranchNet(net, 1)(x), out.branches[1][-1])


def _movenet_keypoint_graph(tmp_path: Path) -> Path:
    """The converted MoveNet Lightning graph from its uint8 input to its keypoint-heatmap sigmoid."""
    import onnx.utils

    model = onnx.load(str(MOVENET_ONNX))
    sigmoid = next(n for n in model.graph.node if n.op_type == "Sigmoid")
    sub = tmp_path / "kp.onnx"
    onnx.utils.extract_model(str(MOVENET_ONNX), str(sub), [model.graph.input[0].name], [sigmoid.output[0]])
    return sub


def test_movenet_trunk_and_heatmap_head_match_the_teacher_graph(tmp_path, data_root):
    """The converter keeps MoveNet's pose-trained weights (incl. TF's one-sided "SAME" stride-2 padding and
    the FPN's bilinear x2): on a real frame the torch trunk + keypoint head give ONNX Runtime's heatmaps."""
    sub = _movenet_keypoint_graph(tmp_path)
    img = cv2.imread(str(sorted((data_root / "images" / "val").glob("*.jpg"))[10]))
    x = cv2.resize(img[:, :, ::-1], (192, 192)).astype(np.int32)[None]
    sess = ort.InferenceSession(str(sub), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    encoder, heads = movenet_parts()
    trunk, out = heads[0]
    assert len(heads) == 4 and out.out_channels == 17  # keypoint-heatmap head first
    t = torch.from_numpy(x.astype(np.float32)).permute(0, 3, 1, 2) / 127.5 - 1
    with torch.no_grad():
        got = torch.sigmoid(out(trunk(encoder(t)))).numpy()
    assert got.shape == ref.shape == (1, 17, 48, 48)
    assert ref.max() > 0.3  # a person is there: the comparison is not between two empty maps
    np.testing.assert_allclose(got, ref, atol=1e-4)


@pytest.mark.parametrize("shared_blocks", [0, 1])
def test_movenet_student_keeps_the_pretrained_head_on_branch_zero_only(shared_blocks):
    """Branch 0 starts as MoveNet's keypoint head (same heatmaps as the teacher's head, also with extra shared
    blocks, which start as the identity); the other branches start from its other head trunks with a new
    output near an empty heatmap (distinct OKDHP peers)."""
    cfg = ModelConfig(arch="movenet", num_branches=3, branch_depths=[1, 1, 1], shared_blocks=shared_blocks)
    net = MultiBranchNet(cfg).eval()
    encoder, heads = movenet_parts()
    trunk, out_conv = heads[0]
    x = torch.randn(2, 3, 192, 128)
    with torch.no_grad():
        out = net(x)
        teacher = torch.sigmoid(out_conv(trunk(encoder(x))))
    assert out.features.shape == (2, 24, 48, 32)
    assert [b[-1].shape for b in out.branches] == [(2, 17, 48, 32)] * 3
    torch.testing.assert_close(out.branches[0][-1], teacher)
    assert float(out.branches[1][-1].max()) < 0.05 and float(out.branches[2][-1].max()) < 0.05
    assert not torch.equal(net.branches[1].trunk.net.convs["n0"].weight, net.branches[2].trunk.net.convs["n0"].weight)
    torch.testing.assert_close(SingleBranchNet(net, 0)(x), out.branches[0][-1])


def fixed_teacher(path: Path, side: int, yxs: np.ndarray) -> Path:
    """A MoveNet-shaped ONNX (int32 [1,S,S,3] in, (1,1,17,3) out) that answers ``yxs`` whatever the
    input: the labeller's crop / mirror / inverse-affine arithmetic is what these tests check."""
    const = numpy_helper.from_array(yxs.reshape(1, 1, 17, 3).astype(np.float32), "answer")
    g = helper.make_graph(
        [helper.make_node("Shape", ["input"], ["shape"]), helper.make_node("Identity", ["answer"], ["out"])],
        "fixed",
        [helper.make_tensor_value_info("input", TensorProto.INT32, [1, side, side, 3])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 1, 17, 3])],
        [const],
    )
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_teacher_maps_crop_coordinates_back_and_undoes_the_mirror(tmp_path):
    yxs = np.zeros((17, 3), np.float32)
    yxs[:, 0], yxs[:, 1], yxs[:, 2] = 0.5, 0.5, 0.9
    yxs[5] = [0.25, 0.75, 0.9]  # left shoulder at (x, y) = (0.75, 0.25) of the crop
    t = Teacher(fixed_teacher(tmp_path / "t.onnx", 64, yxs))
    img = np.zeros((200, 300, 3), np.uint8)
    box = np.array([100, 50, 180, 150], np.float32)  # centre (140, 100), long side 100 -> crop side 125
    plain, mirrored = t(img, box)
    assert plain[5, :2] == pytest.approx([140 + 0.25 * 125, 100 - 0.25 * 125], abs=1e-3)
    # the mirrored crop's answer for "left shoulder" is our right shoulder, mirrored about the centre
    assert mirrored[6, :2] == pytest.approx([140 - 0.25 * 125, 100 - 0.25 * 125], abs=1e-3)
    assert plain[0, :2] == pytest.approx([140, 100], abs=1e-3) and mirrored[0, :2] == pytest.approx(
        [140, 100], abs=1e-3
    )


@pytest.mark.parametrize(
    "shift,score_b,kept",
    [(0.0, 0.9, 17), (0.04, 0.9, 17), (0.06, 0.9, 0), (0.0, 0.2, 0)],  # agree within 5 % of the box, both sure
)
def test_agreement_filter(shift, score_b, kept):
    box = np.array([0, 0, 100, 200], np.float32)
    a = np.concatenate([np.random.default_rng(0).uniform(0, 100, (17, 2)), np.full((17, 1), 0.9)], 1)
    b = a.copy()
    b[:, 0] += shift * 200
    b[:, 2] = score_b
    out = agree(a, b, box, LabelConfig())
    assert int((out[:, 2] == 2).sum()) == kept
    if kept:
        assert out[:, 0] == pytest.approx((a[:, 0] + b[:, 0]) / 2)


def test_label_writes_coco_the_trainer_reads(tmp_path, data_root):
    """Real frames, the real shipped detector; boxes become persons (or ignore regions) with track ids."""
    from trainer.data import load_coco

    yxs = np.tile([0.5, 0.5, 0.9], (17, 1)).astype(np.float32)
    yxs[:, 0] += np.linspace(-0.3, 0.3, 17)  # spread vertically: symmetric under the mirror
    cfg = LabelConfig(teacher=fixed_teacher(tmp_path / "t.onnx", 64, yxs))
    clip = tmp_path / "clip.mp4"
    cap = cv2.VideoCapture(str(data_root / "videos" / "pose2sim_multi_cam01.mp4"))
    writer = None
    for _ in range(4):
        ok, f = cap.read()
        f = cv2.resize(f, (f.shape[1] // 3, f.shape[0] // 3))
        writer = writer or cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30, (f.shape[1], f.shape[0]))
        writer.write(f)
    writer.release()
    cap.release()
    still = data_root / "images" / "val" / "pose2sim_multi_cam03_f0010.jpg"
    report = label([clip, still], tmp_path / "out", every=2, max_side=400, cfg=cfg)
    coco = json.loads((tmp_path / "out" / "annotations.json").read_text())
    assert report["frames"] == 3 and len(coco["images"]) == 3
    assert report["persons_detected"] >= 4 and report["persons_labelled"] == report["persons_detected"]
    assert all(max(im["width"], im["height"]) <= 400 for im in coco["images"])
    video_ids = {a["track_id"] for a in coco["annotations"] if coco["images"][a["image_id"] - 1]["frame_index"] >= 0}
    assert -1 not in video_ids and len(video_ids) >= 2
    recs = load_coco(tmp_path / "out" / "annotations.json", tmp_path / "out" / "images")
    assert len(recs) == report["persons_labelled"] and all((r.keypoints[:, 2] == 2).all() for r in recs)


def test_frames_of_reads_each_video_of_a_folder_on_its_own(tmp_path, data_root):
    """``label``'s reader: a folder's videos each from their own frame 0 (``every``, ``frames`` per video), its
    images once with index -1, in natural order; a file that is neither is a clear error."""
    from trainer.label import frames_of

    cap = cv2.VideoCapture(str(data_root / "videos" / "pose2sim_multi_cam01.mp4"))
    small = [cv2.resize(cap.read()[1], (160, 288)) for _ in range(6)]
    cap.release()
    folder = tmp_path / "media"
    folder.mkdir()
    for name in ("b10.mp4", "b2.mp4"):
        w = cv2.VideoWriter(str(folder / name), cv2.VideoWriter_fourcc(*"mp4v"), 30, (160, 288))
        for f in small:
            w.write(f)
        w.release()
    cv2.imwrite(str(folder / "a.png"), small[0])
    got = [(p.name, i) for p, i, _ in frames_of([folder], every=2, frames=4)]
    assert got == [("a.png", -1), ("b2.mp4", 0), ("b2.mp4", 2), ("b10.mp4", 0), ("b10.mp4", 2)]
    (tmp_path / "notes.txt").write_text("no")
    with pytest.raises(SystemExit, match="not a video, image or folder"):
        list(frames_of([tmp_path / "notes.txt"], every=1))
