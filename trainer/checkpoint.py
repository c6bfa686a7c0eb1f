"""Self-describing checkpoints: config + model spec + step + optimizer, so a model is rebuilt from the file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from okpose.core.spec import ModelSpec
    from trainer.config import ExperimentConfig
    from trainer.network import OKDHPNet


def save_checkpoint(path: str | Path, **state: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # atomic: a crash mid-save never leaves a truncated checkpoint


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    state: dict[str, Any] = torch.load(Path(path), map_location="cpu", weights_only=False)
    for key in ("config", "spec", "model", "epoch", "step"):
        if key not in state:
            raise ValueError(f"{path} is not a trainer checkpoint (missing {key!r})")
    return state


def rebuild(state: dict[str, Any]) -> tuple[OKDHPNet, ExperimentConfig, ModelSpec]:
    """The trained module, its config and spec, from a checkpoint alone (in eval mode)."""
    from okpose.core.spec import ModelSpec
    from trainer.config import ExperimentConfig, build
    from trainer.network import OKDHPNet

    raw, weights = upgrade(state["config"], state["model"])
    cfg: ExperimentConfig = build(ExperimentConfig, raw)
    model = OKDHPNet(cfg.model, cfg.train.mode)
    model.load_state_dict(weights)
    model.eval()
    return model, cfg, ModelSpec.from_metadata(state["spec"])


def upgrade(config: dict[str, Any], weights: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Checkpoints written before ``model.fau`` / ``loss.normalization`` existed keep their meaning:
    the concatenated FAU (its ``fc`` is now ``heads.0``) and the loss scale they were trained with."""
    config = {**config, "model": dict(config["model"]), "loss": dict(config.get("loss", {}))}
    if "fau" not in config["model"]:
        config["model"]["fau"] = "concat"
        weights = {k.replace("fau.fc.", "fau.heads.0."): v for k, v in weights.items()}
    config["loss"].setdefault("normalization", "legacy")
    return config, weights
