"""The OKDHP pieces: FAU weights, ensemble wiring, KL, gradients, branch extraction."""

import pytest
import torch

from trainer.fau import FeatureAggregationUnit, average_ensemble
from trainer.losses import LossConfig, distill_loss, heatmap_mse, kl_rampup, okdhp_loss, pixel_kl
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


@pytest.mark.parametrize("layout", ["paper", "concat"])
def test_fau_weights_sum_to_one_over_branches_for_every_joint(layout):
    fau = FeatureAggregationUnit(8, 3, K, layout)
    for h in fau.heads:
        torch.nn.init.normal_(h.weight)  # non-uniform weights
    w = fau.weights(torch.randn(4, 8, 12, 9))
    assert w.shape == (4, 3, K)
    torch.testing.assert_close(w.sum(dim=1), torch.ones(4, K))
    assert w.std() > 0.01


def test_paper_fau_sums_full_width_paths_then_fc_to_64_then_one_fc_per_branch():
    fau = FeatureAggregationUnit(48, 3, K, "paper")
    assert [p[0].out_channels for p in fau.paths] == [48, 48, 48]  # full width, not 32
    assert [p[0].kernel_size for p in fau.paths] == [(3, 3), (5, 5), (7, 7)]
    assert fau.squeeze[0].in_features == 48 and fau.squeeze[0].out_features == 64  # summed, not concatenated
    assert len(fau.heads) == 3 and all(h.in_features == 64 and h.out_features == K for h in fau.heads)
    # branch b's weights come from head b only
    x = torch.randn(2, 48, 8, 6)
    for h in fau.heads:
        torch.nn.init.normal_(h.weight)
    before = fau.weights(x)
    with torch.no_grad():
        fau.heads[1].bias += 5.0
    after = fau.weights(x)
    assert (after[:, 1] > before[:, 1]).all() and (after[:, 0] < before[:, 0]).all()


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


def test_official_scale_is_half_the_mse_and_the_kl_summed_over_pixels_per_n_h_w():
    """``loss.normalization=official`` (the OKDHP code's scale) vs ``legacy``: MSE x 0.5 and KL x K / (H W)."""
    pred, tgt, w = torch.rand(2, K, 8, 6), torch.rand(2, K, 8, 6), torch.ones(2, K)
    official, legacy = LossConfig(normalization="official"), LossConfig(normalization="legacy")
    torch.testing.assert_close(
        heatmap_mse(pred, tgt, w, official.mse_scale), 0.5 * heatmap_mse(pred, tgt, w, legacy.mse_scale)
    )
    a, b = torch.randn(2, K, 8, 6), torch.randn(2, K, 8, 6)
    torch.testing.assert_close(pixel_kl(a, b, 1.0, "official"), pixel_kl(a, b, 1.0, "legacy") * K / 48)
    with pytest.raises(ValueError, match="normalization"):
        LossConfig(normalization="mean")


def _forward(mode, depths=(1, 1, 1)):
    net = _tiny(depths=depths, mode=mode)
    out = net(torch.randn(4, 3, 64, 48))
    return net, out


def test_ffl_fused_head_sees_every_branch_and_teaches_them():
    net, out = _forward("ffl")
    base = net.fusion(out.embeddings)
    for b in range(3):
        changed = [e.clone() for e in out.embeddings]
        changed[b] = changed[b] + torch.randn_like(changed[b])  # (a constant shift would vanish in the BN)
        assert (net.fusion(changed) - base).abs().max() > 1e-4, f"fused head ignores branch {b}"
    loss, terms = distill_loss("ffl", out, torch.rand_like(out.finals[0]), torch.ones(4, K), LossConfig(), 1.0)
    assert {"mse_ens", "kl", "kl_fused"} <= set(terms)
    loss.backward()
    assert all(p.grad is not None for p in net.fusion.parameters())


def test_pcl_mean_teacher_gets_no_gradient_and_follows_the_peers():
    net, out = _forward("pcl")
    assert "mean" in out.teachers and out.teachers["mean"].shape == out.finals[0].shape
    loss, terms = distill_loss("pcl", out, torch.rand_like(out.finals[0]), torch.ones(4, K), LossConfig(), 1.0)
    assert "kl_mean_teacher" in terms
    loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in net.mean_teacher.parameters())
    teacher = [p.detach().clone() for p in net.mean_teacher.parameters()]
    with torch.no_grad():
        for p in net.net.parameters():
            p.add_(1.0)  # the peers move
    net.update_mean_teacher(0.9)
    for before, t, s in zip(teacher, net.mean_teacher.parameters(), net.net.parameters(), strict=True):
        torch.testing.assert_close(t, 0.9 * before + 0.1 * s)  # an exponential moving average of the peers
    assert not net.train().mean_teacher.training  # stays in eval mode (fixed BN statistics)


def test_mcl_contrast_pulls_one_sample_s_branch_views_together():
    from trainer.losses import info_nce

    z = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    aligned = info_nce([z, z.clone(), z.clone()], 0.1)
    shuffled = info_nce([z, z[torch.randperm(8)], z[torch.randperm(8)]], 0.1)
    assert aligned < shuffled
    net, out = _forward("mcl")
    loss, terms = distill_loss("mcl", out, torch.rand_like(out.finals[0]), torch.ones(4, K), LossConfig(), 1.0)
    assert terms["contrast"] > 0
    loss.backward()
    assert all(p.grad is not None for proj in net.projections for p in proj.parameters())


def test_modes_needing_branch_features_reject_archs_without_them():
    with pytest.raises(ValueError, match="branch features"):
        _tiny(arch="resnet", depths=(1, 1), mode="ffl")


def test_checkpoints_from_before_the_paper_fau_still_load():
    """Old checkpoints (concatenated FAU stored as ``fau.fc``, no ``model.fau`` / ``loss.normalization``)
    are read with their original meaning."""
    from trainer.checkpoint import rebuild
    from trainer.config import ExperimentConfig, to_dict

    cfg = ExperimentConfig()
    cfg.model.width, cfg.model.fau = 16, "concat"
    old = OKDHPNet(cfg.model, "okdhp")
    weights = {k.replace("fau.heads.0.", "fau.fc."): v for k, v in old.state_dict().items()}
    raw = to_dict(cfg)
    del raw["model"]["fau"], raw["loss"]["normalization"]
    from trainer.config import spec_from_config

    state = {"config": raw, "model": weights, "spec": spec_from_config(cfg).to_metadata()}
    model, new_cfg, _ = rebuild(state)
    assert new_cfg.model.fau == "concat" and new_cfg.loss.normalization == "legacy"
    torch.testing.assert_close(model.fau.heads[0].weight, old.fau.heads[0].weight)
