"""``python -m trainer compare``: the results table — student alone vs OKDHP (balanced, unbalanced,
detached ensemble) vs averaging instead of FAU — same student, epochs and seeds."""

from __future__ import annotations

import json
import logging
import platform
from pathlib import Path

import numpy as np

from trainer.config import load_config
from trainer.loop import train
from trainer.models import MultiBranchNet, SingleBranchNet, count_macs, count_params

log = logging.getLogger("trainer.compare")

VARIANTS: dict[str, list[str]] = {
    "student alone": ["train.mode=single"],
    "OKDHP balanced (FAU)": ["train.mode=okdhp", "model.num_branches=3", "model.branch_depths=[1,1,1]"],
    "OKDHP unbalanced (FAU)": ["train.mode=okdhp", "model.num_branches=3", "model.branch_depths=[1,2,3]"],
    "OKDHP balanced, ensemble detached": [
        "train.mode=okdhp",
        "model.num_branches=3",
        "model.branch_depths=[1,1,1]",
        "loss.detach_ensemble=true",
    ],
    "averaging instead of FAU": ["train.mode=avg", "model.num_branches=3", "model.branch_depths=[1,1,1]"],
}


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def compare(config: str, seeds: list[int], out: str, overrides: list[str], variants: list[str] | None) -> None:
    chosen = {k: v for k, v in VARIANTS.items() if variants is None or _slug(k) in variants or k in variants}
    rows = []
    for name, extra in chosen.items():
        for seed in seeds:
            cfg = load_config(
                config, [*overrides, *extra, f"train.seed={seed}", f"train.name=cmp_{_slug(name)}_s{seed}"]
            )
            run = train(cfg)
            res = json.loads((run / "metrics.json").read_text())
            student = SingleBranchNet(MultiBranchNet(cfg.model), 0)
            w, h = cfg.data.input_wh
            rows.append(
                {
                    "variant": name,
                    "seed": seed,
                    "run": str(run),
                    "student": res["metrics"].get("b0", {}),
                    "ensemble": res["metrics"].get("ensemble", {}),
                    "params": count_params(student),
                    "gmacs": count_macs(student, (h, w)) / 1e9,
                    "train_minutes": res["train_minutes"],
                    "epochs": cfg.optim.epochs,
                    "input_wh": [w, h],
                    "arch": cfg.model.arch,
                    "width": cfg.model.width,
                }
            )
            Path(out).with_suffix(".json").parent.mkdir(parents=True, exist_ok=True)
            Path(out).with_suffix(".json").write_text(json.dumps(rows, indent=2))
            Path(out).write_text(render(rows, config, overrides))
    log.info("wrote %s", out)


def render(rows: list[dict], config: str, overrides: list[str]) -> str:
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["variant"], []).append(r)

    def stat(vals: list[float]) -> str:
        if len(vals) == 1:
            return f"{vals[0] * 100:.1f}"
        return f"{np.mean(vals) * 100:.1f} ± {np.std(vals) * 100:.1f}"

    lines = [
        "| variant | student AP (b0) | AP50 | AR | ensemble AP | student params | student GMACs "
        "| train min/run | seeds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, rs in by.items():
        ens = [r["ensemble"]["AP"] for r in rs if r["ensemble"]]
        lines.append(
            f"| {name} | {stat([r['student']['AP'] for r in rs])} | {stat([r['student']['AP50'] for r in rs])} | "
            f"{stat([r['student']['AR'] for r in rs])} | {stat(ens) if ens else '–'} | "
            f"{rs[0]['params'] / 1e6:.2f} M | {rs[0]['gmacs']:.3f} | {np.mean([r['train_minutes'] for r in rs]):.1f} | "
            f"{', '.join(str(r['seed']) for r in rs)} |"
        )
    r0 = rows[0]
    machine = platform.processor() or platform.machine()
    head = (
        f"Val split of realpose-lab (GT boxes, flip test, COCO OKS AP in %), arch `{r0['arch']}` width {r0['width']}, "
        f"input {r0['input_wh'][0]}x{r0['input_wh'][1]}, {r0['epochs']} epochs, "
        f"machine: {machine}.\n"
        f"Command: `python -m trainer compare --config {config} {' '.join(overrides)}`\n\n"
    )
    return head + "\n".join(lines) + "\n"
