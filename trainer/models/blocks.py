"""Building blocks shared by the families."""

from __future__ import annotations

import torch
from torch import nn


def _cbr(cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand -> 3x3 depthwise (stride s) -> 1x1 project (+ identity)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, expand: int = 4):
        super().__init__()
        mid = cin * expand
        self.body = nn.Sequential(
            _cbr(cin, mid, 1), _cbr(mid, mid, 3, stride, groups=mid), _cbr(mid, cout, 1, act=False)
        )
        self.identity = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.identity else y


def count_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def count_macs(m: nn.Module, input_hw: tuple[int, int]) -> int:
    """Multiply-accumulates of one forward pass at batch 1 (conv, deconv, linear).

    This is what mmcv/fvcore report as "FLOPs" (and what RTMPose-t's 0.36 G refers to).
    """
    total = 0

    def conv_hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(mod, nn.ConvTranspose2d):
            total += inp[0].numel() * mod.out_channels * mod.kernel_size[0] * mod.kernel_size[1] // mod.groups
        elif isinstance(mod, nn.Conv2d):
            total += out.numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]
        elif isinstance(mod, nn.Linear):
            total += mod.in_features * mod.out_features

    hooks = [mod.register_forward_hook(conv_hook) for mod in m.modules() if isinstance(mod, nn.Conv2d | nn.Linear)]
    was_training = m.training
    m.eval()
    with torch.no_grad():
        m(torch.zeros(1, 3, *input_hw))
    m.train(was_training)
    for h in hooks:
        h.remove()
    return total
