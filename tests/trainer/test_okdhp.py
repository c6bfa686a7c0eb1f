"""The OKDHP pieces: FAU weights, ensemble wiring, KL, gradients, branch extraction."""

import pytest
import torch

from trainer.fau import FeatureAggregationUnit, average_ensemble
from trainer.losses import LossConfig, heatmap_mse, kl_rampup, okdhp_loss, pixel_kl
from trainer.models import ModelConfig, NetOutput, SingleBranchNet
from trainer.network import OKDHPNet

K = 17


def _tiny(arch="litehg", depths=(1, 1, 1), mode="okdhp"):
    cfg = ModelConfig(
        arch=arch,
        width=16 if arch != "resnet" else 32,
        num_branches=len(depths),
        branch_depths=list(depths),
        shared_stacks=1,
    )
    torch.manual_seed(0)
    return OKDHPNet(cfg, mode)


def test_fau_weights_sum_to_one_over_branches_for_every_joint():
    fau = FeatureAggregationUnit(8, 3, K)
    torch.nn.init.normal_(fau.fc.weight)  # non-uniform weights
    w = fau.weights(torch.randn(4, 8, 12, 9))
    assert w.shape == (4, 3, K)
    torch.testing.assert_close(w.sum(dim=1), torch.ones(4, K))
    assert w.std() > 0.01


def test_ensemble_uses_every_branch_final_output():
    """Changing any branch's final heatmap changes the ensemble (the official code drops branch 0's)."""
    fau = FeatureAggregationUnit(8, 3, K)
    feats = torch.randn(2, 8, 8, 6)
    finals = [torch.randn(2, K, 8, 6) for _ in range(3)]
    base, _ = fau(feats, finals)
    for b in range(3):
        changed = [f.clone() for f in finals]
        changed[b] += 1.0
        ens, _ = fau(feats, changed)
        assert (ens - base).abs().min() > 0.1, f"branch {b} final output does not reach the ensemble"
    torch.testing.assert_close(average_ensemble(finals), sum(finals) / 3)


def test_model_ensemble_is_fau_weighted_sum_of_finals():
    net = _tiny(depths=(1, 2, 1)).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, 64, 48))
    finals = torch.stack(out.finals, 1)
    torch.testing.assert_close(out.ensemble, (out.fau_weights[..., None, None] * finals).sum(1))


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_kl_zero_for_equal_positive_otherwise(temperature):
    a = torch.randn(2, K, 8, 6)
    assert pixel_kl(a, a.clone(), temperature).abs() < 1e-6
    assert pixel_kl(a, a + torch.randn_like(a), temperature) > 1e-3


def test_mse_respects_joint_weights():
    pred, tgt = torch.zeros(1, 2, 4, 4), torch.ones(1, 2, 4, 4)
    assert heatmap_mse(pred, tgt, torch.tensor([[1.0, 0.0]])) == pytest.approx(0.5)
    assert heatmap_mse(pred, tgt, torch.tensor([[0.0, 0.0]])) == 0


def test_rampup_shape():
    assert kl_rampup(0.0, 0.3) == pytest.approx(torch.exp(torch.tensor(-5.0)).item())
    assert kl_rampup(0.15, 0.3) < kl_rampup(0.3, 0.3) == 1.0 == kl_rampup(0.9, 0.3)


@pytest.mark.parametrize("mode,detach", [("okdhp", False), ("okdhp", True), ("avg", False), ("single", False)])
def test_gradients_reach_every_branch(mode, detach):
    net = _tiny(depths=(1,) if mode == "single" else (1, 2, 3), mode=mode)
    out = net(torch.randn(2, 3, 64, 48))
    tgt = torch.rand(2, K, 16, 12)
    loss, terms = okdhp_loss(out, out.ensemble, tgt, torch.ones(2, K), LossConfig(detach_ensemble=detach), 0.5)
    loss.backward()
    for i, branch in enumerate(net.net.branches):
        g = sum(p.grad.abs().sum() for p in branch.parameters() if p.grad is not None)
        assert g > 0, f"no gradient in branch {i}"
    if mode == "okdhp":
        assert sum(p.grad.abs().sum() for p in net.fau.parameters() if p.grad is not None) > 0
        assert {"kl", "mse_ens", "mse_b0", "total"} <= set(terms)
    if mode == "single":
        assert "kl" not in terms and net.fau is None


def test_detach_stops_kl_gradient_into_the_ensemble():
    net = _tiny()
    out = net(torch.randn(2, 3, 64, 48))
    cfg = LossConfig(detach_ensemble=True, ensemble_mse=False)
    loss, _ = okdhp_loss(
        NetOutput(out.features, [], [[h[-1].detach()] for h in out.branches]),
        out.ensemble,
        torch.rand(2, K, 16, 12),
        torch.ones(2, K),
        cfg,
        1.0,
    )
    assert not loss.requires_grad  # only path to the FAU was through the (detached) teacher


@pytest.mark.parametrize("arch,depths", [("litehg", (1, 2)), ("hourglass", (1, 2)), ("resnet", (1, 1))])
def test_single_branch_matches_branch_inside_multibranch(arch, depths):
    net = _tiny(arch, depths).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = net(x)
        for b in range(len(depths)):
            torch.testing.assert_close(SingleBranchNet(net.net, b)(x), out.branches[b][-1])


def test_paper_scale_hourglass_forward_backward():
    """The 4-stack config (2 shared + 2 per branch, 256 features) runs forward and backward."""
    from trainer.config import load_config

    cfg = load_config("trainer/configs/hourglass_4stack_coco.yaml")
    net = OKDHPNet(cfg.model, cfg.train.mode)
    w, h = cfg.data.input_wh
    out = net(torch.randn(1, 3, h, w))
    assert len(out.shared) == 2 and all(len(b) == 2 for b in out.branches)
    loss, _ = okdhp_loss(out, out.ensemble, torch.rand(1, K, h // 4, w // 4), torch.ones(1, K), cfg.loss, 0.5)
    loss.backward()
    assert out.ensemble.shape == (1, K, h // 4, w // 4)
