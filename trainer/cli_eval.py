"""``python -m trainer evaluate``: metrics for a checkpoint (every branch + ensemble) or one ONNX student."""

from __future__ import annotations

import numpy as np

from okpose.core.spec import ModelSpec
from trainer.config import load_config
from trainer.evaluate import evaluate


def onnx_predictor(path: str, threads: int = 0):
    from okpose.core.runtime import open_session

    sess = open_session(path, "cpu", threads)
    spec = ModelSpec.from_metadata(sess.get_modelmeta().custom_metadata_map)
    name = sess.get_inputs()[0].name

    def predict(x: np.ndarray) -> dict[str, np.ndarray]:
        return {"onnx": sess.run(None, {name: x})[0]}

    return predict, spec


def run_evaluate(checkpoint: str | None, onnx_path: str | None, config: str | None, overrides: list[str], flip: bool):
    """Metrics for a multi-branch checkpoint (every branch + ensemble) or one ONNX student on the val split.

    With a checkpoint, ``overrides`` apply to the config stored in it (e.g. ``data.max_val=20``).
    """
    from trainer.config import ExperimentConfig, apply_overrides, build, finish, to_dict
    from trainer.data import ann_path, load_records

    if bool(checkpoint) == bool(onnx_path):
        raise SystemExit("pass exactly one of --checkpoint or --onnx")
    if checkpoint:
        from trainer.checkpoint import load_checkpoint, rebuild
        from trainer.evaluate import make_predictor

        model, cfg, spec = rebuild(load_checkpoint(checkpoint))
        cfg = finish(build(ExperimentConfig, apply_overrides(to_dict(cfg), overrides)))
        predict = make_predictor(model, "cpu")
    else:
        cfg = load_config(config, overrides)
        predict, spec = onnx_predictor(onnx_path)  # type: ignore[arg-type]
    records = load_records(cfg, "val")
    return evaluate(predict, records, spec, ann_path(cfg, "val"), cfg.data.format, flip)
