"""Feature Aggregation Unit (OKDHP): fuse the branches' final heatmaps into the ensemble target.

Parallel 3x3 / 5x5 / 7x7 convs on the shared features -> global average pool -> FC ->
(B, K) logits -> softmax over branches -> per-branch, per-joint weights. The ensemble is the
weighted sum of every branch's **final** heatmap (the official code's ensemble leaves branch 0's
final output out; here each branch contributes its own last output).
"""

from __future__ import annotations

import torch
from torch import nn


class FeatureAggregationUnit(nn.Module):
    def __init__(self, in_channels: int, num_branches: int, num_keypoints: int, mid: int = 32):
        super().__init__()
        self.num_branches, self.num_keypoints = num_branches, num_keypoints
        self.paths = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_channels, mid, k, 1, k // 2, bias=False), nn.BatchNorm2d(mid), nn.ReLU(True))
            for k in (3, 5, 7)
        )
        self.fc = nn.Linear(3 * mid, num_branches * num_keypoints)
        nn.init.zeros_(self.fc.weight)  # start from uniform averaging
        nn.init.zeros_(self.fc.bias)

    def weights(self, features: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, B, K) weights summing to 1 over B."""
        pooled = torch.cat([p(features).mean(dim=(2, 3)) for p in self.paths], dim=1)
        logits = self.fc(pooled).view(-1, self.num_branches, self.num_keypoints)
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
