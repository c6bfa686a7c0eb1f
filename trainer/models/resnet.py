"""``resnet``: ResNet-18 SimpleBaseline (layer1-2 shared, layer3-4 + deconv head per branch)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainer.models.blocks import _cbr


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(_cbr(cin, cout, 3, stride), _cbr(cout, cout, 3, act=False))
        self.skip = nn.Identity() if stride == 1 and cin == cout else _cbr(cin, cout, 1, stride, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.skip(x))


def _res_layer(cin: int, cout: int, blocks: int, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(cin, cout, stride), *[BasicBlock(cout, cout) for _ in range(blocks - 1)])


class ResNetStem(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _cbr(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1), _res_layer(64, 64, 2, 1), _res_layer(64, 128, 2, 2)
        )
        self.out_channels = 128

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ResNetBranch(nn.Module):
    """layer3 + layer4 (``depth`` blocks each) + three deconvs back to stride 4 (SimpleBaseline)."""

    def __init__(self, num_keypoints: int, depth: int, deconv: int):
        super().__init__()
        self.body = nn.Sequential(_res_layer(128, 256, 2 * depth, 2), _res_layer(256, 512, 2 * depth, 2))
        layers: list[nn.Module] = []
        cin = 512
        for _ in range(3):
            layers += [nn.ConvTranspose2d(cin, deconv, 4, 2, 1, bias=False), nn.BatchNorm2d(deconv), nn.ReLU(True)]
            cin = deconv
        self.head = nn.Sequential(*layers, nn.Conv2d(deconv, num_keypoints, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.head(self.body(x))]
