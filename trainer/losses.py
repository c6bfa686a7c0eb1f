"""Losses of every training mode: visibility-weighted heatmap MSE for every output, plus each
online-distillation method's own terms (OKDHP's pixel-wise KL from the FAU ensemble; FFL, PCL, MCL).

``distill_loss`` returns the total and named terms for logging (including branch diversity and FAU
weight spread, so runs can be compared on more than their loss).

Scale (``loss.normalization``): ``official`` follows the OKDHP code — MSE as SimpleBaseline's
``JointsMSELoss`` (0.5 x mean squared error) and the KL summed over heatmap pixels and joints, divided
by N x H x W — so ``kl_weight`` means what it means there. ``legacy`` (the scale of this project's first
OKDHP runs, kept so that their configs reproduce) averaged the KL over N x K and dropped the 0.5: a
KL/MSE ratio (H x W) / K x 2 times larger (~90x at 40x32 heatmaps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from trainer.models import NetOutput


@dataclass
class LossConfig:
    kl_weight: float = 2.0
    temperature: float = 1.0
    rampup_fraction: float = 0.3  # fraction of training over which the KL weight ramps up
    detach_ensemble: bool = False  # stop the KL's gradient into the ensemble (its MSE still trains it)
    ensemble_mse: bool = True
    normalization: str = "official"  # official (OKDHP code's scale) | legacy (the first runs' scale)
    # mcl: weight of the branch-contrastive (InfoNCE) term. InfoNCE starts at ~ln(batch) (3.5 at 32) while a
    # branch's heatmap MSE starts at ~4e-3 (official scale): 1e-3 puts them on the same footing (0.1 let the
    # contrastive gradient take over the shared trunk: val mean OKS 0.22 after 6 epochs, two seeds)
    contrast_weight: float = 1e-3
    contrast_temperature: float = 0.1  # mcl
    ema_decay: float = 0.999  # pcl: temporal mean teacher (EMA of the peers)

    def __post_init__(self) -> None:
        if self.normalization not in ("official", "legacy"):
            raise ValueError(f"loss.normalization must be official | legacy, got {self.normalization!r}")

    @property
    def mse_scale(self) -> float:
        return 0.5 if self.normalization == "official" else 1.0


def heatmap_mse(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """``scale`` x mean over (N, K, h, w) of squared error, each joint weighted by ``weights`` (N, K)."""
    return scale * ((pred - target) ** 2 * weights[:, :, None, None]).mean()


def pixel_kl(
    teacher: torch.Tensor, student: torch.Tensor, temperature: float = 1.0, normalization: str = "official"
) -> torch.Tensor:
    """KL(softmax(teacher/T) || softmax(student/T)) over heatmap positions, x T².

    ``legacy``: averaged over (N, K); ``official``: summed over (N, K), divided by N x H x W."""
    n, k, h, w = teacher.shape
    t = F.log_softmax(teacher.reshape(n, k, -1) / temperature, dim=2)
    s = F.log_softmax(student.reshape(n, k, -1) / temperature, dim=2)
    kl = (t.exp() * (t - s)).sum(dim=2)
    scale = 1.0 if normalization == "legacy" else k / (h * w)
    return kl.mean() * scale * temperature**2


def info_nce(views: list[torch.Tensor], temperature: float) -> torch.Tensor:
    """MCL's contrastive term among branches: for every ordered pair of branches (a, b), each sample's
    embedding in a must pick the same sample's embedding in b among the batch (unit vectors, (N, D))."""
    labels = torch.arange(views[0].shape[0], device=views[0].device)
    pairs = [(a, b) for a in range(len(views)) for b in range(len(views)) if a != b]
    losses = [F.cross_entropy(views[a] @ views[b].T / temperature, labels) for a, b in pairs]
    return sum(losses, torch.zeros(())) / max(len(losses), 1)


def branch_diversity(finals: list[torch.Tensor]) -> float:
    """Mean pairwise squared difference between the branches' final heatmaps (0 = identical branches)."""
    pairs = [(a, b) for a in range(len(finals)) for b in range(a + 1, len(finals))]
    if not pairs:
        return 0.0
    return float(sum(((finals[a] - finals[b]) ** 2).mean().detach() for a, b in pairs) / len(pairs))


def kl_rampup(progress: float, fraction: float) -> float:
    """exp(-5 (1 - t)^2) with t = progress / fraction clipped to [0, 1] (Laine & Aila's ramp)."""
    if fraction <= 0:
        return 1.0
    t = min(max(progress / fraction, 0.0), 1.0)
    return math.exp(-5.0 * (1.0 - t) ** 2)


def okdhp_loss(
    out: NetOutput,
    ensemble: torch.Tensor | None,
    target: torch.Tensor,
    weights: torch.Tensor,
    cfg: LossConfig,
    progress: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """OKDHP (and averaging, and the student alone when ``ensemble`` is None): MSE for every output,
    KL from the ensemble into every branch's final heatmaps. Total loss and its named terms."""
    terms = _mse_terms(out, target, weights, cfg)
    if ensemble is not None:
        if cfg.ensemble_mse:
            terms["mse_ens"] = heatmap_mse(ensemble, target, weights, cfg.mse_scale)
        teacher = ensemble.detach() if cfg.detach_ensemble else ensemble
        terms["kl"] = _kd(teacher, out.finals, cfg)
    return _total(terms, cfg, progress, out)


def distill_loss(
    mode: str, out: NetOutput, target: torch.Tensor, weights: torch.Tensor, cfg: LossConfig, progress: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of ``train.mode`` (single | okdhp | avg | ffl | pcl | mcl) for one batch.

    - ffl (feature fusion learning): the fused head learns from the labels and from the branches'
      mean; each branch learns from the labels and from the fused head (both teachers detached).
    - pcl (peer collaborative learning): the fused head is the peer ensemble teacher; the temporal mean
      teacher (EMA of the network, no gradient) gives the peers' mean; both distil into every branch.
    - mcl (multi-view contrastive): the branches' mean distils into every branch (detached), plus an
      InfoNCE term that pulls one sample's branch embeddings together and pushes other samples apart.
    """
    if mode in ("single", "okdhp", "avg"):
        return okdhp_loss(out, out.ensemble, target, weights, cfg, progress)
    terms = _mse_terms(out, target, weights, cfg)
    mean = torch.stack(out.finals).mean(dim=0).detach()
    if mode in ("ffl", "pcl"):
        if out.ensemble is None:
            raise ValueError(f"train.mode={mode} needs the fused head's output")
        terms["mse_ens"] = heatmap_mse(out.ensemble, target, weights, cfg.mse_scale)
        terms["kl"] = _kd(out.ensemble.detach(), out.finals, cfg)
        if mode == "ffl":
            terms["kl_fused"] = _kd(mean, [out.ensemble], cfg)
        else:
            terms["kl_mean_teacher"] = _kd(out.teachers["mean"], out.finals, cfg)
    elif mode == "mcl":
        terms["kl"] = _kd(mean, out.finals, cfg)
        terms["contrast"] = info_nce(out.projections, cfg.contrast_temperature)
    else:
        raise ValueError(f"unknown train.mode {mode!r}")
    return _total(terms, cfg, progress, out)


def _mse_terms(out: NetOutput, target: torch.Tensor, weights: torch.Tensor, cfg: LossConfig) -> dict[str, torch.Tensor]:
    terms: dict[str, torch.Tensor] = {}
    for i, hm in enumerate(out.shared):
        terms[f"mse_shared{i}"] = heatmap_mse(hm, target, weights, cfg.mse_scale)
    for b, hms in enumerate(out.branches):
        terms[f"mse_b{b}"] = sum((heatmap_mse(hm, target, weights, cfg.mse_scale) for hm in hms), torch.zeros(()))
    return terms


def _kd(teacher: torch.Tensor, students: list[torch.Tensor], cfg: LossConfig) -> torch.Tensor:
    return sum((pixel_kl(teacher, s, cfg.temperature, cfg.normalization) for s in students), torch.zeros(()))


def _total(
    terms: dict[str, torch.Tensor], cfg: LossConfig, progress: float, out: NetOutput
) -> tuple[torch.Tensor, dict[str, float]]:
    """Sum: MSE terms as they are, distillation terms (``kl*``) x kl_weight x ramp, contrast x its weight."""
    ramp = kl_rampup(progress, cfg.rampup_fraction)
    total = torch.zeros(())
    for name, value in terms.items():
        if name.startswith("kl"):
            total = total + cfg.kl_weight * ramp * value
        elif name == "contrast":
            total = total + cfg.contrast_weight * value
        else:
            total = total + value
    logged = {k: float(v.detach()) for k, v in terms.items()}
    logged["total"] = float(total.detach())
    if len(out.branches) > 1:
        logged["branch_div"] = branch_diversity(out.finals)
    if out.fau_weights is not None:
        logged["fau_w_std"] = float(out.fau_weights.detach().std(dim=1).mean())
    return total, logged
