"""Video mode (DKD-style, Nie et al. ICCV 2019): the per-frame student plus a pose kernel distillator that
turns the previous frame's pose into per-joint dynamic kernels for the current frame.

Network (``VideoPoseNet``): the shipped student's trunk and head give per-frame logits; the distillator
reads the previous pose as prior maps (``okpose.core.prior``: one Gaussian per joint, peak = its score, in the
current crop) and

- pools the current frame's head features under each joint's prior into a per-joint vector, which a small
  MLP (shared, plus a learned joint embedding) turns into a dynamic 1x1 kernel over those features: the
  kernel is correlated with the features to give a per-joint response map (DKD's distilled kernels);
- adds a positional term: a depthwise 5x5 then 1x1 (across joints) convolution of the prior maps.

Both terms are scaled by each joint's prior mass (0 without a previous pose) and added to the per-frame
logits; the gain and the positional convolution start at zero, so training starts from the per-frame
student and an all-zero prior *is* the per-frame student (the first frame of a track needs no other model).

Training (``train_video``): pairs (frame t, frame t - g) of the same track from the per-frame labelled
clips (g uniform in 1..max_gap: 60 fps clips, so 15-60 fps streams), the same geometric augmentation on
both; the prior is the ground truth of t - g with position noise, dropped joints, random scores and a
share of empty priors (first frames), and after ``self_after`` of training, for a ``self_prob`` share of
samples, the model's own prediction on frame t - g (so it learns to survive its own errors). Optional
temporally adversarial term (``adversarial`` > 0): a discriminator on (t - 2g, t - g, t) pose triples
(velocities and accelerations of the labelled joints) judges ground truth against the predicted pose at t
(soft-argmax, differentiable); ``adversarial=0`` is the ablation. ``use_prior=false`` trains the same
network on the same samples with an empty prior: the per-frame control of the same cost.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn
from torch.utils.data import DataLoader, Dataset

from okpose.core.geometry import apply_affine
from okpose.core.heatmaps import decode, encode_gaussian, heatmap_to_input
from okpose.core.prior import VideoPrior, render_prior
from okpose.core.skeleton import skeleton_for
from okpose.core.spec import ModelSpec
from okpose.core.topdown import normalize_crops
from trainer.augment import AugmentConfig, augment_sample
from trainer.checkpoint import load_checkpoint, save_checkpoint, upgrade
from trainer.config import DataConfig, OptimConfig, apply_overrides, build, to_dict
from trainer.data import ImageCache, PersonRecord, background_images
from trainer.loop import lr_at, seed_everything

log = logging.getLogger("trainer.video")


# ----------------------------------------------------------------------------------------------- config
@dataclass
class VideoConfig:
    init: str = "runs/movenet_single/final.pt"  # the per-frame student the video model starts from
    use_prior: bool = True  # false: the per-frame control arm (same network, samples and steps, empty prior)
    sigma: float = 2.0  # prior Gaussian, heatmap pixels
    threshold: float = 0.2  # keypoints scored below this are not drawn into the prior (service and training)
    max_gap: int = 4  # previous frame t - g, g uniform in 1..max_gap
    zero_prob: float = 0.15  # empty prior (first frame of a track)
    joint_drop: float = 0.15  # a joint missing from the previous pose
    noise: float = 0.04  # per-joint position noise, fraction of the crop height
    shift: float = 0.04  # whole-pose shift noise, fraction of the crop height
    self_after: float = 0.5  # fraction of training after which ...
    self_prob: float = 0.5  # ... this share of priors come from the model's own prediction on frame t - g
    adversarial: float = 0.0  # weight of the temporally adversarial term (0 = off)
    disc_lr: float = 1e-4
    distill_lr: float = 20.0  # the distillator's learning rate as a multiple of optim.lr (it starts from scratch,
    # the rest from the trained student: at optim.lr its gain would move ~1e-2 in a 4-epoch fine-tune)
    hidden: int = 96  # distillator MLP width
    max_age_s: float = 0.5  # written into the spec: the service's limit on how old a previous pose may be


@dataclass
class RunConfig:
    name: str = "video"
    seed: int = 0
    out_dir: str = "runs"
    threads: int = 1
    workers: int = 0


@dataclass
class VideoExperiment:
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    run: RunConfig = field(default_factory=RunConfig)


def load_video_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> VideoExperiment:
    raw: dict[str, Any] = yaml.safe_load(Path(path).read_text()) or {} if path else {}
    cfg: VideoExperiment = build(VideoExperiment, apply_overrides(raw, overrides))
    if cfg.video.max_gap < 1:
        raise ValueError("video.max_gap must be >= 1")
    return cfg


# ---------------------------------------------------------------------------------------------- network
class KernelDistillator(nn.Module):
    """(head features e (N, C, h, w), prior maps p (N, K, h, w)) -> logit change (N, K, h, w); zero for an
    all-zero prior and at initialisation."""

    def __init__(self, channels: int, num_keypoints: int, hidden: int, sigma: float):
        super().__init__()
        self.fc1 = nn.Linear(channels, hidden)
        self.joint = nn.Parameter(torch.zeros(num_keypoints, hidden))  # which joint the kernel is for
        self.fc2 = nn.Linear(hidden, channels)
        self.spread = nn.Conv2d(num_keypoints, num_keypoints, 5, padding=2, groups=num_keypoints, bias=False)
        self.mix = nn.Conv2d(num_keypoints, num_keypoints, 1, bias=False)
        nn.init.zeros_(self.mix.weight)
        self.gain = nn.Parameter(torch.zeros(num_keypoints))
        self.unit_mass = 2 * math.pi * sigma**2  # sum of a peak-1 Gaussian: a full-score joint has mass 1
        self.scale = 1.0 / math.sqrt(channels)

    def forward(self, e: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        mass = prior.sum(dim=(2, 3))  # (N, K)
        weights = prior / (mass[..., None, None] + 1e-6)
        pooled = torch.einsum("nkhw,nchw->nkc", weights, e)  # the current features under the last pose
        kernels = self.fc2(torch.relu(self.fc1(pooled) + self.joint))  # (N, K, C) dynamic 1x1 kernels
        response = torch.einsum("nkc,nchw->nkhw", kernels, e) * self.scale
        positional = self.mix(self.spread(prior))
        conf = torch.clamp(mass / self.unit_mass, max=1.0)[..., None, None]
        return conf * (self.gain[None, :, None, None] * response + positional)


class VideoPoseNet(nn.Module):
    """(crop (N, 3, H, W), prior (N, K, h, w)) -> heatmaps (N, K, h, w) in [0, 1]; the per-frame student's
    ``stem`` and ``branch`` (a MoveNet branch: ``embed`` then ``head`` = 1x1 conv + sigmoid) inside."""

    def __init__(self, stem: nn.Module, branch: nn.Module, num_keypoints: int, hidden: int, sigma: float):
        super().__init__()
        self.stem, self.branch = stem, branch
        conv = branch.head[0]
        self.distillator = KernelDistillator(conv.in_channels, num_keypoints, hidden, sigma)

    def logits(self, x: torch.Tensor, prior: torch.Tensor | None) -> torch.Tensor:
        e = self.branch.embed(self.stem(x))
        out = self.branch.head[0](e)
        return out if prior is None else out + self.distillator(e, prior)

    def forward(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x, prior))


class PerFrame(nn.Module):
    """The video network without its distillator: crop -> heatmaps (the control arm's export)."""

    def __init__(self, net: VideoPoseNet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net.logits(x, None))


def build_video_net(
    init: dict[str, Any], cfg: VideoConfig, load_weights: bool = True
) -> tuple[VideoPoseNet, ModelSpec]:
    """The video network around a per-frame student checkpoint's branch 0 (its weights unless
    ``load_weights`` is false: a video checkpoint brings its own), and that student's spec."""
    from trainer.config import ExperimentConfig
    from trainer.network import OKDHPNet

    raw, weights = upgrade(init["config"], init["model"])
    base: ExperimentConfig = build(ExperimentConfig, raw)
    model = OKDHPNet(base.model, base.train.mode)
    if load_weights:
        model.load_state_dict(weights)
    net = model.deployable()
    branch = net.branches[0]
    if not (hasattr(branch, "embed") and isinstance(getattr(branch, "head", None), nn.Sequential)):
        raise ValueError("video mode needs a per-frame student whose branch has embed() and a 1x1 + sigmoid head "
                         "(model.arch movenet)")  # fmt: skip
    spec = ModelSpec.from_metadata(init["spec"])
    return VideoPoseNet(net.stem, branch, spec.num_keypoints, cfg.hidden, cfg.sigma), spec


def video_spec(base: ModelSpec, cfg: VideoConfig, name: str, version: str) -> ModelSpec:
    """The exported spec: the per-frame student's, plus the prior description (``okpose.core.prior``)."""
    extra = dict(base.extra)
    if cfg.use_prior:
        extra.update(VideoPrior(cfg.sigma, cfg.threshold, "prior", cfg.max_age_s).to_extra())
    else:
        extra.pop("video", None)
    return ModelSpec(**{**base.__dict__, "name": name, "version": version, "extra": extra})


# ------------------------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class TrackFrame:
    record: PersonRecord
    video: str
    track: int
    frame: int


def load_track_frames(ann_file: str | Path, image_root: str | Path) -> list[TrackFrame]:
    """Labelled persons with their clip, track id and frame index (images without ``video`` /
    ``frame_index``, e.g. still photos, become one-frame tracks of their own)."""
    d = json.loads(Path(ann_file).read_text())
    images = {im["id"]: im for im in d["images"]}
    out = []
    for a in d["annotations"]:
        if a.get("iscrowd", 0) or a.get("ignore", 0) or a.get("num_keypoints", 0) < 1:
            continue
        x, y, w, h = a["bbox"]
        if w <= 1 or h <= 1:
            continue
        im = images[a["image_id"]]
        rec = PersonRecord(
            image_path=str(Path(image_root) / im["file_name"]),
            image_id=int(a["image_id"]),
            box_xyxy=(float(x), float(y), float(x + w), float(y + h)),
            keypoints=np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3),
            ann_id=int(a["id"]),
        )
        video = str(im.get("video") or im.get("source") or "")
        frame = int(im.get("frame_index", -1))
        track = int(a.get("track_id", -1))
        if not video or frame < 0 or track < 0:
            video, frame, track = f"still:{a['id']}", 0, 0
        out.append(TrackFrame(rec, video, track, frame))
    return out


class SequenceDataset(Dataset):
    """Track frame i -> (crop t, target, weights, prior maps, crop t - g, triple (3, K, 3) in crop px, i).

    The crop of t - g and the triple (t - 2g, t - g, t) use the crop geometry of frame t, as the service
    maps a track's last pose into the current crop."""

    def __init__(
        self, frames: list[TrackFrame], spec: ModelSpec, aug: AugmentConfig, vcfg: VideoConfig, sigma: float, seed: int
    ):
        self.frames, self.spec, self.aug, self.vcfg, self.sigma, self.seed = frames, spec, aug, vcfg, sigma, seed
        self.index = {(f.video, f.track, f.frame): i for i, f in enumerate(frames)}
        self.skeleton = skeleton_for(spec.keypoint_names)
        self.flip = self.skeleton.flip_index()
        self.cache = ImageCache()
        self.backgrounds = background_images(aug.backgrounds)
        self.image_paths = sorted({f.record.image_path for f in frames})
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.frames)

    def _back(self, f: TrackFrame, gap: int) -> TrackFrame | None:
        i = self.index.get((f.video, f.track, f.frame - gap))
        return None if i is None else self.frames[i]

    def __getitem__(self, i: int):  # noqa: ANN204 - a tuple of tensors, see the class docstring
        f = self.frames[i]
        rng = np.random.default_rng((self.seed, self.epoch, i))
        gaps = [g for g in range(1, self.vcfg.max_gap + 1) if self._back(f, g) is not None]
        gap = int(rng.choice(gaps)) if gaps else 0
        prev = self._back(f, gap) if gap else f  # a still image (or a track's first frame): the pose stands still
        assert prev is not None
        prev2 = (self._back(f, 2 * gap) if gap else f) or prev
        img = self.cache.get(f.record.image_path)
        other = None
        if self.aug.enabled and self.backgrounds and rng.random() < self.aug.backgrounds_share:
            other = self.cache.get(self.backgrounds[int(rng.integers(len(self.backgrounds)))])
        elif self.aug.enabled and len(self.image_paths) > 1:
            other = self.cache.get(self.image_paths[int(rng.integers(len(self.image_paths)))])
        crop, kps, mat = augment_sample(
            rng, img, np.asarray(f.record.box_xyxy), f.record.keypoints, self.aug, self.spec.input_wh,
            self.spec.padding, self.skeleton, other,
        )  # fmt: skip
        flipped = np.linalg.det(mat[:, :2]) < 0
        target, weights = encode_gaussian(kps, self.spec.heatmap_wh, self.spec.heatmap_stride, self.sigma)

        def in_crop(kp: np.ndarray) -> np.ndarray:
            out = kp.astype(np.float64).copy()
            out[:, :2] = apply_affine(kp[:, :2], mat)
            out[kp[:, 2] <= 0] = 0
            return out[self.flip] if flipped else out

        prev_kps = in_crop(prev.record.keypoints)
        triple = np.stack([in_crop(prev2.record.keypoints), prev_kps, kps]).astype(np.float32)
        prior = self.noisy_prior(rng, prev_kps)
        w, h = self.spec.input_wh
        prev_img = self.cache.get(prev.record.image_path)
        prev_crop = cv2.warpAffine(prev_img, mat, (w, h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        x = normalize_crops(crop[None], self.spec)[0]
        x_prev = normalize_crops(prev_crop[None], self.spec)[0]
        return (
            torch.from_numpy(x),
            torch.from_numpy(target),
            torch.from_numpy(weights),
            torch.from_numpy(prior),
            torch.from_numpy(x_prev),
            torch.from_numpy(triple),
            i,
        )

    def noisy_prior(self, rng: np.random.Generator, prev_kps: np.ndarray) -> np.ndarray:
        """Ground truth of frame t - g as an imperfect previous prediction (or empty: a first frame)."""
        v = self.vcfg
        k = len(prev_kps)
        if not v.use_prior or rng.random() < v.zero_prob:
            return np.zeros((k, *self.spec.heatmap_wh[::-1]), np.float32)
        h = self.spec.input_wh[1]
        xy = prev_kps[:, :2] + rng.normal(0, v.shift * h, 2) + rng.normal(0, v.noise * h, (k, 2))
        scores = np.where(prev_kps[:, 2] > 0, rng.uniform(0.3, 1.0, k), 0.0)
        scores[rng.random(k) < v.joint_drop] = 0.0
        return render_prior(xy[None], scores[None], self.spec.heatmap_wh, self.spec.heatmap_stride, v.sigma)[0]


def self_prior(heatmaps: np.ndarray, spec: ModelSpec, cfg: VideoConfig) -> np.ndarray:
    """The model's own prediction (N, K, h, w) decoded as the service decodes it and drawn as a prior."""
    coords, scores = decode(heatmaps)
    xy = heatmap_to_input(coords, spec.heatmap_stride)
    scores = np.where(scores >= cfg.threshold, scores, 0.0)
    return render_prior(xy, scores, spec.heatmap_wh, spec.heatmap_stride, cfg.sigma)


# ------------------------------------------------------------------------------------ adversarial term
def soft_argmax(logits: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """(N, K, h, w) logits -> expected (x, y) in heatmap pixels (N, K, 2), differentiable."""
    n, k, h, w = logits.shape
    p = torch.softmax(beta * logits.reshape(n, k, h * w), dim=-1).reshape(n, k, h, w)
    xs = torch.arange(w, dtype=logits.dtype, device=logits.device)
    ys = torch.arange(h, dtype=logits.dtype, device=logits.device)
    return torch.stack([(p.sum(2) * xs).sum(-1), (p.sum(3) * ys).sum(-1)], dim=-1)


class MotionDiscriminator(nn.Module):
    """Pose triple (N, 3, K, 2) in crop-normalised units + joint mask (N, K) -> realness logit (N,), from the
    labelled joints' velocities and acceleration (where the person is, is not its business)."""

    def __init__(self, num_keypoints: int, hidden: int = 128):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(num_keypoints * 7, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, 1),
        )  # fmt: skip

    def forward(self, triple: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        v1, v2 = triple[:, 1] - triple[:, 0], triple[:, 2] - triple[:, 1]
        feats = torch.cat([v1, v2, v2 - v1], dim=-1) * mask[..., None] * 10.0  # x10: velocities are ~0.01
        return self.mlp(torch.cat([feats, mask[..., None]], dim=-1).flatten(1)).squeeze(1)


# ---------------------------------------------------------------------------------------------- training
def train_video(cfg: VideoExperiment) -> Path:
    """Train per ``cfg``; returns the run directory (final.pt, log.csv, config.json, metrics.json)."""
    torch.set_num_threads(max(1, cfg.run.threads))
    seed_everything(cfg.run.seed)
    v = cfg.video
    init = load_checkpoint(v.init)
    net, base_spec = build_video_net(init, v)
    base = {"config": init["config"], "spec": init["spec"], "model": {}}  # rebuilds the architecture later
    spec = video_spec(base_spec, v, name=f"{base_spec.name}-video" if v.use_prior else base_spec.name,
                      version=cfg.run.name)  # fmt: skip
    d = cfg.data
    frames = load_track_frames(Path(d.root) / d.train_ann, Path(d.root) / d.images)
    for folder in d.extra_train:
        frames += load_track_frames(Path(folder) / "annotations.json", Path(folder) / "images")
    if d.max_train:
        frames = frames[: d.max_train]
    ds = SequenceDataset(frames, spec, cfg.augment, v, d.sigma, cfg.run.seed)
    loader = DataLoader(ds, batch_size=min(cfg.optim.batch_size, len(ds)), shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(cfg.run.seed), num_workers=cfg.run.workers)  # fmt: skip
    disc = MotionDiscriminator(spec.num_keypoints) if v.adversarial > 0 else None
    new = list(net.distillator.parameters())
    old = [p for n, p in net.named_parameters() if not n.startswith("distillator.")]
    opt = torch.optim.Adam([{"params": old, "mult": 1.0}, {"params": new, "mult": v.distill_lr}],
                           lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)  # fmt: skip
    opt_d = torch.optim.Adam(disc.parameters(), lr=v.disc_lr, betas=(0.5, 0.999)) if disc is not None else None
    choose = np.random.default_rng((cfg.run.seed, 7))  # which samples get a self-predicted prior
    run_dir = Path(cfg.run.out_dir) / cfg.run.name
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(to_dict(cfg), indent=2))
    total = cfg.optim.epochs * len(loader)
    log.info("video run %s: %d track frames, %d steps, prior %s, adversarial %g", run_dir, len(ds), total,
             v.use_prior, v.adversarial)  # fmt: skip
    t0, cpu0, step = time.time(), time.process_time(), 0
    fieldnames = ["epoch", "step", "lr", "seconds", "mse", "adv_g", "adv_d", "self_share"]
    with open(run_dir / "log.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fieldnames)
        writer.writeheader()
        for epoch in range(cfg.optim.epochs):
            ds.set_epoch(epoch)
            net.train()
            sums: dict[str, float] = defaultdict(float)
            seen = 0
            for x, target, weights, prior, x_prev, triple, _ in loader:
                for g in opt.param_groups:
                    g["lr"] = lr_at(step, total, cfg.optim) * g["mult"]
                if v.use_prior and v.self_prob > 0 and step >= v.self_after * total:
                    pick = choose.random(len(x)) < v.self_prob
                    if pick.any():
                        with torch.no_grad():
                            hm_prev = net(x_prev[pick], torch.zeros_like(prior[pick])).numpy()
                        prior[torch.from_numpy(pick)] = torch.from_numpy(self_prior(hm_prev, spec, v))
                    sums["self_share"] += float(pick.sum())
                logits = net.logits(x, prior if v.use_prior else None)
                pred = torch.sigmoid(logits)
                mse = 0.5 * ((pred - target) ** 2 * weights[:, :, None, None]).mean()
                loss = mse
                if disc is not None and opt_d is not None:
                    adv_g, adv_d = _adversarial_step(disc, opt_d, logits, triple, spec)
                    loss = loss + v.adversarial * adv_g
                    sums["adv_g"] += float(adv_g) * len(x)
                    sums["adv_d"] += adv_d * len(x)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sums["mse"] += float(mse) * len(x)
                seen += len(x)
                step += 1
            row = {"epoch": epoch, "step": step, "lr": lr_at(step, total, cfg.optim), "seconds": time.time() - t0}
            row.update({k: val / max(seen, 1) for k, val in sums.items()})
            writer.writerow(row)
            fh.flush()
            log.info("epoch %d: %s", epoch, {k: round(float(val), 6) for k, val in row.items()})
            _save(run_dir / "last.pt", cfg, spec, net, epoch, step, base)
    _save(run_dir / "final.pt", cfg, spec, net, cfg.optim.epochs - 1, step, base)
    cpu = (time.process_time() - cpu0) / 60
    (run_dir / "metrics.json").write_text(
        json.dumps({"train_minutes": (time.time() - t0) / 60, "train_cpu_minutes": cpu}, indent=2)
    )
    return run_dir


def _adversarial_step(
    disc: MotionDiscriminator, opt_d: torch.optim.Optimizer, logits: torch.Tensor, triple: torch.Tensor,
    spec: ModelSpec,
) -> tuple[torch.Tensor, float]:  # fmt: skip
    """One discriminator update (ground-truth triples vs triples ending in the prediction) and the
    generator's non-saturating loss on the prediction (gradient into the pose network only)."""
    w, h = spec.input_wh
    norm = torch.tensor([w, h], dtype=torch.float32)
    mask = (triple[..., 2] > 0).all(dim=1).float()  # joints labelled in all three frames
    real = triple[..., :2] / norm
    pred_xy = heatmap_to_input_t(soft_argmax(logits), spec.heatmap_stride) / norm
    fake = torch.cat([real[:, :2], pred_xy[:, None]], dim=1)
    keep = mask.sum(1) >= 4
    if not keep.any():
        return logits.sum() * 0.0, 0.0
    real, fake, mask = real[keep], fake[keep], mask[keep]
    d_loss = F.binary_cross_entropy_with_logits(disc(real, mask), torch.ones(len(real))) + \
        F.binary_cross_entropy_with_logits(disc(fake.detach(), mask), torch.zeros(len(real)))  # fmt: skip
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    g_loss = F.binary_cross_entropy_with_logits(disc(fake, mask), torch.ones(len(fake)))
    disc.zero_grad(set_to_none=True)  # the generator's backward leaves grads here; the next d step clears them
    return g_loss, float(d_loss.detach())


def heatmap_to_input_t(xy: torch.Tensor, stride: float) -> torch.Tensor:
    """``okpose.core.heatmaps.heatmap_to_input`` on tensors."""
    return (xy + 0.5) * stride - 0.5


def _save(
    path: Path, cfg: VideoExperiment, spec: ModelSpec, net: VideoPoseNet, epoch: int, step: int, base: dict
) -> None:
    """Self-describing: the per-frame student's config and spec (``base``, to rebuild the architecture)
    travel with the video weights, so the checkpoint does not need ``video.init`` any more."""
    save_checkpoint(path, config=to_dict(cfg), spec=spec.to_metadata(), epoch=epoch, step=step,
                    model=net.state_dict(), kind="video", base=base)  # fmt: skip


def load_video_net(checkpoint: str | Path) -> tuple[VideoPoseNet, VideoExperiment, ModelSpec]:
    """The trained video network, its config and spec, from a video checkpoint alone."""
    state = load_checkpoint(checkpoint)
    if state.get("kind") != "video":
        raise ValueError(f"{checkpoint} is not a video-mode checkpoint (python -m trainer video)")
    cfg: VideoExperiment = build(VideoExperiment, state["config"])
    net, _ = build_video_net(state["base"], cfg.video, load_weights=False)
    net.load_state_dict(state["model"])
    return net.eval(), cfg, ModelSpec.from_metadata(state["spec"])


# ----------------------------------------------------------------------------------------------- export
def export_video_onnx(
    checkpoint: str | Path, out: str | Path, name: str | None = None, version: str | None = None
) -> dict[str, Any]:
    """A video run -> ONNX. With a prior: inputs ``input`` (N, 3, H, W) and ``prior`` (N, K, h, w), the
    ``VideoPrior`` in the spec; the control arm (``use_prior`` false): the per-frame network, one input.
    Checked against torch with a real-looking prior (and an empty one)."""
    from trainer.export import PRETRAINED, save_onnx
    from trainer.models import count_params

    net, cfg, spec = load_video_net(checkpoint)
    w, h = spec.input_wh
    hw, hh = spec.heatmap_wh
    extra = {
        **spec.extra,
        "arch": "movenet-video" if cfg.video.use_prior else "movenet",
        "params": str(count_params(net)),
    }
    extra["pretrained"] = PRETRAINED["movenet"]
    extra["source"] = (
        f"python -m trainer video, run {cfg.run.name} (seed {cfg.run.seed}, {cfg.optim.epochs} epochs from "
        f"{cfg.video.init}, adversarial {cfg.video.adversarial}; trainer/configs/video.yaml)"
    )
    spec = ModelSpec(**{**spec.__dict__, "name": name or spec.name, "version": version or spec.version, "extra": extra})
    x = torch.randn(3, 3, h, w, generator=torch.Generator().manual_seed(0))
    if cfg.video.use_prior:
        xy = np.random.default_rng(0).uniform([0, 0], [w, h], (3, spec.num_keypoints, 2))
        scores = np.tile(np.linspace(0, 1, spec.num_keypoints), (3, 1))
        scores[2] = 0  # an empty prior: the first-frame path
        prior = torch.from_numpy(render_prior(xy, scores, (hw, hh), spec.heatmap_stride, cfg.video.sigma))
        save_onnx(net, {"input": x[:1], "prior": prior[:1]}, spec, out)
        with torch.no_grad():
            ref = net(x, prior).numpy()
        feeds = {"input": x.numpy(), "prior": prior.numpy()}
    else:
        module = PerFrame(net).eval()
        save_onnx(module, {"input": x[:1]}, spec, out)
        with torch.no_grad():
            ref = module(x).numpy()
        feeds = {"input": x.numpy()}
    from okpose.core.runtime import open_session

    got = open_session(out).run(None, feeds)[0]
    diff = float(np.abs(ref - got).max())
    if diff >= 1e-4:
        raise RuntimeError(f"torch vs ONNX Runtime outputs differ by {diff:.2e} (>= 1e-4)")
    report = {"out": str(out), "video": cfg.video.use_prior, "max_abs_diff": diff}
    log.info("exported %s", report)
    return report
