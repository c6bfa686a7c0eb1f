"""Multi-branch pose networks for OKDHP: a shared stem + shared early stages, then B branches.

Every branch returns a list of heatmaps (intermediate stacks first, final last). Three families:
- ``hourglass``: the paper's stacked hourglass (shared stacks + per-branch stacks);
- ``litehg``: a CPU real-time hourglass of MobileNetV2 inverted-residual blocks (the shipped one);
- ``resnet``: ResNet-18 SimpleBaseline (layer1-2 shared, layer3-4 + deconv head per branch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from okpose.core.skeleton import COCO17
from trainer.models.blocks import count_macs, count_params
from trainer.models.hourglass import HourglassStacks, HourglassStem, StackedBranch
from trainer.models.litehg import LiteHourglass, LiteStem
from trainer.models.movenet import MoveNetStem, movenet_branches
from trainer.models.nanodet import NanoDetBranch, NanoDetStem
from trainer.models.resnet import ResNetBranch, ResNetStem
from trainer.pretrained import movenet_parts

__all__ = ["ModelConfig", "MultiBranchNet", "NetOutput", "SingleBranchNet", "count_macs", "count_params"]


@dataclass
class ModelConfig:
    arch: str = "litehg"  # litehg | hourglass | resnet | nanodet | movenet
    num_keypoints: int = COCO17.num_keypoints
    num_branches: int = 3
    width: int = 32  # litehg: channels at stride 4; hourglass: features; resnet: deconv channels
    shared_stacks: int = 1  # hourglass: stacks in the shared trunk (litehg: shared IR blocks)
    branch_depths: list[int] = field(default_factory=lambda: [1, 1, 1])  # per branch, [0] is deployed
    expand: int = 4  # litehg inverted-residual expansion
    pretrained_stages: int = 3  # nanodet: COCO-pretrained NanoDet stages kept (2: to stride 8, 3: to stride 16)
    shared_blocks: int = 0  # nanodet: stride-8 blocks shared by every branch (sharing depth; litehg: shared_stacks)
    fau: str = (
        "paper"  # paper: summed full-width 3/5/7 paths, FC C->64, per-branch FC to K | concat (the first runs' FAU)
    )


@dataclass
class NetOutput:
    """What a multi-branch forward pass gives the loss and the ensemble.

    features: the shared features (FAU input); shared: heatmaps of shared stacks (hourglass only);
    branches: per branch its heatmaps (final last); embeddings: per branch the features its 1x1 head reads
    (litehg, nanodet; empty for the others); ensemble / fau_weights / teachers: set by ``OKDHPNet``
    (``teachers``: extra targets of the FFL / PCL / MCL modes, e.g. the EMA mean teacher's heatmaps).
    """

    features: torch.Tensor
    shared: list[torch.Tensor]
    branches: list[list[torch.Tensor]]
    embeddings: list[torch.Tensor] = field(default_factory=list)
    ensemble: torch.Tensor | None = None
    fau_weights: torch.Tensor | None = None
    teachers: dict[str, torch.Tensor] = field(default_factory=dict)
    projections: list[torch.Tensor] = field(default_factory=list)  # mcl: per-branch unit embeddings (N, D)

    @property
    def finals(self) -> list[torch.Tensor]:
        return [hms[-1] for hms in self.branches]


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
            self.shared = HourglassStacks(cfg.width, k, cfg.shared_stacks) if cfg.shared_stacks else None
            branches = [StackedBranch(cfg.width, k, d) for d in cfg.branch_depths]
            self.feature_channels = cfg.width
        elif cfg.arch == "resnet":
            self.stem = ResNetStem()
            branches = [ResNetBranch(k, d, cfg.width) for d in cfg.branch_depths]
            self.feature_channels = 128
        elif cfg.arch == "nanodet":
            self.stem = NanoDetStem(cfg.width, cfg.pretrained_stages, cfg.expand, cfg.shared_blocks)
            branches = [NanoDetBranch(cfg.width, k, d, cfg.expand) for d in cfg.branch_depths]
            self.feature_channels = cfg.width
        elif cfg.arch == "movenet":
            encoder, heads = movenet_parts()
            self.stem = MoveNetStem(encoder, cfg.shared_blocks)
            branches = movenet_branches(heads, k, cfg.branch_depths)
            self.feature_channels = 24
        else:
            raise ValueError(f"unknown arch {cfg.arch!r} (litehg | hourglass | resnet | nanodet | movenet)")
        self.branches = nn.ModuleList(branches)
        for mod in self.modules():
            # heatmap heads start near zero (as in SimpleBaseline): the first steps fit the targets
            # instead of unlearning unit-scale noise
            if (
                isinstance(mod, nn.Conv2d)
                and mod.out_channels == k
                and mod.kernel_size == (1, 1)
                and not getattr(mod, "keep_init", False)
            ):
                nn.init.normal_(mod.weight, std=1e-3)
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)

    def trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        f = self.stem(x)
        if self.shared is not None:
            return self.shared(f)
        return f, []

    def forward(self, x: torch.Tensor) -> NetOutput:
        feats, shared_hms = self.trunk(x)
        fau_in = feats[-1] if isinstance(feats, tuple) else feats  # nanodet: (p4, p8) -> p8
        if not self.embeds:
            return NetOutput(fau_in, shared_hms, [b(feats) for b in self.branches])
        embeddings = [b.embed(feats) for b in self.branches]
        heatmaps = [[b.head(e)] for b, e in zip(self.branches, embeddings, strict=True)]
        return NetOutput(fau_in, shared_hms, heatmaps, embeddings)

    @property
    def embeds(self) -> bool:
        """Whether the branches expose the features their head reads (needed by FFL, PCL and MCL)."""
        return all(hasattr(b, "embed_channels") for b in self.branches)


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
