"""Feature Aggregation Unit (OKDHP): fuse the branches' final heatmaps into the ensemble target.

Parallel 3x3 / 5x5 / 7x7 convs on the shared features -> global average pool -> FC ->
(B, K) logits -> softmax over branches -> per-branch, per-joint weights. The ensemble is the
weighted sum of every branch's **final** heatmap (the official code's ensemble leaves branch 0's
final output out; here each branch contributes its own last output).

Two layouts (``model.fau``): ``paper`` (the paper's Fig. 3: full-width paths **summed**, FC C -> 64,
then one FC 64 -> K per branch) and ``concat`` (the layout used before: 32-channel paths concatenated,
one FC to B x K).
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_path(cin: int, cout: int, k: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, k, 1, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))


class FeatureAggregationUnit(nn.Module):
    def __init__(
        self, in_channels: int, num_branches: int, num_keypoints: int, layout: str = "paper", hidden: int = 64
    ):
        super().__init__()
        if layout not in ("paper", "concat"):
            raise ValueError(f"model.fau must be paper | concat, got {layout!r}")
        self.num_branches, self.num_keypoints, self.layout = num_branches, num_keypoints, layout
        width = in_channels if layout == "paper" else 32
        self.paths = nn.ModuleList(_conv_path(in_channels, width, k) for k in (3, 5, 7))
        if layout == "paper":
            self.squeeze: nn.Module = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(True))
            heads = [nn.Linear(hidden, num_keypoints) for _ in range(num_branches)]
        else:
            self.squeeze = nn.Identity()
            heads = [nn.Linear(3 * width, num_branches * num_keypoints)]
        self.heads = nn.ModuleList(heads)
        for h in self.heads:  # start from uniform averaging
            nn.init.zeros_(h.weight)
            nn.init.zeros_(h.bias)

    def weights(self, features: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, B, K) weights summing to 1 over B."""
        if self.layout == "paper":
            pooled = sum((p(features) for p in self.paths), torch.zeros(())).mean(dim=(2, 3))
            hidden = self.squeeze(pooled)
            logits = torch.stack([h(hidden) for h in self.heads], dim=1)
        else:
            pooled = torch.cat([p(features).mean(dim=(2, 3)) for p in self.paths], dim=1)
            logits = self.heads[0](pooled).view(-1, self.num_branches, self.num_keypoints)
        return logits.softmax(dim=1)

    def forward(self, features: torch.Tensor, finals: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """finals: B tensors (N, K, h, w), each branch's last heatmap. Returns (ensemble, weights)."""
        if len(finals) != self.num_branches:
            raise ValueError(f"expected {self.num_branches} branch outputs, got {len(finals)}")
        w = self.weights(features)
        stacked = torch.stack(finals, dim=1)  # (N, B, K, h, w)
        return (w[..., None, None] * stacked).sum(dim=1), w


def average_ensemble(finals: list[torch.Tensor]) -> torch.Tensor:
    """Ablation: plain mean of the branches' final heatmaps."""
    return torch.stack(finals, dim=0).mean(dim=0)


class FusionHead(nn.Module):
    """FFL's fusion module, for heatmaps: every branch's head-input features concatenated, a 1x1 conv
    back to one branch's width, a depthwise 3x3 and a 1x1 heatmap head (the fused "classifier")."""

    def __init__(self, channels: int, num_branches: int, num_keypoints: int):
        super().__init__()
        self.num_branches = num_branches
        self.fuse = nn.Sequential(
            nn.Conv2d(channels * num_branches, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(True),
            nn.Conv2d(channels, channels, 3, 1, 1, groups=channels, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(True),
        )
        self.head = nn.Conv2d(channels, num_keypoints, 1)
        nn.init.normal_(self.head.weight, std=1e-3)
        nn.init.zeros_(self.head.bias)

    def forward(self, embeddings: list[torch.Tensor]) -> torch.Tensor:
        if len(embeddings) != self.num_branches:
            raise ValueError(f"expected {self.num_branches} branch features, got {len(embeddings)}")
        return self.head(self.fuse(torch.cat(embeddings, dim=1)))


class Projection(nn.Module):
    """MCL's per-branch embedding: global average pool of the head-input features -> MLP -> unit vector."""

    def __init__(self, channels: int, dim: int = 64):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(channels, channels), nn.ReLU(True), nn.Linear(channels, dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.mlp(features.mean(dim=(2, 3))), dim=1)
