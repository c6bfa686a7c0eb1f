"""The unseen-scene check's box-free metrics on real labelled persons (realpose-lab val)."""

import json

import numpy as np

from okpose.core.skeleton import COCO17
from trainer.data import PersonRecord, load_coco
from trainer.unseen import paired_delta_ci, rate_ci, swap_counts, unseen_joint_counts


def _records(data_root, n=30):
    ann = data_root / "annotations" / "person_keypoints_val.json"
    return ann, load_coco(ann, data_root / "images")[:n]


def test_swap_rate_sees_mirrored_limbs_and_not_correct_ones(data_root):
    _, recs = _records(data_root)
    exact = np.stack([r.keypoints for r in recs]).astype(np.float32)
    mirrored = exact[:, COCO17.flip_index()]
    assert rate_ci(swap_counts(recs, exact))[0] == 0.0
    rate, lo, hi, persons = rate_ci(swap_counts(recs, mirrored))
    assert rate == 1.0 and persons > 20
    # one arm crossed in every person: a share between none and all
    one = exact.copy()
    one[:, [9, 10]] = exact[:, [10, 9]]
    r, lo, hi, _ = rate_ci(swap_counts(recs, one))
    assert 0.0 < lo <= r <= hi < 1.0


def test_unseen_joint_rate_counts_only_border_cut_persons_and_reported_joints():
    kp = np.zeros((17, 3), np.float32)
    kp[:11] = (50.0, 50.0, 2.0)  # upper body labelled, legs out of view
    cut = PersonRecord("x.jpg", 1, (10.0, 5.0, 90.0, 100.0), kp)  # reaches the bottom of a 100-px image
    inside = PersonRecord("x.jpg", 1, (10.0, 5.0, 90.0, 80.0), kp)
    legs = np.zeros((17, 3), np.float32)
    legs[:, 2] = 0.9
    quiet = legs.copy()
    quiet[11:, 2] = 0.1
    c = unseen_joint_counts([cut, inside], np.stack([legs, legs]), [(100, 100)] * 2)
    assert c.tolist() == [[6, 6], [0, 0]]
    assert unseen_joint_counts([cut], quiet[None], [(100, 100)]).tolist() == [[0, 6]]


def test_paired_interval_is_zero_for_one_model_against_itself_and_excludes_zero_for_a_worse_one(data_root):
    ann, recs = _records(data_root, 60)
    gt = json.loads(ann.read_text())
    ids = {r.image_id for r in recs}
    gt = {**gt, "images": [i for i in gt["images"] if i["id"] in ids],
          "annotations": [a for a in gt["annotations"] if a["image_id"] in ids and not a.get("ignore")]}  # fmt: skip

    def dets(noise):
        rng = np.random.default_rng(0)
        out = []
        for r in recs:
            k = r.keypoints.astype(np.float64).copy()
            k[:, :2] += rng.normal(0, noise, (17, 2))
            k[:, 2] = 1.0
            out.append({"image_id": r.image_id, "category_id": 1, "keypoints": k.reshape(-1).tolist(), "score": 1.0})
        return out

    good, bad = dets(1.0), dets(12.0)
    assert paired_delta_ci(gt, good, good, n=20) == (0.0, 0.0)
    lo, hi = paired_delta_ci(gt, good, bad, n=20)
    assert lo > 0
