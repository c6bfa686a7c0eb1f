"""Loaders and metrics on small tables: COCO records, MPII json, PCKh, instance scores."""

import json

import numpy as np
import pytest

from trainer.data import load_coco, load_mpii
from trainer.evaluate import instance_score, pckh


def test_mpii_loader_boxes_and_visibility(tmp_path):
    items = [
        {
            "image": "a.jpg",
            "center": [100, 200],
            "scale": 1.5,
            "joints": [[10 * i, 5 * i] for i in range(16)],
            "joints_vis": [1] * 15 + [0],
            "head_size": 30.0,
        },
    ]
    ann = tmp_path / "mpii.json"
    ann.write_text(json.dumps(items))
    (rec,) = load_mpii(ann, tmp_path)
    assert rec.box_xyxy == (-50.0, 50.0, 250.0, 350.0)  # 200 px * scale, square around the centre
    assert rec.keypoints.shape == (16, 3) and rec.keypoints[15, 2] == 0 and rec.keypoints[0, 2] == 2
    assert rec.head_size == 30.0


@pytest.mark.parametrize("offset,expected", [(0.0, 1.0), (14.0, 1.0), (16.0, 0.0)])
def test_pckh_threshold(tmp_path, offset, expected):
    items = [{"image": "a.jpg", "center": [0, 0], "scale": 1, "joints": [[i, i] for i in range(16)], "head_size": 30.0}]
    ann = tmp_path / "m.json"
    ann.write_text(json.dumps(items))
    recs = load_mpii(ann, tmp_path)
    pred = recs[0].keypoints[None].copy()
    pred[..., 0] += offset  # within / beyond 0.5 * head size (15 px)
    assert pckh(recs, pred) == expected


def test_coco_loader_skips_ignored_and_empty(data_root):
    recs = load_coco(data_root / "annotations" / "person_keypoints_val.json", data_root / "images")
    raw = json.loads((data_root / "annotations" / "person_keypoints_val.json").read_text())
    usable = [a for a in raw["annotations"] if not a.get("ignore") and a["num_keypoints"] > 0]
    assert len(recs) == len(usable) == 137
    assert all(r.keypoints.shape == (17, 3) for r in recs)


def test_instance_score_table():
    kps = np.zeros((3, 17, 3))
    kps[0, :, 2] = 0.9
    kps[1, :4, 2] = 0.5
    np.testing.assert_allclose(instance_score(kps), [0.9, 0.5 * 4 / 17, 0.0], rtol=1e-6)  # the service's score
