"""The trained module: multi-branch net + ensemble (FAU, averaging, or none for the baseline)."""

from __future__ import annotations

import torch
from torch import nn

from trainer.fau import FeatureAggregationUnit, average_ensemble
from trainer.models import ModelConfig, MultiBranchNet, NetOutput


class OKDHPNet(nn.Module):
    """``forward`` returns the branches' ``NetOutput`` with ``ensemble`` (N, K, h, w) and ``fau_weights`` set
    (None without an ensemble)."""

    def __init__(self, cfg: ModelConfig, mode: str):
        super().__init__()
        self.mode = mode
        self.net = MultiBranchNet(cfg)
        self.fau = (
            FeatureAggregationUnit(self.net.feature_channels, cfg.num_branches, cfg.num_keypoints)
            if mode == "okdhp"
            else None
        )

    def forward(self, x: torch.Tensor) -> NetOutput:
        out: NetOutput = self.net(x)
        if self.mode == "okdhp" and self.fau is not None:
            out.ensemble, out.fau_weights = self.fau(out.features, out.finals)
        elif self.mode == "avg":
            out.ensemble = average_ensemble(out.finals)
        return out

    def heatmaps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every branch's final heatmaps (``b0``, ``b1``, …) and the ensemble, for evaluation."""
        out = self.forward(x)
        res = {f"b{i}": hm for i, hm in enumerate(out.finals)}
        if out.ensemble is not None:
            res["ensemble"] = out.ensemble
        return res
