"""``MoveNetFull``: all of MoveNet Lightning as a trainable torch module — trunk, its four heads and its own
single-pose decode — so that a student *starts at* Lightning (same keypoints on the same crop, tested) and
distillation can only move it from there.

MoveNet's heads read the stride-4 FPN features: a person-centre heatmap (1 channel, sigmoid), a per-keypoint
regression from the centre (2K: dy, dx in grid cells), keypoint heatmaps (K, sigmoid) and per-keypoint
sub-cell offsets (2K: dy, dx). Its decode (read off the converted graph, ``trainer.pretrained.movenet_parts``):
1. the centre heatmap weighted by ``1 / (distance to the grid centre + 1.8)``, argmax -> centre cell;
2. regressed keypoints = centre + regression at that cell;
3. each keypoint heatmap divided by ``distance to its regressed keypoint + 1.8``, argmax -> keypoint cell;
   score = the (unweighted) heatmap there;
4. keypoint = cell + offset at that cell, in grid cells; x stride = input pixels.
Here it runs batched and on any input size (multiples of 32): the centre weights follow the formula, which
reproduces the graph's 48x48 constant (max difference 1e-2 of ``1/w``, the graph stores it in half precision).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from okpose.core.skeleton import COCO17

DIST_EPS = 1.8  # MoveNet's decode: 1 / (distance + 1.8), for the centre weights and the keypoint weighting


@dataclass
class HeadOutputs:
    """Raw head outputs at stride 4 (N, C, h, w): centre (1), regression (2K), heatmaps (K), offsets (2K)."""

    center: torch.Tensor
    regression: torch.Tensor
    heatmaps: torch.Tensor
    offsets: torch.Tensor


class _Head(nn.Module):
    def __init__(self, trunk: nn.Module, out: nn.Conv2d, sigmoid: bool):
        super().__init__()
        self.trunk, self.out, self.sigmoid = trunk, out, sigmoid

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        y = self.out(self.trunk(f))
        return torch.sigmoid(y) if self.sigmoid else y


def cells(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(h, w) row and column index of every grid cell."""
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    return yy, xx


def center_weights(h: int, w: int) -> torch.Tensor:
    """(h, w) ``1 / (distance to the grid centre + 1.8)`` (the grid centre is cell (h/2, w/2))."""
    yy, xx = cells(h, w)
    return 1.0 / (torch.sqrt((yy - h / 2) ** 2 + (xx - w / 2) ** 2) + DIST_EPS)


def center_cell(center: torch.Tensor) -> torch.Tensor:
    """(N, 1, h, w) centre heatmap -> (N,) flat index of the centre-weighted peak (MoveNet's person pick)."""
    n, _, h, w = center.shape
    return torch.argmax((center[:, 0] * center_weights(h, w).to(center)).reshape(n, -1), dim=1)


def regression_at(regression: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
    """(N, 2K, h, w) regression read at flat cells (N,) -> (N, K, 2) dy, dx per keypoint."""
    n, c = regression.shape[:2]
    return _gather(regression.reshape(n, c, -1), cell[:, None].expand(n, c)).reshape(n, c // 2, 2)


def _gather(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """t (N, C, h*w), idx (N, C') flat cell per channel group -> (N, C') values at those cells."""
    return torch.gather(t, 2, idx.unsqueeze(2)).squeeze(2)


def decode(o: HeadOutputs, stride: int = 4) -> torch.Tensor:
    """MoveNet single-pose decode, batched: (N, K, 3) x, y in input pixels and the keypoint score."""
    n, k, h, w = o.heatmaps.shape
    c = center_cell(o.center)  # (N,)
    cy, cx = (c // w).to(o.center.dtype), (c % w).to(o.center.dtype)
    at_c = regression_at(o.regression, c)  # (dy, dx) per keypoint
    ry, rx = cy[:, None] + at_c[..., 0], cx[:, None] + at_c[..., 1]  # (N, K)
    yy = torch.arange(h, dtype=o.center.dtype, device=o.center.device).view(1, 1, h, 1)
    xx = torch.arange(w, dtype=o.center.dtype, device=o.center.device).view(1, 1, 1, w)
    dist = torch.sqrt((yy - ry[..., None, None]) ** 2 + (xx - rx[..., None, None]) ** 2) + DIST_EPS
    flat = o.heatmaps.reshape(n, k, h * w)
    cell = torch.argmax((o.heatmaps / dist).reshape(n, k, h * w), dim=2)  # (N, K)
    score = _gather(flat, cell)
    off = o.offsets.reshape(n, k, 2, h * w)
    dy = _gather(off[:, :, 0], cell)
    dx = _gather(off[:, :, 1], cell)
    ky, kx = (cell // w).to(o.center.dtype) + dy, (cell % w).to(o.center.dtype) + dx
    return torch.stack([kx * stride, ky * stride, score], dim=2)


class MoveNetFull(nn.Module):
    """(N, 3, H, W) RGB normalised to [-1, 1] -> ``HeadOutputs``; ``keypoints(x)``: the decoded (N, K, 3)."""

    def __init__(self, encoder: nn.Module, heads: dict[str, tuple[nn.Module, nn.Conv2d]]):
        super().__init__()
        self.encoder = encoder
        self.center = _Head(*heads["center"], sigmoid=True)
        self.regression = _Head(*heads["regression"], sigmoid=False)
        self.heatmaps = _Head(*heads["heatmaps"], sigmoid=True)
        self.offsets = _Head(*heads["offsets"], sigmoid=False)
        self.num_keypoints = heads["heatmaps"][1].out_channels

    def heads(self, x: torch.Tensor) -> HeadOutputs:
        f = self.encoder(x)
        return HeadOutputs(self.center(f), self.regression(f), self.heatmaps(f), self.offsets(f))

    def keypoints(self, x: torch.Tensor) -> torch.Tensor:
        return decode(self.heads(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # the exported graph: input -> keypoints
        return self.keypoints(x)


class FlipKeypoints(nn.Module):
    """Export wrapper for flip test inside the graph: the plain and the mirrored crop in one batch, averaged."""

    def __init__(self, net: MoveNetFull, width: int):
        super().__init__()
        self.net, self.width = net, width
        self.register_buffer("perm", torch.as_tensor(COCO17.flip_index(), dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        k = self.net.keypoints(torch.cat([x, torch.flip(x, dims=[3])]))
        plain, mirrored = k[:n], k[n:][:, self.perm]
        mirrored = torch.stack([self.width - mirrored[..., 0], mirrored[..., 1], mirrored[..., 2]], dim=2)
        return (plain + mirrored) / 2


def load_movenet_full(path=None) -> MoveNetFull:  # noqa: ANN001 - Path | None
    """Lightning's converted graph (``make teachers``) as a ``MoveNetFull`` with its trained weights."""
    from trainer.pretrained import MOVENET_ONNX, movenet_named_heads

    encoder, heads = movenet_named_heads(path or MOVENET_ONNX)
    return MoveNetFull(encoder, heads)
