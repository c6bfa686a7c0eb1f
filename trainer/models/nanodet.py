"""``nanodet``: COCO-pretrained NanoDet stages (the shipped student) with a top-down neck."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainer.models.blocks import InvertedResidual, _cbr


class NanoDetStem(nn.Module):
    """COCO-pretrained NanoDet stages (``trainer.pretrained``) + a top-down neck.

    Returns ``(p4, p8)``: stride-4 lateral features (width // 2 channels) for the branches' last,
    high-resolution step, and fused stride-8 features (``width`` channels, also the FAU input).
    With 2 pretrained stages the stride-16 context comes from new inverted-residual blocks.
    """

    def __init__(self, width: int, stages: int, expand: int, shared_blocks: int = 0):
        super().__init__()
        from trainer.pretrained import nanodet_encoder

        if stages not in (2, 3):
            raise ValueError(f"pretrained_stages must be 2 or 3, got {stages}")
        self.encoder, self.stages = nanodet_encoder(), stages
        self.context = (
            None if stages == 3 else nn.Sequential(InvertedResidual(128, 128, 2, 2), InvertedResidual(128, 128, 1, 2))
        )
        self.lat16 = _cbr(256 if stages == 3 else 128, width, 1)
        self.lat8 = _cbr(128, width, 1)
        self.lat4 = _cbr(64, width // 2, 1)
        self.fuse8 = InvertedResidual(width, width, 1, expand)
        # sharing depth: stride-8 blocks every branch shares (the branches' own ``depth`` blocks follow)
        self.shared = nn.Sequential(*[InvertedResidual(width, width, 1, expand) for _ in range(shared_blocks)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c4, c8, c16 = self.encoder(x)
        if self.context is not None:
            c16 = self.context(c8)
        p16 = F.interpolate(self.lat16(c16), size=c8.shape[-2:], mode="nearest")
        return self.lat4(c4), self.shared(self.fuse8(self.lat8(c8) + p16))


class NanoDetBranch(nn.Module):
    """stride-8 inverted residuals (``depth``) -> upsample x2 + stride-4 lateral -> 3x3 -> 1x1 heatmaps."""

    def __init__(self, width: int, num_keypoints: int, depth: int, expand: int):
        super().__init__()
        self.embed_channels = width // 2
        self.body = nn.Sequential(*[InvertedResidual(width, width, 1, expand) for _ in range(depth)])
        self.reduce = _cbr(width, width // 2, 1, act=False)
        self.refine = nn.Sequential(_cbr(width // 2, width // 2, 3, groups=width // 2), _cbr(width // 2, width // 2, 1))
        self.head = nn.Conv2d(width // 2, num_keypoints, 1)

    def embed(self, feats: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """The features the 1x1 head reads (``width // 2`` channels at stride 4): FFL / PCL / MCL use them."""
        p4, p8 = feats
        up = F.interpolate(self.reduce(self.body(p8)), size=p4.shape[-2:], mode="bilinear", align_corners=False)
        return self.refine(up + p4)

    def forward(self, feats: tuple[torch.Tensor, torch.Tensor]) -> list[torch.Tensor]:
        return [self.head(self.embed(feats))]
