"""``hourglass``: the paper's stacked hourglass (shared stacks + per-branch stacks)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainer.models.blocks import _cbr


class Bottleneck(nn.Module):
    """Pre-activation bottleneck residual used by the stacked hourglass."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        mid = cout // 2
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.ReLU(inplace=True),
            nn.Conv2d(cin, mid, 1),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, 1, 1),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, cout, 1),
        )
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


class Hourglass(nn.Module):
    def __init__(self, depth: int, ch: int):
        super().__init__()
        self.up1 = Bottleneck(ch, ch)
        self.low1 = Bottleneck(ch, ch)
        self.low2: nn.Module = Hourglass(depth - 1, ch) if depth > 1 else Bottleneck(ch, ch)
        self.low3 = Bottleneck(ch, ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.low3(self.low2(self.low1(F.max_pool2d(x, 2))))
        return self.up1(x) + F.interpolate(low, size=x.shape[-2:], mode="nearest")


class HourglassStack(nn.Module):
    """One stack: hourglass -> features -> heatmaps, plus the re-injection into the next stack."""

    def __init__(self, ch: int, num_keypoints: int, depth: int = 4):
        super().__init__()
        self.hg = Hourglass(depth, ch)
        self.feat = nn.Sequential(Bottleneck(ch, ch), _cbr(ch, ch, 1))
        self.out = nn.Conv2d(ch, num_keypoints, 1)
        self.merge_feat = nn.Conv2d(ch, ch, 1)
        self.merge_out = nn.Conv2d(num_keypoints, ch, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.feat(self.hg(x))
        hm = self.out(f)
        return x + self.merge_feat(f) + self.merge_out(hm), hm


class HourglassStem(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(
            _cbr(3, 64, 7, 2), Bottleneck(64, 128), nn.MaxPool2d(2), Bottleneck(128, 128), Bottleneck(128, ch)
        )
        self.out_channels = ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class HourglassStacks(nn.Module):
    """A sequence of hourglass stacks: the features after the last one and every stack's heatmaps
    (final last). Used for the shared trunk (features feed the branches) and for each branch."""

    def __init__(self, ch: int, num_keypoints: int, stacks: int):
        super().__init__()
        self.stacks = nn.ModuleList(HourglassStack(ch, num_keypoints) for _ in range(stacks))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        outs = []
        for s in self.stacks:
            x, hm = s(x)
            outs.append(hm)
        return x, outs


class StackedBranch(HourglassStacks):
    """A branch of hourglass stacks: only its heatmaps."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[override]
        return super().forward(x)[1]
