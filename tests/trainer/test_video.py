"""Video mode (trainer/video.py): the distillator reads the previous pose, the first-frame path is the
per-frame network, training runs end to end on the real clips, and the ONNX export matches torch on both inputs."""

from pathlib import Path

import numpy as np
import pytest
import torch

from okpose.core.prior import VideoPrior, render_prior
from okpose.core.runtime import open_session
from okpose.core.spec import ModelSpec
from trainer.checkpoint import save_checkpoint
from trainer.config import ExperimentConfig, build, spec_from_config, to_dict
from trainer.video import (
    PerFrame,
    SequenceDataset,
    VideoConfig,
    VideoExperiment,
    _save,
    build_video_net,
    export_video_onnx,
    load_track_frames,
    load_video_net,
    train_video,
    video_spec,
)


@pytest.fixture(scope="module")
def init_checkpoint(tmp_path_factory) -> Path:
    """A per-frame MoveNet student checkpoint (pretrained trunk, as `trainer train` writes it)."""
    from trainer.network import OKDHPNet

    raw = {"data": {"input_wh": [128, 192]}, "model": {"arch": "movenet", "num_branches": 1, "branch_depths": [1]},
           "train": {"mode": "single", "name": "init"}}  # fmt: skip
    cfg = build(ExperimentConfig, raw)
    model = OKDHPNet(cfg.model, "single")
    path = tmp_path_factory.mktemp("init") / "final.pt"
    spec = spec_from_config(cfg, version="init")
    save_checkpoint(
        path, config=to_dict(cfg), spec=spec.to_metadata(), epoch=0, step=0, model=model.state_dict(), optimizer={}
    )
    return path


def _net(init: Path, seed: int = 0):
    from trainer.checkpoint import load_checkpoint

    net, spec = build_video_net(load_checkpoint(init), VideoConfig())
    torch.manual_seed(seed)
    with torch.no_grad():  # a trained distillator's weights are not zero (training starts from zero gain)
        for p in net.distillator.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    return net.eval(), spec


def _prior(spec: ModelSpec, xy: np.ndarray, score: float = 0.9) -> torch.Tensor:
    s = np.full(xy.shape[:2], score)
    return torch.from_numpy(render_prior(xy, s, spec.heatmap_wh, spec.heatmap_stride, 2.0))


def test_output_depends_on_the_previous_pose_and_an_empty_prior_is_the_per_frame_network(init_checkpoint):
    net, spec = _net(init_checkpoint)
    x = torch.randn(2, 3, 192, 128, generator=torch.Generator().manual_seed(0))
    rng = np.random.default_rng(0)
    a = _prior(spec, rng.uniform([20, 20], [108, 172], (2, 17, 2)))
    b = _prior(spec, rng.uniform([20, 20], [108, 172], (2, 17, 2)))
    with torch.no_grad():
        ha, hb, h0 = net(x, a), net(x, b), net(x, torch.zeros_like(a))
        per_frame = PerFrame(net)(x)
    assert (ha - hb).abs().max() > 1e-2  # a different previous pose changes the heatmaps
    assert torch.equal(h0, per_frame)  # no previous pose: exactly the per-frame network (first frame of a track)


def test_sequence_prior_is_the_previous_frame_of_the_same_track(data_root):
    frames = load_track_frames(data_root / "annotations" / "person_keypoints_train.json", data_root / "images")
    spec = ModelSpec(name="t", version="1", input_wh=(128, 192))
    from trainer.augment import AugmentConfig

    cfg = VideoConfig(max_gap=1, zero_prob=0.0, joint_drop=0.0, noise=0.0, shift=0.0)
    ds = SequenceDataset(frames, spec, AugmentConfig(enabled=False), cfg, 2.0, seed=0)
    i = next(j for j, f in enumerate(frames) if (f.video, f.track, f.frame - 1) in ds.index)
    x, target, weights, prior, x_prev, triple, _ = ds[i]
    prev = frames[ds.index[(frames[i].video, frames[i].track, frames[i].frame - 1)]]
    assert x.shape == x_prev.shape == (3, 192, 128) and prior.shape == target.shape == (17, 48, 32)
    # the prior's peaks are frame t-1's labelled joints in frame t's crop (triple[1]), not frame t's
    from okpose.core.heatmaps import decode, heatmap_to_input

    coords, peak = decode(prior.numpy()[None])
    xy = heatmap_to_input(coords, 4)[0]
    lab = (triple[1, :, 2] > 0).numpy() & (peak[0] > 0)
    assert lab.sum() >= 10
    assert np.abs(xy[lab] - triple[1, lab, :2].numpy()).max() < 1.5
    assert not torch.equal(triple[1], triple[2])  # the person moved between the frames
    assert prev.record.image_path != frames[i].record.image_path


def test_training_run_writes_a_loadable_checkpoint_and_the_export_matches_torch(init_checkpoint, tmp_path, data_root):
    raw = {
        "data": {"root": str(data_root), "input_wh": [128, 192], "max_train": 16},
        "augment": {"enabled": True},
        "optim": {"epochs": 1, "batch_size": 8, "warmup_iters": 1},
        "video": {"init": str(init_checkpoint), "self_after": 0.0, "adversarial": 1e-4},
        "run": {"name": "v", "out_dir": str(tmp_path), "threads": 1},
    }
    run = train_video(build(VideoExperiment, raw))
    net, cfg, spec = load_video_net(run / "final.pt")
    assert VideoPrior.from_spec(spec) is not None and spec.name.endswith("-video")
    assert (run / "log.csv").read_text().count("\n") == 2  # header + one epoch
    report = export_video_onnx(run / "final.pt", tmp_path / "v.onnx")
    assert report["max_abs_diff"] < 1e-4
    sess = open_session(tmp_path / "v.onnx")
    assert [i.name for i in sess.get_inputs()] == ["input", "prior"]


def test_onnx_parity_on_both_inputs_with_a_trained_looking_distillator(init_checkpoint, tmp_path):
    net, spec = _net(init_checkpoint, seed=1)
    cfg = VideoExperiment(video=VideoConfig(init=str(init_checkpoint)))
    from trainer.checkpoint import load_checkpoint

    init = load_checkpoint(init_checkpoint)
    base = {"config": init["config"], "spec": init["spec"], "model": {}}
    _save(tmp_path / "v.pt", cfg, video_spec(spec, cfg.video, "v-video", "t"), net, 0, 0, base)
    export_video_onnx(tmp_path / "v.pt", tmp_path / "v.onnx")
    sess = open_session(tmp_path / "v.onnx")
    x = torch.randn(4, 3, 192, 128, generator=torch.Generator().manual_seed(3))
    prior = _prior(spec, np.random.default_rng(3).uniform([20, 20], [108, 172], (4, 17, 2)))
    prior[3] = 0  # a new track in the same batch
    with torch.no_grad():
        ref = net(x, prior).numpy()
    got = sess.run(None, {"input": x.numpy(), "prior": prior.numpy()})[0]
    assert np.abs(ref - got).max() < 1e-4
    # and the ONNX output does depend on the prior input
    moved = sess.run(None, {"input": x.numpy(), "prior": np.roll(prior.numpy(), 6, axis=3)})[0]
    assert np.abs(moved - got).max() > 1e-2


def test_control_arm_exports_a_per_frame_model(init_checkpoint, tmp_path):
    net, spec = _net(init_checkpoint)
    cfg = VideoExperiment(video=VideoConfig(init=str(init_checkpoint), use_prior=False))
    from trainer.checkpoint import load_checkpoint

    init = load_checkpoint(init_checkpoint)
    _save(tmp_path / "c.pt", cfg, video_spec(spec, cfg.video, "c", "t"), net, 0, 0,
          {"config": init["config"], "spec": init["spec"], "model": {}})  # fmt: skip
    export_video_onnx(tmp_path / "c.pt", tmp_path / "c.onnx")
    sess = open_session(tmp_path / "c.onnx")
    assert [i.name for i in sess.get_inputs()] == ["input"]
    assert VideoPrior.from_spec(ModelSpec.from_metadata(sess.get_modelmeta().custom_metadata_map)) is None


def test_the_video_model_card_belongs_to_the_shipped_video_model():
    """The committed card describes the committed file (hash) and the spec the service reads from it."""
    import hashlib
    import json

    from service.settings import DEFAULT_VIDEO_MODEL

    card = json.loads(DEFAULT_VIDEO_MODEL.with_suffix(".card.json").read_text())
    assert card["sha256"] == hashlib.sha256(DEFAULT_VIDEO_MODEL.read_bytes()).hexdigest()
    spec = ModelSpec.from_metadata(open_session(DEFAULT_VIDEO_MODEL).get_modelmeta().custom_metadata_map)
    assert (card["spec"]["name"], card["spec"]["version"]) == (spec.name, spec.version)
    assert VideoPrior.from_spec(spec) is not None
