"""OKDHP losses: visibility-weighted heatmap MSE for every output + pixel-wise KL distillation.

Every function returns tensors; ``okdhp_loss`` returns the total and named terms for logging.
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
    detach_ensemble: bool = False  # the paper does not detach; a switch to compare
    ensemble_mse: bool = True


def heatmap_mse(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean over (N, K, h, w) of squared error, each joint weighted by ``weights`` (N, K)."""
    return ((pred - target) ** 2 * weights[:, :, None, None]).mean()


def pixel_kl(teacher: torch.Tensor, student: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """KL(softmax(teacher/T) || softmax(student/T)) over heatmap positions, averaged over (N, K), x T²."""
    n, k = teacher.shape[:2]
    t = F.log_softmax(teacher.reshape(n, k, -1) / temperature, dim=2)
    s = F.log_softmax(student.reshape(n, k, -1) / temperature, dim=2)
    kl = (t.exp() * (t - s)).sum(dim=2)
    return kl.mean() * temperature**2


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
    """Total loss and its named terms.

    out: the model's dict (``shared`` heatmaps, ``branches`` lists); ensemble None = no distillation.
    """
    terms: dict[str, torch.Tensor] = {}
    shared, branches = out.shared, out.branches
    for i, hm in enumerate(shared):
        terms[f"mse_shared{i}"] = heatmap_mse(hm, target, weights)
    for b, hms in enumerate(branches):
        terms[f"mse_b{b}"] = sum((heatmap_mse(hm, target, weights) for hm in hms), torch.zeros(()))
    total = sum(terms.values(), torch.zeros(()))
    if ensemble is not None:
        if cfg.ensemble_mse:
            terms["mse_ens"] = heatmap_mse(ensemble, target, weights)
            total = total + terms["mse_ens"]
        teacher = ensemble.detach() if cfg.detach_ensemble else ensemble
        ramp = kl_rampup(progress, cfg.rampup_fraction)
        kl = sum((pixel_kl(teacher, hms[-1], cfg.temperature) for hms in branches), torch.zeros(()))
        terms["kl"] = kl
        # heatmap values are ~0..1, so the spatial softmax is close to uniform and this KL has the
        # same small order as the MSE terms: the paper's weight (2.0) is applied to it unscaled.
        total = total + cfg.kl_weight * ramp * kl
    logged = {k: float(v.detach()) for k, v in terms.items()}
    logged["total"] = float(total.detach())
    return total, logged
