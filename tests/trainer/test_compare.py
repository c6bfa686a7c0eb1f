"""``python -m trainer compare``: every arm on paired seeds, finished runs read back, paired intervals."""

import json
import math

import numpy as np
import pytest

from trainer.__main__ import main
from trainer.compare import BASELINE, EQUAL_TIME, paired

TINY = [
    "data.max_train=8",
    "data.max_val=4",
    "data.input_wh=[48,64]",
    "optim.batch_size=4",
    "optim.epochs=1",
    "model.width=16",
    "train.threads=1",
    "optim.warmup_iters=2",
]


def test_paired_interval_is_a_t_interval_of_the_differences():
    mean, sd, lo, hi = paired([0.02, 0.04, 0.03])
    assert mean == pytest.approx(0.03) and sd == pytest.approx(0.01)
    assert (lo, hi) == pytest.approx((0.03 - 4.303 * 0.01 / math.sqrt(3), 0.03 + 4.303 * 0.01 / math.sqrt(3)))
    assert math.isnan(paired([0.1])[2])


def test_compare_runs_every_arm_per_seed_and_resumes(tmp_path, data_root):
    out = tmp_path / "results.md"
    variants = ["student_alone__equal_epochs", "okdhp_balanced", "student_alone__equal_time", "pcl__peer_ensemble___temporal_mean_teacher"]  # fmt: skip
    args = ["compare", "--config", "trainer/configs/litehg_cmp.yaml", "--seeds", "0", "1", "--out", str(out),
            "--variants", *variants, "--", f"data.root={data_root}", f"train.out_dir={tmp_path}", *TINY]  # fmt: skip
    assert main(args) == 0
    rows = json.loads(out.with_suffix(".json").read_text())
    assert {(r["variant"], r["seed"]) for r in rows} == {
        (v, s) for v in (BASELINE, "OKDHP balanced", EQUAL_TIME, "PCL (peer ensemble + temporal mean teacher)")
        for s in (0, 1)
    }  # fmt: skip
    pcl = [r for r in rows if r["mode"] == "pcl"]
    assert all({"AP", "mean_oks", "pck@0.1"} <= set(r["deployed"]) for r in pcl)  # its temporal mean teacher
    okdhp = [r for r in rows if r["mode"] == "okdhp"]
    assert all(r["fau_w_std"] is not None and r["branch_div"] is not None for r in okdhp)
    # the equal-time arm's epochs follow OKDHP's CPU time over the baseline's (wall-clock is skewed when
    # runs share the cores unevenly)
    by = {(r["variant"], r["seed"]): r for r in rows}
    for s in (0, 1):
        base, ref, eq = by[(BASELINE, s)], by[("OKDHP balanced", s)], by[(EQUAL_TIME, s)]
        assert base["train_cpu_minutes"] > 0 and ref["train_cpu_minutes"] > 0
        ratio = ref["train_cpu_minutes"] / base["train_cpu_minutes"]
        assert eq["epochs"] == max(1, round(base["epochs"] * ratio))
    table = out.read_text()
    assert "Paired differences" in table and "OKDHP balanced | 2 |" in table
    # a second call reads the finished runs back instead of training them again
    stamp = {p: p.stat().st_mtime for p in tmp_path.glob("cmp_*/metrics.json")}
    assert main(args) == 0
    assert {p: p.stat().st_mtime for p in tmp_path.glob("cmp_*/metrics.json")} == stamp
    assert np.isfinite([r["deployed"]["mean_oks"] for r in rows]).all()
