import pytest

from trainer.config import OptimConfig, load_config
from trainer.loop import lr_at


def test_overrides_and_unknown_keys(tmp_path):
    cfg = load_config(None, ["model.width=48", "optim.milestones=[0.5]", "loss.detach_ensemble=true"])
    assert cfg.model.width == 48 and cfg.optim.milestones == [0.5] and cfg.loss.detach_ensemble is True
    with pytest.raises(ValueError, match="model.widht"):
        load_config(None, ["model.widht=48"])
    bad = tmp_path / "x.yaml"
    bad.write_text("optim:\n  lrr: 1\n")
    with pytest.raises(ValueError, match="optim.lrr"):
        load_config(bad)
    with pytest.raises(ValueError):
        load_config(None, ["model.width=abc"])
    # an empty value empties a text setting (it used to become the text "None", a folder that does not exist)
    assert load_config("trainer/configs/movenet_student.yaml", ["augment.backgrounds="]).augment.backgrounds == ""


def test_single_mode_forces_one_branch():
    cfg = load_config(None, ["train.mode=single", "model.branch_depths=[2,3,4]"])
    assert cfg.model.num_branches == 1 and cfg.model.branch_depths == [2]


@pytest.mark.parametrize(
    "path",
    [
        "trainer/configs/hourglass_4stack_coco.yaml",
        "trainer/configs/hourglass_mpii.yaml",
        "trainer/configs/litehg_cmp.yaml",
        "trainer/configs/default_student.yaml",
        "trainer/configs/resnet18_coco.yaml",
    ],
)
def test_shipped_configs_load(path):
    cfg = load_config(path)
    assert len(cfg.model.branch_depths) == cfg.model.num_branches


def test_lr_schedule_warmup_and_steps():
    c = OptimConfig(lr=1.0, warmup_iters=10, milestones=[0.5, 0.75], gamma=0.1)
    assert lr_at(0, 100, c) == pytest.approx(0.1)
    assert (
        lr_at(20, 100, c) == 1.0
        and lr_at(60, 100, c) == pytest.approx(0.1)
        and lr_at(80, 100, c) == pytest.approx(0.01)
    )
