"""``movenet``: the MoveNet Lightning teacher's pose-trained MobileNetV2 + FPN as the shared trunk.

MoveNet (Google, Apache-2.0) was trained for human pose on COCO and Active; its stride-4 FPN
features (24 channels) already encode which side of a person is which, the thing the one-room
training data cannot teach (``trainer.pretrained.movenet_parts`` cuts them out of the converted
teacher, ``make teachers``). Each branch is one of MoveNet's head trunks (depthwise 3x3 -> 1x1 to 96
-> ReLU, pretrained): branch 0 the keypoint-heatmap head with its own pretrained 1x1 output and
sigmoid, the others the trunks of its offset / regression / centre heads with a new 1x1 output
(distinct initial branches, as OKDHP needs diverse peers). Heatmaps are sigmoid outputs in [0, 1],
trained with the usual Gaussian targets. Input height and width must be multiples of 32 (the FPN's
x2 upsampling meets the stride-32 features).
"""

from __future__ import annotations

import torch
from torch import nn


class MoveNetStem(nn.Module):
    """(N, 3, H, W) RGB normalised to [-1, 1] -> stride-4 features (N, 24, H/4, W/4).

    ``encoder``: MoveNet's trunk (``trainer.pretrained.movenet_parts``)."""

    def __init__(self, encoder: nn.Module, shared_blocks: int = 0) -> None:
        super().__init__()
        self.encoder = encoder
        # sharing depth: extra shared residual 3x3 blocks on the features (0 in the shipped recipe), starting
        # as the identity so that the pretrained heads still read MoveNet's features
        self.shared = nn.ModuleList(nn.Conv2d(24, 24, 3, 1, 1) for _ in range(shared_blocks))
        for conv in self.shared:
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.encoder(x)
        for conv in self.shared:
            f = f + torch.relu(conv(f))
        return f


class MoveNetBranch(nn.Module):
    """A MoveNet head trunk (24 -> 96 at stride 4) -> 1x1 to K -> sigmoid. ``trunk``: a pretrained head trunk;
    ``out``: its pretrained 1x1 output to K (branch 0) or None (a new output starting near zero)."""

    embed_channels = 96

    def __init__(self, trunk: nn.Module, out: nn.Conv2d | None, num_keypoints: int):
        super().__init__()
        self.trunk = trunk
        conv = nn.Conv2d(self.embed_channels, num_keypoints, 1)
        if out is not None and out.out_channels == num_keypoints:
            conv.load_state_dict(out.state_dict())
        else:
            nn.init.normal_(conv.weight, std=1e-3)
            nn.init.constant_(conv.bias, -4.0)  # sigmoid(-4) ~ 0.02: starts near an empty heatmap
        conv.keep_init = True  # type: ignore[assignment]  # MultiBranchNet's head re-initialisation skips it
        self.head = nn.Sequential(conv, nn.Sigmoid())

    def embed(self, f: torch.Tensor) -> torch.Tensor:
        return self.trunk(f)

    def forward(self, f: torch.Tensor) -> list[torch.Tensor]:
        return [self.head(self.embed(f))]


def movenet_branches(
    heads: list[tuple[nn.Module, nn.Conv2d | None]], num_keypoints: int, depths: list[int]
) -> list[MoveNetBranch]:
    """One branch per entry of ``depths`` (depth is not used: MoveNet's heads are one block each); branch b
    starts from (a copy of) head trunk b mod 4, branch 0 from the keypoint-heatmap head with its output."""
    import copy

    return [
        MoveNetBranch(copy.deepcopy(heads[b % len(heads)][0]), heads[0][1] if b == 0 else None, num_keypoints)
        for b in range(len(depths))
    ]
