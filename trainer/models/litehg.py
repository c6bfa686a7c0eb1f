"""``litehg``: a CPU real-time hourglass of MobileNetV2 inverted-residual blocks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainer.models.blocks import InvertedResidual, _cbr


class LiteHourglass(nn.Module):
    """Encoder to stride 32 and a lateral-add decoder back to the input stride, then a 1x1 head.

    ``depth`` inverted-residual blocks per level: deeper auxiliary branches use a larger depth.
    """

    def __init__(self, width: int, num_keypoints: int, depth: int, expand: int):
        super().__init__()
        chans = [width, width * 3 // 2, width * 2, width * 3]
        self.down = nn.ModuleList()
        for cin, cout in zip(chans[:-1], chans[1:], strict=True):
            blocks = [InvertedResidual(cin, cout, 2, expand)]
            blocks += [InvertedResidual(cout, cout, 1, expand) for _ in range(depth - 1)]
            self.down.append(nn.Sequential(*blocks))
        self.lateral = nn.ModuleList(_cbr(chans[i + 1], chans[i], 1, act=False) for i in range(len(chans) - 1))
        self.fuse = nn.ModuleList(
            nn.Sequential(*[InvertedResidual(chans[i], chans[i], 1, expand) for _ in range(depth)])
            for i in range(len(chans) - 1)
        )
        self.head = nn.Conv2d(width, num_keypoints, 1)
        self.embed_channels = width

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.head(self.embed(x))]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The features the 1x1 head reads (``width`` channels at stride 4): FFL / PCL / MCL use them."""
        feats = [x]
        for stage in self.down:
            feats.append(stage(feats[-1]))
        y = feats[-1]
        for i in reversed(range(len(self.lateral))):
            up = F.interpolate(self.lateral[i](y), size=feats[i].shape[-2:], mode="nearest")
            y = self.fuse[i](up + feats[i])
        return y


class LiteStem(nn.Module):
    """Stride-4 stem: 3x3 s2 conv, then inverted residuals (one strided) to ``width`` channels."""

    def __init__(self, width: int, extra_blocks: int, expand: int):
        super().__init__()
        blocks: list[nn.Module] = [_cbr(3, 16, 3, 2), InvertedResidual(16, width, 2, 2)]
        blocks += [InvertedResidual(width, width, 1, expand) for _ in range(extra_blocks)]
        self.body = nn.Sequential(*blocks)
        self.out_channels = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
