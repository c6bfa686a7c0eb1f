"""``python -m trainer compare``: the online-distillation results table with paired seeds.

Every arm trains the same student on the same data; for one seed every arm sees the same data order and
the same augmentation (``TopDownDataset`` draws each sample's augmentation from (seed, epoch, index), the
loader's shuffle from the seed). Arms: the student alone at equal epochs (the baseline) and at equal
time (epochs scaled by OKDHP's measured time over the baseline's, same seed: process CPU time where both runs
recorded it, else wall-clock), OKDHP balanced /
unbalanced / KD detached from the ensemble, averaging instead of the FAU, FFL, PCL and MCL.

Per arm: the deployed network's val metrics (AP, mean OKS, PCK@0.1; PCL deploys its temporal mean
teacher), and against the baseline the **paired** difference per seed: mean, sd and a 95 % t-interval.
Runs already finished (``metrics.json`` present) are read back, not retrained, so an interrupted
comparison resumes where it stopped. Two runs side by side at one thread each use both cores: start
the same command in two shells (each run is claimed by one process, ``RUNNING`` marker), then
``--render-only`` writes the table from every finished run.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import platform
from pathlib import Path

import numpy as np

from trainer.config import load_config
from trainer.loop import train
from trainer.models import MultiBranchNet, SingleBranchNet, count_macs, count_params

log = logging.getLogger("trainer.compare")

BASELINE = "student alone, equal epochs"
EQUAL_TIME = "student alone, equal time"
REFERENCE = "OKDHP balanced"  # the arm whose wall-clock time the equal-time baseline gets
_THREE = ["model.num_branches=3", "model.branch_depths=[1,1,1]"]
VARIANTS: dict[str, list[str]] = {
    BASELINE: ["train.mode=single"],
    REFERENCE: ["train.mode=okdhp", *_THREE],
    EQUAL_TIME: ["train.mode=single"],
    "OKDHP unbalanced (depths 1, 2, 3)": ["train.mode=okdhp", "model.num_branches=3", "model.branch_depths=[1,2,3]"],
    "OKDHP balanced, KD detached from the ensemble": ["train.mode=okdhp", *_THREE, "loss.detach_ensemble=true"],
    "averaging instead of the FAU": ["train.mode=avg", *_THREE],
    "FFL (fused head)": ["train.mode=ffl", *_THREE],
    "PCL (peer ensemble + temporal mean teacher)": ["train.mode=pcl", *_THREE],
    "MCL (branch-contrastive)": ["train.mode=mcl", *_THREE],
}
METRICS = ("AP", "mean_oks", "pck@0.1")
# two-sided 95 % Student t quantiles by degrees of freedom
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def deployed_output(mode: str) -> str:
    """The output a mode ships: branch 0, or for PCL the temporal mean teacher's branch 0."""
    return "mean_b0" if mode == "pcl" else "b0"


def compare(
    config: str, seeds: list[int], out: str, overrides: list[str], variants: list[str] | None, render_only: bool = False
) -> None:
    chosen = [k for k in VARIANTS if variants is None or slug(k) in variants or k in variants]
    base_cfg = load_config(config, overrides)
    rows: list[dict] = []
    for seed in seeds:
        minutes: dict[str, float] = {}
        cpu: dict[str, float] = {}
        for name in chosen:
            extra = list(VARIANTS[name])
            if name == EQUAL_TIME:
                if BASELINE not in minutes or REFERENCE not in minutes:
                    log.warning("seed %d: %s needs %s and %s first; skipped", seed, name, BASELINE, REFERENCE)
                    continue
                # CPU time when both runs recorded it (runs sharing the cores unevenly skew wall-clock ratios)
                cost = cpu if BASELINE in cpu and REFERENCE in cpu else minutes
                ratio = cost[REFERENCE] / cost[BASELINE]
                extra.append(f"optim.epochs={max(1, round(base_cfg.optim.epochs * ratio))}")
            cfg = load_config(
                config, [*overrides, *extra, f"train.seed={seed}", f"train.name=cmp_{slug(name)}_s{seed}"]
            )
            run = Path(cfg.train.out_dir) / cfg.train.name
            if not (run / "metrics.json").exists():
                if render_only or not _claim(run):
                    continue
                try:
                    run = train(cfg)
                finally:
                    (run / "RUNNING").unlink(missing_ok=True)
            row = _row(name, seed, run, cfg)
            minutes[name] = row["train_minutes"]
            if row["train_cpu_minutes"] is not None:
                cpu[name] = row["train_cpu_minutes"]
            rows.append(row)
            _write(out, rows, config, overrides)
    _write(out, rows, config, overrides)
    log.info("wrote %s", out)


def _claim(run: Path) -> bool:
    """Take a run for this process (a ``RUNNING`` marker created exclusively): two ``compare`` processes
    sharing a machine never train the same run. A marker left by a killed process must be deleted."""
    run.mkdir(parents=True, exist_ok=True)
    try:
        (run / "RUNNING").open("x").close()
    except FileExistsError:
        log.warning("%s is being trained by another process (or was interrupted: delete %s)", run, run / "RUNNING")
        return False
    return True


def _row(name: str, seed: int, run: Path, cfg) -> dict:  # noqa: ANN001
    res = json.loads((run / "metrics.json").read_text())
    student = SingleBranchNet(MultiBranchNet(cfg.model), 0)
    w, h = cfg.data.input_wh
    last: dict[str, str] = {}
    if (run / "log.csv").exists():
        with open(run / "log.csv") as f:
            for r in csv.DictReader(f):
                last = r
    return {
        "variant": name,
        "seed": seed,
        "run": str(run),
        "mode": cfg.train.mode,
        "deployed": res["metrics"].get(deployed_output(cfg.train.mode), {}),
        "ensemble": res["metrics"].get("ensemble", {}),
        "branches": {k: v for k, v in res["metrics"].items() if k.startswith("b")},
        "branch_div": float(last["branch_div"]) if last.get("branch_div") else None,
        "fau_w_std": float(last["fau_w_std"]) if last.get("fau_w_std") else None,
        "params": count_params(student),
        "gmacs": count_macs(student, (h, w)) / 1e9,
        "train_minutes": res["train_minutes"],
        "train_cpu_minutes": res.get("train_cpu_minutes"),  # absent in runs written by older versions
        "epochs": cfg.optim.epochs,
        "input_wh": [w, h],
        "arch": cfg.model.arch,
        "width": cfg.model.width,
        "flip_test": cfg.train.flip_test,
        "val": f"{cfg.data.val_folder} (scenes never trained on)" if cfg.data.val_folder else "realpose-lab val",
    }


def _write(out: str, rows: list[dict], config: str, overrides: list[str]) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).with_suffix(".json").write_text(json.dumps(rows, indent=2))
    Path(out).write_text(render(rows, config, overrides))


def paired(diffs: list[float]) -> tuple[float, float, float, float]:
    """Mean, sd and 95 % t-interval of paired differences (nan interval with fewer than 2 pairs)."""
    d = np.asarray(diffs, dtype=float)
    if len(d) < 2:
        return float(d.mean()) if len(d) else math.nan, math.nan, math.nan, math.nan
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    half = T95.get(len(d) - 1, 1.96) * sd / math.sqrt(len(d))
    return mean, sd, mean - half, mean + half


def against_baseline(
    per_seed: dict[int, dict], base: dict[int, dict]
) -> tuple[int, dict[str, tuple[float, float, float, float]]]:
    """Paired seeds in common with the baseline, and per metric the ``paired`` statistics of the differences."""
    common = sorted(set(per_seed) & set(base))
    return len(common), {
        m: paired([per_seed[s]["deployed"][m] - base[s]["deployed"][m] for s in common]) for m in METRICS
    }


def render(rows: list[dict], config: str, overrides: list[str]) -> str:
    by: dict[str, dict[int, dict]] = {}
    for r in rows:
        by.setdefault(r["variant"], {})[r["seed"]] = r
    base = by.get(BASELINE, {})

    def pct(v: float) -> str:
        return "–" if v is None or math.isnan(v) else f"{v * 100:.1f}"

    def mean_sd(vals: list[float]) -> str:
        if not vals:
            return "–"
        if len(vals) == 1:
            return pct(vals[0])
        return f"{np.mean(vals) * 100:.1f} ± {np.std(vals, ddof=1) * 100:.1f}"

    lines = [
        "| variant | seeds | AP | mean OKS | PCK@0.1 | ensemble AP | branch diversity (x1e-4) | FAU weight sd "
        "| epochs | train min/run |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    diff_lines = [
        "| variant vs student alone (equal epochs) | paired seeds | ΔAP [95 % CI] | Δmean OKS [95 % CI] "
        "| ΔPCK@0.1 [95 % CI] |",
        "|---|---|---|---|---|",
    ]
    for name, per_seed in by.items():
        rs = [per_seed[s] for s in sorted(per_seed)]
        ens = [r["ensemble"]["AP"] for r in rs if r["ensemble"]]
        div = [r["branch_div"] for r in rs if r["branch_div"] is not None]
        fau = [r["fau_w_std"] for r in rs if r["fau_w_std"] is not None]
        lines.append(
            f"| {name} | {len(rs)} | "
            + " | ".join(mean_sd([r["deployed"][m] for r in rs]) for m in METRICS)
            + f" | {mean_sd(ens)} | {f'{np.mean(div) * 1e4:.2f}' if div else '–'} | "
            f"{f'{np.mean(fau):.3f}' if fau else '–'} | {', '.join(str(r['epochs']) for r in rs)} | "
            f"{np.mean([r['train_minutes'] for r in rs]):.1f} |"
        )
        if name == BASELINE:
            continue
        n, diffs = against_baseline(per_seed, base)
        cells = [f"{d[0] * 100:+.1f} [{d[2] * 100:+.1f}, {d[3] * 100:+.1f}]" if not math.isnan(d[2]) else pct(d[0])
                 for d in diffs.values()]  # fmt: skip
        diff_lines.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
    if not rows:
        return "No finished runs.\n"
    r0 = rows[0]
    machine = platform.processor() or platform.machine()
    width = "" if r0["arch"] == "movenet" else f" width {r0['width']}"  # movenet: MoveNet's own widths
    head = (
        f"{r0.get('val', 'realpose-lab val')} "
        f"(GT boxes, {'flip test' if r0['flip_test'] else 'no flip'}; metrics in %), "
        f"arch `{r0['arch']}`{width}, "
        f"input {r0['input_wh'][0]}x{r0['input_wh'][1]}, "
        f"{r0['params'] / 1e6:.2f} M parameters / {r0['gmacs']:.3f} GMACs deployed, machine: {machine}.\n"
        f"Command: `python -m trainer compare --config {config} --seeds "
        f"{' '.join(str(s) for s in sorted({r['seed'] for r in rows}))} {' '.join(overrides)}`\n\n"
        "Per arm: mean ± sd over seeds of the deployed network (branch 0; PCL: its temporal mean teacher).\n\n"
    )
    tail = (
        "\n\nPaired differences against the student alone trained for the same epochs with the same seed "
        "(same data order and augmentation): mean and 95 % t-interval over seeds.\n\n"
    )
    return head + "\n".join(lines) + tail + "\n".join(diff_lines) + "\n\n" + conclusions(by, base) + NOT_RUN


NOT_RUN = (
    "\nHow to read this table (set-up, budget, why no gain is shown): docs/results_discussion.md.\n"
    "\nThe paper-scale configs (`trainer/configs/hourglass_4stack_coco.yaml`, `hourglass_mpii.yaml`) are not run by "
    "this command; they need a GPU, and none was lent to the run that wrote this file.\n"
)


def conclusions(by: dict[str, dict[int, dict]], base: dict[int, dict]) -> str:
    """Only what the intervals support: per arm and metric, better / worse when the paired 95 % interval
    excludes 0, otherwise "no difference shown"."""
    tests = (len(by) - 1) * len(METRICS)
    out = [
        "What the intervals support (paired 95 % t-intervals; fewer than 2 paired seeds: nothing). "
        f"{tests} intervals are read here, so about {tests / 20:.1f} of them may exclude 0 by chance alone: "
        "a lone **better** / **worse** on one metric is weak evidence.",
        "",
    ]
    for name, per_seed in by.items():
        if name == BASELINE:
            continue
        n, diffs = against_baseline(per_seed, base)
        verdicts = []
        for m, (mean, _sd, lo, hi) in diffs.items():
            if math.isnan(lo):
                verdicts.append(f"{m}: too few seeds")
            elif lo > 0:
                verdicts.append(f"{m}: **better** ({mean * 100:+.1f})")
            elif hi < 0:
                verdicts.append(f"{m}: **worse** ({mean * 100:+.1f})")
            else:
                verdicts.append(f"{m}: no difference shown")
        out.append(f"- {name} vs the student alone (equal epochs), {n} paired seeds: " + "; ".join(verdicts))
    return "\n".join(out) + "\n"
