"""``python -m trainer distill``: a student that *starts at* MoveNet Lightning and can only move from there.

The student is all of Lightning (``trainer.models.movenet_full``: trunk, four heads, its own decode in the
graph), so before the first step it gives Lightning's keypoints on the service's crops. Training moves it
toward the teacher-ensemble labels of the diverse photos (``python -m trainer teach``: MoveNet Thunder, plain
and mirrored, agreement-filtered, per-keypoint target weights) while a frozen copy of the original Lightning
holds it where the labels say nothing:

- **label terms** (Thunder ensemble, weighted by its per-keypoint confidence): keypoint heatmaps -> a Gaussian
  at the label (σ = ``sigma`` cells); offsets -> label minus cell in the 3x3 cells round the label's cell;
  regression at Lightning's centre cell -> label minus centre;
- **keep terms** (anti-forgetting, the frozen Lightning on the same augmented crop): every head's output
  where no label speaks (unlabelled joints' heatmaps, the centre heatmap, the regression and offsets read
  by the decode), plus L2-SP toward the pretrained weights;
- low learning rate, and the exported weights are an EMA of the trained ones.

Augmentation: the trainer's (``trainer.augment``: scale, rotation, shift, half-body crops, flips, colour,
blur, grey, occlusion, pasted backgrounds). The export carries the spec (``output: keypoints``) and the
provenance of every training set.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from okpose.core.skeleton import COCO17
from okpose.core.spec import ModelSpec
from okpose.core.topdown import normalize_crops
from trainer.augment import AugmentConfig, augment_sample
from trainer.data import ImageCache, PersonRecord, background_images, load_coco
from trainer.models.movenet_full import HeadOutputs, MoveNetFull, cells, center_cell, load_movenet_full, regression_at
from trainer.peers import DATA
from trainer.pretrained import MOVENET_MEAN, MOVENET_STD

log = logging.getLogger("trainer.distill")
STRIDE = 4


@dataclass
class DistillConfig:
    name: str = "distill"
    input_wh: tuple[int, int] = (192, 192)
    padding: float = 1.25
    # COCO keypoint folders (annotations.json + images/) or "realpose-lab" (its labelled train split)
    train: list[str] = field(default_factory=lambda: ["data/diverse/train", "data/misc", "realpose-lab"])
    epochs: float = 2.0
    batch_size: int = 32
    lr: float = 5e-5
    l2sp: float = 1e-4
    ema: float = 0.998
    sigma: float = 1.5  # label heatmap Gaussian, in stride-4 cells (Lightning's own peaks: ~1.25, measured)
    # label heatmap peak height: "one" (1.0) or "lightning" (the frozen Lightning's own peak for that joint, so the
    # label term moves the peak and leaves the confidence scale alone; Lightning's peaks are ~0.66, not 1)
    label_peak: str = "one"
    w_heatmap: float = 1.0
    w_offset: float = 1.0
    w_regression: float = 0.1
    w_keep: float = 1.0
    seed: int = 0
    threads: int = 1
    workers: int = 1
    max_minutes: float = 0.0  # stop (checkpointed) after this long; 0: no limit
    out_dir: str = "runs"
    backgrounds: str = "/usr/share/doc/opencv-doc/examples/data"


def config_from(overrides: list[str]) -> DistillConfig:
    """``key=value`` overrides on the defaults (lists and pairs comma-separated)."""
    cfg = DistillConfig()
    kinds = {f.name: type(getattr(cfg, f.name)) for f in fields(DistillConfig)}
    values: dict = {}
    for o in overrides:
        key, sep, raw = o.partition("=")
        if not sep or key not in kinds:
            raise SystemExit(f"unknown override {o!r}; fields: {sorted(kinds)}")
        kind = kinds[key]
        if kind is tuple:
            values[key] = tuple(int(v) for v in raw.split(","))
        elif kind is list:
            values[key] = [v for v in raw.split(",") if v]
        else:
            values[key] = kind(raw)
    return replace(cfg, **values)


def spec_for(cfg: DistillConfig, version: str = "1") -> ModelSpec:
    return ModelSpec(
        name="okpose-movenet",
        version=version,
        input_wh=tuple(cfg.input_wh),  # type: ignore[arg-type]
        mean=MOVENET_MEAN,
        std=MOVENET_STD,
        heatmap_stride=STRIDE,
        padding=cfg.padding,
        color="rgb",
        output="keypoints",
    )


def load_weighted(folder: str) -> tuple[list[PersonRecord], list[np.ndarray]]:
    """Records of one training folder and per-keypoint target weights (the ensemble's, else 1 where labelled)."""
    if folder == "realpose-lab":
        ann, images = DATA / "annotations" / "person_keypoints_train.json", DATA / "images"
    else:
        ann, images = Path(folder) / "annotations.json", Path(folder) / "images"
    recs = load_coco(ann, images, min_keypoints=4)
    weights_by_id = {
        a["id"]: np.asarray(a["target_weights"], np.float32)
        for a in json.loads(Path(ann).read_text())["annotations"]
        if "target_weights" in a
    }
    ws = [weights_by_id.get(r.ann_id, (r.keypoints[:, 2] > 0).astype(np.float32)) for r in recs]
    return recs, ws


class DistillDataset(Dataset):
    """Record -> (input (3, H, W), keypoints in crop pixels (K, 2), target weight (K,))."""

    def __init__(self, records: list[PersonRecord], weights: list[np.ndarray], spec: ModelSpec, cfg: DistillConfig):
        self.records, self.weights, self.spec, self.cfg = records, weights, spec, cfg
        self.aug = AugmentConfig(backgrounds=cfg.backgrounds)
        self.backgrounds = background_images(cfg.backgrounds) if Path(cfg.backgrounds).is_dir() else []
        self.cache = ImageCache()
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r = self.records[i]
        rng = np.random.default_rng((self.cfg.seed, self.epoch, i))
        img = self.cache.get(r.image_path)
        other = None
        if self.backgrounds and rng.random() < self.aug.backgrounds_share:
            other = self.cache.get(self.backgrounds[int(rng.integers(len(self.backgrounds)))])
        kps = r.keypoints.copy()
        kps[:, 2] = np.where(kps[:, 2] > 0, 1.0 + self.weights[i], 0.0)  # carry the weight through the flip
        crop, out, _ = augment_sample(
            rng, img, np.asarray(r.box_xyxy), kps, self.aug, self.spec.input_wh, self.spec.padding, COCO17, other
        )
        w, h = self.spec.input_wh
        inside = (out[:, 0] >= 0) & (out[:, 0] < w) & (out[:, 1] >= 0) & (out[:, 1] < h)
        weight = np.where((out[:, 2] > 0) & inside, out[:, 2] - 1.0, 0.0).astype(np.float32)
        x = normalize_crops(crop[None], self.spec)[0]
        return torch.from_numpy(x), torch.from_numpy(out[:, :2].astype(np.float32)), torch.from_numpy(weight)


def losses(s: HeadOutputs, t: HeadOutputs, kps: torch.Tensor, weight: torch.Tensor, cfg: DistillConfig) -> dict:
    """Per-term losses (means over the batch). ``kps`` (N, K, 2) crop pixels, ``weight`` (N, K) in [0, 1]."""
    n, k, h, w = s.heatmaps.shape
    yy, xx = cells(h, w)
    g = kps / STRIDE  # label in cells (x, y)
    d2 = (xx.view(1, 1, h, w) - g[..., 0, None, None]) ** 2 + (yy.view(1, 1, h, w) - g[..., 1, None, None]) ** 2
    gauss = torch.exp(-d2 / (2 * cfg.sigma**2))
    if cfg.label_peak == "lightning":
        gauss = gauss * t.heatmaps.detach().amax((2, 3)).clamp(0.2, 1.0)[..., None, None]
    elif cfg.label_peak != "one":
        raise ValueError(f"label_peak must be 'one' or 'lightning', got {cfg.label_peak!r}")
    lab = (weight > 0).float()
    wk = weight[..., None, None]
    # heatmaps: the label where there is one, the frozen Lightning elsewhere (summed over cells, mean over joints)
    hm_label = (wk * (s.heatmaps - gauss) ** 2).sum((2, 3)).mean()
    hm_keep = ((1 - lab)[..., None, None] * (s.heatmaps - t.heatmaps) ** 2).sum((2, 3)).mean()
    center_keep = ((s.center - t.center) ** 2).sum((2, 3)).mean()
    # offsets: label - cell in the 3x3 cells round the label's cell; Lightning's where it is confident otherwise
    near = (d2 <= 2.0).float()  # the 3x3 neighbourhood (distance <= sqrt 2)
    off = s.offsets.view(n, k, 2, h, w)
    toff = t.offsets.view(n, k, 2, h, w)
    target = torch.stack([g[..., 1, None, None] - yy, g[..., 0, None, None] - xx], dim=2)  # (N, K, 2, h, w) dy dx
    m = (wk * near)[:, :, None]
    off_label = (m * (off - target).abs()).sum((2, 3, 4)).sum() / m.sum().clamp(min=1.0)
    tm = ((1 - lab)[..., None, None] * t.heatmaps)[:, :, None].detach()
    off_keep = (tm * (off - toff).abs()).sum() / tm.sum().clamp(min=1.0)
    # regression at the frozen Lightning's (centre-weighted) centre cell: label - centre, else Lightning's
    c = center_cell(t.center)
    cy, cx = (c // w).float(), (c % w).float()
    reg, treg = regression_at(s.regression, c), regression_at(t.regression, c)
    rtarget = torch.stack([g[..., 1] - cy[:, None], g[..., 0] - cx[:, None]], dim=2)
    reg_label = (weight[..., None] * F.smooth_l1_loss(reg, rtarget, reduction="none")).sum() / lab.sum().clamp(min=1)
    reg_keep = ((1 - lab)[..., None] * F.smooth_l1_loss(reg, treg, reduction="none")).sum() / n
    return {
        "hm_label": cfg.w_heatmap * hm_label,
        "off_label": cfg.w_offset * off_label,
        "reg_label": cfg.w_regression * reg_label,
        "keep": cfg.w_keep * (hm_keep + center_keep + off_keep + 0.1 * reg_keep),
    }


def _ema_update(ema: MoveNetFull, net: MoveNetFull, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema.parameters(), net.parameters(), strict=True):
            e.mul_(decay).add_(p.detach(), alpha=1 - decay)


def train(cfg: DistillConfig) -> Path:
    """Trains, checkpoints every 50 steps to ``<out_dir>/<name>/last.pt`` (resumed when present) and writes
    ``final.pt`` (the EMA weights). Returns the run folder."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    run = Path(cfg.out_dir) / cfg.name
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
    spec = spec_for(cfg)
    records, weights = [], []
    for folder in cfg.train:
        r, w = load_weighted(folder)
        log.info("%s: %d persons", folder, len(r))
        records += r
        weights += w
    ds = DistillDataset(records, weights, spec, cfg)
    net = load_movenet_full()
    frozen = copy.deepcopy(net).eval()
    for p in frozen.parameters():
        p.requires_grad_(False)
    anchor = [p.detach().clone() for p in net.parameters()]
    ema = copy.deepcopy(net).eval()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    steps_per_epoch = math.ceil(len(ds) / cfg.batch_size)
    total = int(cfg.epochs * steps_per_epoch)
    step = 0
    last = run / "last.pt"
    if last.is_file():
        state = torch.load(last, weights_only=False)
        net.load_state_dict(state["net"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        step = int(state["step"])
        log.info("resumed %s at step %d / %d", last, step, total)
    t0 = time.time()
    logf = (run / "log.jsonl").open("a")
    while step < total:
        epoch = step // steps_per_epoch
        ds.epoch = epoch
        g = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        order = torch.randperm(len(ds), generator=g).tolist()
        skip = (step % steps_per_epoch) * cfg.batch_size
        loader = DataLoader(
            torch.utils.data.Subset(ds, order[skip:]),
            batch_size=cfg.batch_size,
            num_workers=cfg.workers,
            persistent_workers=False,
        )
        net.train()
        for x, kps, w in loader:
            if step >= total:
                break
            for gr in opt.param_groups:
                gr["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / total))  # cosine to 0
            with torch.no_grad():
                t = frozen.heads(x)
            parts = losses(net.heads(x), t, kps, w, cfg)
            l2 = sum(((p - a) ** 2).sum() for p, a in zip(net.parameters(), anchor, strict=True))
            loss = sum(parts.values()) + cfg.l2sp * l2
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            _ema_update(ema, net, cfg.ema)
            step += 1
            rec = {"step": step, "total": total, "epoch": epoch, "loss": loss.item(), "min": (time.time() - t0) / 60}
            rec.update({k: round(v.item(), 5) for k, v in parts.items()})
            logf.write(json.dumps(rec) + "\n")
            logf.flush()
            if step % 10 == 0:
                log.info("step %d/%d epoch %d %s", step, total, epoch, rec)
            out_of_time = bool(cfg.max_minutes) and (time.time() - t0) / 60 > cfg.max_minutes
            if step % 50 == 0 or step == total or out_of_time:
                state = {"net": net.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "step": step}
                torch.save(state, last)
            if out_of_time:
                log.info("time limit: stopped at step %d / %d (resume by rerunning)", step, total)
                return run
    torch.save({"ema": ema.state_dict(), "config": asdict(cfg), "step": step}, run / "final.pt")
    return run


TRAINING_SETS = {
    "data/diverse/train": "people-diverse train split (Stanford 40 Actions train actions: research use only, "
    "non-commercial; Intel IoT sample videos: CC BY 4.0), labels: MoveNet Thunder ensemble (python -m trainer teach)",
    "data/misc": "opencv-doc / darknet sample photos (BSD-3-Clause / public domain), teacher labels",
    "realpose-lab": "realpose-lab train split (human labels; licence in ../shared/data/realpose-lab/README.md)",
}


def export(
    checkpoint: Path | None,
    out: Path,
    version: str = "1",
    flip: bool = False,
    input_wh: tuple[int, int] | None = None,
    wise: float = 1.0,
) -> dict:
    """EMA weights of a distill run (``checkpoint`` None: Lightning's own weights, no training step) -> ONNX
    (input -> keypoints) with its spec; torch/ORT parity checked.

    ``wise`` < 1: the weight-space ensemble of WiSE-FT (Wortsman et al., CVPR 2022), every floating-point weight
    ``(1 - wise) * Lightning's + wise * the run's``: 0 is Lightning itself, 1 the run."""
    from trainer.export import PRETRAINED, parity, save_onnx
    from trainer.models.movenet_full import FlipKeypoints

    if not 0.0 <= wise <= 1.0:
        raise ValueError(f"wise must be in [0, 1], got {wise}")

    net = load_movenet_full()
    if checkpoint is None:
        cfg, steps = DistillConfig(name="pretrained", train=[], input_wh=input_wh or (192, 192)), 0
        recipe = (
            "none: MoveNet Lightning's own weights in okpose's form (python -m trainer export-distill --pretrained)"
        )
    else:
        state = torch.load(checkpoint, weights_only=False)
        cfg = DistillConfig(**{**state["config"], "input_wh": tuple(state["config"]["input_wh"])})
        start = net.state_dict()
        net.load_state_dict({k: torch.lerp(start[k], v, wise) if v.is_floating_point() else v
                             for k, v in state["ema"].items()})  # fmt: skip
        steps = int(state["step"])
        recipe = f"python -m trainer distill ({cfg.name}, seed {cfg.seed}, {cfg.epochs} epochs, {steps} steps)"
        if wise < 1.0:
            recipe += f"; weights {wise:g} x the run's + {1 - wise:g} x Lightning's (WiSE-FT, --wise {wise:g})"
    net.eval()
    module = FlipKeypoints(net, cfg.input_wh[0]) if flip else net
    spec = spec_for(cfg, version)
    extra = {
        "arch": "movenet-full",
        "pretrained": PRETRAINED["movenet"],
        "recipe": recipe,
        "training_data": json.dumps([TRAINING_SETS.get(t, t) for t in cfg.train]),
        "flip_in_graph": str(flip).lower(),
        "params": str(sum(p.numel() for p in net.parameters())),
    }
    spec = ModelSpec(**{**spec.__dict__, "extra": extra})
    w, h = cfg.input_wh
    save_onnx(module, {"input": torch.zeros(1, 3, h, w)}, spec, out)
    diff = parity(module, out, (h, w))
    return {"out": str(out), "max_abs_diff": diff, "steps": steps}
