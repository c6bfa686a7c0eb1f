"""The tracking benchmark's scoring: CLEAR-MOT / IDF1 (motmetrics) and HOTA (trackeval) on real labelled
tracks, with the tracker outputs built from the labels themselves."""

import numpy as np

from bench.tracking import evaluate, load_gt
from okpose.core.types import Poses, TrackedPoses


def outputs(frames, swap_from=None):
    """The labels as tracker output (perfect tracking); from ``swap_from`` on, two ids exchanged."""
    outs = []
    for i, f in enumerate(frames):
        ids = f.ids.copy()
        if swap_from is not None and i >= swap_from and len(ids) >= 2:
            ids[[0, 1]] = ids[[1, 0]]
        poses = Poses(f.keypoints.astype(np.float32), f.boxes.astype(np.float32), np.ones(len(ids), np.float32))
        outs.append(TrackedPoses(poses, ids))
    return outs


def test_perfect_tracks_score_one_and_a_swap_costs_switches_idf1_and_hota(data_root):
    frames = load_gt("pose2sim_multi_cam01", data_root)
    perfect = evaluate(frames, outputs(frames))
    assert perfect["num_switches"] == 0 and perfect["idf1"] == 1.0
    assert perfect["hota"] > 0.99
    multi = [i for i, f in enumerate(frames) if len(f.ids) >= 2]
    swapped = evaluate(frames, outputs(frames, swap_from=multi[len(multi) // 2]))
    assert swapped["num_switches"] >= 2  # both persons switch
    assert swapped["idf1"] < 0.9 and swapped["hota"] < perfect["hota"] - 0.05
    assert swapped["mota"] < perfect["mota"]


def test_compare_tracking_lines_up_the_same_runs_and_sums_them():
    from bench.compare_tracking import table

    def run(sw, fp):
        rows = [{"video": v, "input": "clip", "tracker": "PoseFlow (ours)", "num_switches": sw, "num_false_positives": fp,
                 "num_misses": 1, "mota": 0.9, "idf1": 0.8} for v in ("a", "b")]  # fmt: skip
        rows.append({**rows[0], "tracker": "box-IoU greedy", "num_switches": 99})
        return {"rows": rows}

    text = table(run(1, 2), run(0, 5), "PoseFlow (ours)", ("on", "off"))
    assert "| a | clip | 1 / 0 | 2 / 5 |" in text and "| **all** | (summed) | 2 / 0 | 4 / 10 | 2 / 2 |" in text
    assert "99" not in text
