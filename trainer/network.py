"""The trained module: multi-branch net + what each training mode adds on top of the branches.

- ``okdhp``: the Feature Aggregation Unit (FAU) weights the branches' final heatmaps into the ensemble;
- ``avg``: plain averaging instead of the FAU;
- ``ffl`` / ``pcl``: a fusion head over every branch's head-input features (FFL's fused "classifier";
  PCL's peer ensemble teacher); ``pcl`` also keeps a temporal mean teacher, an exponential moving
  average of the whole network that receives no gradient (``update_mean_teacher`` after each step);
- ``mcl``: a projection head per branch for the contrastive term;
- ``single``: the student alone.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from trainer.fau import FeatureAggregationUnit, FusionHead, Projection, average_ensemble
from trainer.models import ModelConfig, MultiBranchNet, NetOutput

MODES = ("single", "okdhp", "avg", "ffl", "pcl", "mcl")


class OKDHPNet(nn.Module):
    """``forward`` returns the branches' ``NetOutput`` with ``ensemble`` (N, K, h, w) and ``fau_weights`` set
    (None without an ensemble), the mean teacher's peer average in ``teachers["mean"]`` (pcl) and the
    branch embeddings in ``projections`` (mcl)."""

    def __init__(self, cfg: ModelConfig, mode: str):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"train.mode must be one of {' | '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self.net = MultiBranchNet(cfg)
        k, b = cfg.num_keypoints, cfg.num_branches
        if mode in ("ffl", "pcl", "mcl") and not self.net.embeds:
            raise ValueError(f"train.mode={mode} needs branch features: model.arch litehg or nanodet")
        self.fau = FeatureAggregationUnit(self.net.feature_channels, b, k, cfg.fau) if mode == "okdhp" else None
        channels = getattr(self.net.branches[0], "embed_channels", 0)
        self.fusion = FusionHead(channels, b, k) if mode in ("ffl", "pcl") else None
        self.projections = nn.ModuleList(Projection(channels) for _ in range(b)) if mode == "mcl" else None
        self.mean_teacher: MultiBranchNet | None = None
        if mode == "pcl":
            self.mean_teacher = copy.deepcopy(self.net).requires_grad_(False).eval()

    def train(self, mode: bool = True) -> OKDHPNet:
        super().train(mode)
        if self.mean_teacher is not None:
            self.mean_teacher.eval()  # a fixed function of its (averaged) weights and statistics
        return self

    @torch.no_grad()
    def update_mean_teacher(self, decay: float, step: int | None = None) -> None:
        """PCL's temporal mean: teacher <- d x teacher + (1 - d) x network (weights and BN statistics), with
        d = min(decay, (1 + step) / (10 + step)) (mean-teacher warm-up: short runs do not stay at the init)."""
        if self.mean_teacher is None:
            return
        if step is not None:
            decay = min(decay, (1 + step) / (10 + step))
        for t, s in zip(self.mean_teacher.state_dict().values(), self.net.state_dict().values(), strict=True):
            if t.dtype.is_floating_point:
                t.mul_(decay).add_(s.detach(), alpha=1 - decay)
            else:
                t.copy_(s)

    def forward(self, x: torch.Tensor) -> NetOutput:
        out: NetOutput = self.net(x)
        if self.fau is not None:
            out.ensemble, out.fau_weights = self.fau(out.features, out.finals)
        elif self.mode in ("avg", "mcl"):
            out.ensemble = average_ensemble(out.finals)
        if self.fusion is not None:
            out.ensemble = self.fusion(out.embeddings)
        if self.projections is not None:
            out.projections = [p(e) for p, e in zip(self.projections, out.embeddings, strict=True)]
        if self.mean_teacher is not None:
            with torch.no_grad():
                finals = self.mean_teacher(x).finals
            out.teachers["mean"], out.teachers["mean_b0"] = average_ensemble(finals), finals[0]
        return out

    def heatmaps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every branch's final heatmaps (``b0``, ``b1``, …), the ensemble, and (pcl) the temporal mean
        teacher's branch 0 (``mean_b0``, the network PCL deploys), for evaluation."""
        out = self.forward(x)
        res = {f"b{i}": hm for i, hm in enumerate(out.finals)}
        if out.ensemble is not None:
            res["ensemble"] = out.ensemble
        if "mean_b0" in out.teachers:
            res["mean_b0"] = out.teachers["mean_b0"]
        return res

    def deployable(self) -> MultiBranchNet:
        """The network whose branch is exported: the temporal mean teacher for PCL, else the network."""
        return self.mean_teacher if self.mean_teacher is not None else self.net
