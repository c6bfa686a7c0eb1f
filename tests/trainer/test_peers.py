"""The comparison harness's metrics on real val persons: perfect and degraded predictions."""

import json

import numpy as np
import pytest

from trainer.data import load_coco
from trainer.evaluate import ImageMatches, coco_keypoint_stats, instance_score
from trainer.peers import bootstrap_ap, evaluate_gt_boxes, oks_per_person, pck


@pytest.fixture(scope="module")
def val(data_root):
    ann = data_root / "annotations" / "person_keypoints_val.json"
    return ann, load_coco(ann, data_root / "images")


def truth(records, shift_frac=0.0):
    """Predictions = labels (score 0.9 where labelled), optionally shifted by a fraction of the box."""
    out = []
    for r in records:
        k = r.keypoints.astype(np.float32).copy()
        x1, y1, x2, y2 = r.box_xyxy
        k[:, 0] += shift_frac * max(x2 - x1, y2 - y1)
        k[:, 2] = np.where(r.keypoints[:, 2] > 0, 0.9, 0.0)
        out.append(k)
    return np.asarray(out)


def test_metrics_are_perfect_for_the_labels_and_fall_with_error(val):
    _, recs = val
    assert np.nanmean(oks_per_person(recs, truth(recs))) == pytest.approx(1.0)
    assert pck(recs, truth(recs)) == 1.0
    assert pck(recs, truth(recs, 0.05)) == 1.0 and pck(recs, truth(recs, 0.15)) == 0.0
    assert np.nanmean(oks_per_person(recs, truth(recs, 0.05))) < 0.9


def test_gt_box_evaluation_reports_ap_interval_and_people(val, data_root):
    ann, recs = val
    r = evaluate_gt_boxes("labels", lambda records: truth(records), ann, data_root / "images")
    assert r["AP"] == pytest.approx(1.0) and r["AP_ci95"][0] == pytest.approx(1.0)
    tracks = {a["track_id"] for a in json.loads(ann.read_text())["annotations"] if not a["ignore"]}
    assert set(r["per_person"]) == {str(t) for t in tracks}
    bad = evaluate_gt_boxes("shifted", lambda records: truth(records, 0.1), ann, data_root / "images")
    assert bad["AP"] < 0.5 and bad["AP_ci95"][0] <= bad["AP"] <= bad["AP_ci95"][1]


def test_bootstrap_interval_widens_with_disagreement(val):
    ann, recs = val
    gt = json.loads(ann.read_text())
    kps = truth(recs)
    rng = np.random.default_rng(0)
    half = rng.random(len(recs)) < 0.5  # half the people badly off: AP varies with the resample
    kps[half, :, :2] += 40
    dets = [
        {"image_id": r.image_id, "category_id": 1, "keypoints": k.reshape(-1).tolist(), "score": float(s)}
        for r, k, s in zip(recs, kps, instance_score(kps), strict=True)
    ]
    lo, hi = bootstrap_ap(gt, dets, n=30)
    assert 0.0 < lo < hi < 1.0


def _renumbered(gt: dict, dets: list[dict], pick: np.ndarray) -> tuple[list[dict], list[dict], list[dict]]:
    """The images ``pick`` chooses (with repeats) as renumbered copies: what a resample is, spelled out."""
    ids = [im["id"] for im in gt["images"]]
    images, anns, out = [], [], []
    for new_id, k in enumerate(pick.tolist()):
        old = ids[k]
        images.append({"id": new_id, "width": 1, "height": 1})
        for a in gt["annotations"]:
            if a["image_id"] == old:
                anns.append({**a, "id": len(anns) + 1, "image_id": new_id})
        out += [{**d, "image_id": new_id} for d in dets if d["image_id"] == old]
    return images, anns, out


def test_per_image_matches_reproduce_pycocotools_on_resamples(val):
    ann, recs = val
    gt = json.loads(ann.read_text())
    kps = truth(recs)
    rng = np.random.default_rng(1)
    kps[..., :2] += rng.normal(0, 6, kps[..., :2].shape)  # imperfect: AP strictly between 0 and 1
    kps[rng.random(len(recs)) < 0.3, :, :2] += 30
    dets = [
        {"image_id": r.image_id, "category_id": 1, "keypoints": k.reshape(-1).tolist(), "score": float(s)}
        for r, k, s in zip(recs, kps, instance_score(kps), strict=True)
    ]
    m = ImageMatches(gt["images"], gt["annotations"], dets)
    full = coco_keypoint_stats(gt["images"], gt["annotations"], dets)[0]
    assert 0.05 < full < 0.95 and m.ap() == pytest.approx(full, abs=1e-9)
    for seed in range(3):
        pick = np.random.default_rng(seed).integers(0, len(gt["images"]), len(gt["images"]))
        assert m.ap(pick) == pytest.approx(coco_keypoint_stats(*_renumbered(gt, dets, pick))[0], abs=1e-9)
