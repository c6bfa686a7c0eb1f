"""Multi-branch pose networks for OKDHP: a shared stem + shared early stages, then B branches.

Every branch returns a list of heatmaps (intermediate stacks first, final last). Three families:
- ``hourglass``: the paper's stacked hourglass (shared stacks + per-branch stacks);
- ``litehg``: a CPU real-time hourglass of MobileNetV2 inverted-residual blocks (the shipped one);
- ``resnet``: ResNet-18 SimpleBaseline (layer1-2 shared, layer3-4 + deconv head per branch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ModelConfig:
    arch: str = "litehg"  # litehg | hourglass | resnet | nanodet
    num_keypoints: int = 17
    num_branches: int = 3
    width: int = 32  # litehg: channels at stride 4; hourglass: features; resnet: deconv channels
    shared_stacks: int = 1  # hourglass: stacks in the shared trunk (litehg: shared IR blocks)
    branch_depths: list[int] = field(default_factory=lambda: [1, 1, 1])  # per branch, [0] is deployed
    expand: int = 4  # litehg inverted-residual expansion
    pretrained_stages: int = 3  # nanodet: COCO-pretrained NanoDet stages kept (2: to stride 8, 3: to stride 16)


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


# --------------------------------------------------------------------------- litehg
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

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [x]
        for stage in self.down:
            feats.append(stage(feats[-1]))
        y = feats[-1]
        for i in reversed(range(len(self.lateral))):
            up = F.interpolate(self.lateral[i](y), size=feats[i].shape[-2:], mode="nearest")
            y = self.fuse[i](up + feats[i])
        return [self.head(y)]


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


# --------------------------------------------------------------------------- nanodet (pretrained)
class NanoDetStem(nn.Module):
    """COCO-pretrained NanoDet stages (``trainer.pretrained``) + a top-down neck.

    Returns ``(p4, p8)``: stride-4 lateral features (width // 2 channels) for the branches' last,
    high-resolution step, and fused stride-8 features (``width`` channels, also the FAU input).
    With 2 pretrained stages the stride-16 context comes from new inverted-residual blocks.
    """

    def __init__(self, width: int, stages: int, expand: int):
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

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c4, c8, c16 = self.encoder(x)
        if self.context is not None:
            c16 = self.context(c8)
        p16 = F.interpolate(self.lat16(c16), size=c8.shape[-2:], mode="nearest")
        return self.lat4(c4), self.fuse8(self.lat8(c8) + p16)


class NanoDetBranch(nn.Module):
    """stride-8 inverted residuals (``depth``) -> upsample x2 + stride-4 lateral -> 3x3 -> 1x1 heatmaps."""

    def __init__(self, width: int, num_keypoints: int, depth: int, expand: int):
        super().__init__()
        self.body = nn.Sequential(*[InvertedResidual(width, width, 1, expand) for _ in range(depth)])
        self.reduce = _cbr(width, width // 2, 1, act=False)
        self.refine = nn.Sequential(_cbr(width // 2, width // 2, 3, groups=width // 2), _cbr(width // 2, width // 2, 1))
        self.head = nn.Conv2d(width // 2, num_keypoints, 1)

    def forward(self, feats: tuple[torch.Tensor, torch.Tensor]) -> list[torch.Tensor]:
        p4, p8 = feats
        up = F.interpolate(self.reduce(self.body(p8)), size=p4.shape[-2:], mode="bilinear", align_corners=False)
        return [self.head(self.refine(up + p4))]


# --------------------------------------------------------------------------- hourglass
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


class StackedBranch(nn.Module):
    """A sequence of hourglass stacks; returns every stack's heatmap (final last)."""

    def __init__(self, ch: int, num_keypoints: int, stacks: int):
        super().__init__()
        self.stacks = nn.ModuleList(HourglassStack(ch, num_keypoints) for _ in range(stacks))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for s in self.stacks:
            x, hm = s(x)
            outs.append(hm)
        return outs


class SharedStacks(nn.Module):
    """Shared hourglass stacks: returns features for the branches and their heatmaps."""

    def __init__(self, ch: int, num_keypoints: int, stacks: int):
        super().__init__()
        self.stacks = nn.ModuleList(HourglassStack(ch, num_keypoints) for _ in range(stacks))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        outs = []
        for s in self.stacks:
            x, hm = s(x)
            outs.append(hm)
        return x, outs


# --------------------------------------------------------------------------- resnet-18
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


# --------------------------------------------------------------------------- multi-branch
class MultiBranchNet(nn.Module):
    """stem -> shared stages -> B branches. ``forward`` returns a dict:

    ``shared``: heatmaps of shared stacks (hourglass only), ``branches``: per branch the list of
    its heatmaps (final last), ``features``: the shared features (input of the FAU).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        k = cfg.num_keypoints
        if len(cfg.branch_depths) != cfg.num_branches:
            raise ValueError(f"branch_depths {cfg.branch_depths} must have num_branches={cfg.num_branches} entries")
        self.shared: nn.Module | None = None
        if cfg.arch == "litehg":
            self.stem: nn.Module = LiteStem(cfg.width, cfg.shared_stacks, cfg.expand)
            branches = [LiteHourglass(cfg.width, k, d, cfg.expand) for d in cfg.branch_depths]
            self.feature_channels = cfg.width
        elif cfg.arch == "hourglass":
            self.stem = HourglassStem(cfg.width)
            self.shared = SharedStacks(cfg.width, k, cfg.shared_stacks) if cfg.shared_stacks else None
            branches = [StackedBranch(cfg.width, k, d) for d in cfg.branch_depths]
            self.feature_channels = cfg.width
        elif cfg.arch == "resnet":
            self.stem = ResNetStem()
            branches = [ResNetBranch(k, d, cfg.width) for d in cfg.branch_depths]
            self.feature_channels = 128
        elif cfg.arch == "nanodet":
            self.stem = NanoDetStem(cfg.width, cfg.pretrained_stages, cfg.expand)
            branches = [NanoDetBranch(cfg.width, k, d, cfg.expand) for d in cfg.branch_depths]
            self.feature_channels = cfg.width
        else:
            raise ValueError(f"unknown arch {cfg.arch!r} (litehg | hourglass | resnet | nanodet)")
        self.branches = nn.ModuleList(branches)
        for mod in self.modules():
            # heatmap heads start near zero (as in SimpleBaseline): the first steps fit the targets
            # instead of unlearning unit-scale noise
            if isinstance(mod, nn.Conv2d) and mod.out_channels == k and mod.kernel_size == (1, 1):
                nn.init.normal_(mod.weight, std=1e-3)
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)

    def trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        f = self.stem(x)
        if self.shared is not None:
            return self.shared(f)
        return f, []

    def forward(self, x: torch.Tensor) -> dict[str, object]:
        feats, shared_hms = self.trunk(x)
        fau_in = feats[-1] if isinstance(feats, tuple) else feats  # nanodet: (p4, p8) -> p8
        return {"features": fau_in, "shared": shared_hms, "branches": [b(feats) for b in self.branches]}


class SingleBranchNet(nn.Module):
    """The deployed student: trunk + one branch, returning only its final heatmaps (N, K, h, w)."""

    def __init__(self, multi: MultiBranchNet, branch: int):
        super().__init__()
        self.stem = multi.stem
        self.shared = multi.shared
        self.branch = multi.branches[branch]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.stem(x)
        if self.shared is not None:
            f, _ = self.shared(f)
        return self.branch(f)[-1]


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
