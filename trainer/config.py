"""Experiment config: one dataclass per component, YAML files plus dotted ``key=value`` overrides.

Unknown keys are errors; each component receives only its own sub-config.
"""

from __future__ import annotations

import dataclasses
import logging
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from okpose.core.skeleton import skeleton_for
from okpose.core.spec import ModelSpec
from trainer.augment import AugmentConfig
from trainer.losses import LossConfig
from trainer.models import ModelConfig

log = logging.getLogger("trainer.config")


@dataclass
class DataConfig:
    root: str = "../shared/data/realpose-lab"
    train_ann: str = "annotations/person_keypoints_train.json"
    val_ann: str = "annotations/person_keypoints_val.json"
    images: str = "images"
    format: str = "coco"  # coco | mpii
    input_wh: list[int] = field(default_factory=lambda: [192, 256])
    stride: int = 4
    sigma: float = 2.0
    padding: float = 1.25
    min_keypoints: int = 1
    max_train: int = 0  # 0 = all (CI smoke runs use a few)
    max_val: int = 0
    val_detections: str = ""  # optional COCO results json of person boxes; GT boxes otherwise
    extra_train: list[str] = field(default_factory=list)  # `trainer label` output folders added to train
    # validate on a `trainer label` / `trainer teach` folder (annotations.json + images/) instead of root/val_ann,
    # e.g. data/diverse/unseen-stanford40: scenes never trained on
    val_folder: str = ""


@dataclass
class OptimConfig:
    lr: float = 2.5e-4  # paper: Adam 2.5e-4 with step decay
    weight_decay: float = 0.0
    epochs: int = 140
    milestones: list[float] = field(default_factory=lambda: [0.64, 0.86])  # fractions of training (90/140, 120/140)
    gamma: float = 0.1
    warmup_iters: int = 100
    batch_size: int = 32
    # L2-SP (Li et al., ICML 2018): ``l2sp`` x sum of squared differences between every parameter and its value
    # when training started (the pretrained MoveNet trunk and heads for ``arch: movenet``), so fine-tuning on
    # new data moves the weights only as far as the data asks; 0 = off
    l2sp: float = 0.0


@dataclass
class TrainConfig:
    name: str = "run"
    mode: str = "okdhp"  # okdhp (FAU) | avg (plain averaging) | single (student alone) | ffl | pcl | mcl
    seed: int = 0
    out_dir: str = "runs"
    workers: int = 0
    threads: int = 0  # torch intra-op threads (0 = torch default)
    eval_every: int = 0  # epochs (0 = only at the end)
    flip_test: bool = True
    deploy_branch: int = 0
    device: str = "cpu"
    resume: str = ""
    max_minutes: float = 0.0  # wall-clock cap on training (0 = none); the schedule still follows `epochs`


@dataclass
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ValueError(f"{key}: expected a mapping")
        return build(tp, value, key + ".")
    if origin is list:
        (inner,) = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise ValueError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, inner, key) for v in value]
    if tp is bool:
        if isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"{key}: expected a bool, got {value!r}")
            return value.lower() in ("true", "1")
        return bool(value)
    if tp is str and value is None:  # `key=` (or `key:` in YAML) means empty, not the text "None"
        return ""
    if tp in (int, float, str):
        try:
            return tp(value)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{key}: cannot read {value!r} as {tp.__name__}") from e
    return value


def build(cls: Any, raw: dict[str, Any], prefix: str = "") -> Any:
    """A config dataclass (``ExperimentConfig`` or a section) from a plain dict; unknown keys are errors."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(raw) - names
    if unknown:
        raise ValueError(f"unknown config keys: {', '.join(prefix + k for k in sorted(unknown))}")
    return cls(**{k: _coerce(v, hints[k], prefix + k) for k, v in raw.items()})


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``section.key=value`` overrides (values parsed as YAML) applied to a config dict, in place."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not key=value")
        dotted, value = item.split("=", 1)
        parts = dotted.strip().split(".")
        node = raw
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(value)
    return raw


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Read a YAML experiment (or defaults) and apply ``section.key=value`` overrides (YAML values)."""
    raw: dict[str, Any] = {}
    if path:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    return finish(build(ExperimentConfig, apply_overrides(raw, overrides)))


def finish(cfg: ExperimentConfig) -> ExperimentConfig:
    """Checks across sections. ``train.mode=single`` trains the deployed branch alone: the model keeps
    only branch 0 (said in the log, and the run's stored config says num_branches 1)."""
    from trainer.network import MODES

    if cfg.train.mode not in MODES:
        raise ValueError(f"train.mode must be one of {' | '.join(MODES)}, got {cfg.train.mode!r}")
    if cfg.train.mode == "single" and cfg.model.num_branches != 1:
        log.warning(
            "train.mode=single: training branch 0 alone (model.num_branches %d -> 1, branch_depths %s -> %s)",
            cfg.model.num_branches,
            cfg.model.branch_depths,
            cfg.model.branch_depths[:1],
        )
        cfg.model.num_branches = 1
        cfg.model.branch_depths = cfg.model.branch_depths[:1]
    return cfg


def spec_from_config(cfg: ExperimentConfig, version: str = "dev") -> ModelSpec:
    """The model spec (written into the ONNX metadata at export) a config's model is trained for."""
    sk = skeleton_for(cfg.model.num_keypoints)
    kwargs: dict[str, object] = {"keypoint_names": sk.keypoints, "limbs": sk.limbs, "flip_pairs": sk.flip_pairs}
    if cfg.model.arch == "nanodet":  # the pretrained stages expect the detector's own normalisation
        from trainer.pretrained import NANODET_MEAN, NANODET_STD

        kwargs.update(color="bgr", mean=NANODET_MEAN, std=NANODET_STD)
    elif cfg.model.arch == "movenet":  # MoveNet's own: RGB to [-1, 1]
        from trainer.pretrained import MOVENET_MEAN, MOVENET_STD

        kwargs.update(color="rgb", mean=MOVENET_MEAN, std=MOVENET_STD)
    return ModelSpec(
        # movenet: MoveNet's own widths (no `model.width`)
        name="okdhp-movenet" if cfg.model.arch == "movenet" else f"okdhp-{cfg.model.arch}-w{cfg.model.width}",
        version=version,
        input_wh=(cfg.data.input_wh[0], cfg.data.input_wh[1]),
        heatmap_stride=cfg.data.stride,
        padding=cfg.data.padding,
        **kwargs,  # type: ignore[arg-type]
    )


def to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
