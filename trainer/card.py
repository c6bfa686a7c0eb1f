"""``python -m trainer card``: evaluate a shipped student ONNX on the held-out split and write its
model card (markdown + machine-readable JSON used by the CI regression test)."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np

from okpose.core.spec import ModelSpec
from trainer.cli_eval import onnx_predictor
from trainer.config import load_config
from trainer.data import ann_path, load_records
from trainer.evaluate import coco_ap, per_keypoint_error, predict_records

CI_SUBSET = 40  # val persons the CI regression test evaluates (first N, in file order)


def latency_ms(path: str, threads: int, batch: int, runs: int = 60) -> float:
    from okpose.core.runtime import open_session

    sess = open_session(path, "cpu", threads)
    shape = sess.get_inputs()[0].shape
    x = np.random.default_rng(0).standard_normal((batch, 3, shape[2], shape[3])).astype(np.float32)
    name = sess.get_inputs()[0].name
    for _ in range(10):
        sess.run(None, {name: x})
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, {name: x})
        ts.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(ts))


def evaluate_onnx(onnx_path: str, config: str | None, overrides: list[str], flip: bool = True) -> dict:
    predict, spec = onnx_predictor(onnx_path)
    out: dict = {"spec": {"name": spec.name, "version": spec.version, "input_wh": list(spec.input_wh)}}
    for split in ("val", "train"):
        c = load_config(config, [*overrides, "data.max_train=0", "data.max_val=0"])
        recs = load_records(c, split)
        ann = ann_path(c, split)
        kps = predict_records(predict, recs, spec, flip)["onnx"]
        out[split] = {**coco_ap(ann, recs, kps), "persons": len(recs)}
        if split == "val":
            out["val_per_keypoint_err_pct"] = per_keypoint_error(recs, kps)
            sub = recs[:CI_SUBSET]
            out["ci_subset"] = {**coco_ap(ann, sub, kps[:CI_SUBSET]), "persons": len(sub)}
            out["served_ci_subset"] = served_ci_subset(onnx_path, ann, c)
    return out


def served_ci_subset(onnx_path: str, ann: str, cfg: object) -> dict:
    """The served configuration (detector, defaults, no flip) on the images of the CI subset."""
    from trainer.peers import evaluate_served

    recs = load_records(cfg, "val")[:CI_SUBSET]  # type: ignore[arg-type]
    root = Path(recs[0].image_path).parents[1] if recs else Path(".")
    res = evaluate_served(Path(onnx_path), Path(ann), root, {r.image_id for r in recs})
    import onnxruntime as ort

    # the int8 detector's boxes move with the onnxruntime version (0.917 on 1.22-1.24, 0.934 on 1.30-1.32 for
    # the same files): the figure names the version it was measured with (pinned in constraints.txt)
    return {
        "AP": res["AP"],
        "AP_ci95": res["AP_ci95"],
        "images": res["images"],
        "boxes": res["boxes"],
        "onnxruntime": ort.__version__,
    }


def write_card(onnx_path: str, out_md: str, config: str | None, overrides: list[str]) -> dict:
    res = evaluate_onnx(onnx_path, config, overrides)
    from okpose.core.runtime import metadata

    spec = ModelSpec.from_metadata(metadata(onnx_path))
    res["params"] = int(spec.extra.get("params", 0))
    res["gmacs"] = float(spec.extra.get("macs", 0)) / 1e9
    res["latency_ms"] = {f"threads{t}_batch{b}": latency_ms(onnx_path, t, b) for t in (1, 2) for b in (1, 3)}
    res["machine"] = platform.processor() or platform.machine()
    Path(out_md).with_suffix(".json").write_text(json.dumps(res, indent=2))
    return res
