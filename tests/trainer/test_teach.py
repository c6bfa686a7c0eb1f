"""people-diverse teacher labelling: the ensemble rule, the scene split and the resumable cache."""

from __future__ import annotations

import json

import numpy as np

from trainer.pretrained import MOVENET_ONNX
from trainer.teach import (
    VIEW_NAMES,
    EnsembleRule,
    Views,
    clip_paths,
    clip_split,
    clip_step,
    coco_items,
    ensemble,
    expected_images,
    held_out_actions,
    read_frames,
    stanford_items,
    teacher_pass,
    write_splits,
)

BOX = np.array([0.0, 0.0, 100.0, 200.0])


def _views(offsets: list[float], score: float = 0.9) -> np.ndarray:
    v = np.zeros((len(VIEW_NAMES), 17, 3), np.float32)
    for i, dx in enumerate(offsets):
        v[i, :, 0] = 50 + dx
        v[i, :, 1] = 100
        v[i, :, 2] = score
    return v


def test_ensemble_labels_only_where_enough_views_agree():
    kp, lab = ensemble(_views([0, 2, 4, 6]), BOX, EnsembleRule(agree=0.05))  # 0.05 x 200 px = 10 px
    assert lab.all()
    np.testing.assert_allclose(kp[:, 0], 51.0, atol=1e-3)  # Thunder's views (0, 2) place it; Lightning's only vote
    assert kp[0, 2] > 0.8
    kp, lab = ensemble(_views([0, 2, 60, 80]), BOX, EnsembleRule(agree=0.05, min_agree=3))
    assert not lab.any()  # two far-off views: too few agree
    kp, lab = ensemble(_views([0, 2, 4, 6], score=0.1), BOX, EnsembleRule(min_score=0.3))
    assert not lab.any() and kp[0, 2] < 0.3  # unsure teachers label nothing


def test_scene_split_keeps_whole_actions_and_clip_families_apart():
    items = stanford_items()
    held = held_out_actions([i.file_name.split("/")[1].rsplit("_", 1)[0] for i in items])
    assert len(held) == 8
    train_actions = {i.file_name.split("/")[1].rsplit("_", 1)[0] for i in items if i.split == "train"}
    unseen_actions = {i.file_name.split("/")[1].rsplit("_", 1)[0] for i in items if i.split != "train"}
    assert unseen_actions == held and not train_actions & held
    splits = {p.name: clip_split(p) for p in clip_paths()}
    assert splits["one-by-one-person-detection.mp4"] == splits["one-by-one-person-detection.gif"] != "train"
    assert sum(s == "unseen-asl" for s in splits.values()) == 4


def test_teacher_pass_resumes_without_relabelling(tmp_path):
    views = Views(paths=[MOVENET_ONNX, MOVENET_ONNX])  # the committed Lightning stands in for Thunder here
    first = teacher_pass(tmp_path, limit=2, views=views)
    assert first["new_images"] == 2
    cache = tmp_path / "cache" / "stanford40.jsonl"
    with cache.open("a") as f:
        f.write('{"key": "cut by a kill')  # a half-written line
    second = teacher_pass(tmp_path, limit=2, views=views)
    assert second["new_images"] == 2
    keys = [json.loads(ln)["key"] for ln in cache.read_text().splitlines()]
    assert len(keys) == 4 == len(set(keys))
    rec = json.loads(cache.read_text().splitlines()[0])
    human = [p for p in rec["persons"] if p["source"] == "human"]
    assert len(human) == 1 and np.asarray(human[0]["views"]).shape == (4, 17, 3)
    summary = write_splits(tmp_path)
    coco = json.loads((tmp_path / "train" / "annotations.json").read_text())
    assert summary["train"]["images"] == 4 == len(coco["images"])
    assert (tmp_path / "train" / "images" / coco["images"][0]["file_name"]).is_file()
    labelled = [a for a in coco["annotations"] if not a["ignore"]]
    assert labelled and all(len(a["target_weights"]) == 17 for a in labelled)


def test_progress_total_counts_the_images_the_pass_will_read():
    """The teacher pass's progress total: every photo set's items plus each clip's frames at its step (GIF
    previews: every frame), equal to what the pass reads (one real clip and one real GIF, read here)."""
    clips = clip_paths()
    some = [next(c for c in clips if c.suffix != ".gif"), next(c for c in clips if c.suffix == ".gif")]
    read = sum(1 for c in some for _ in read_frames(c, clip_step(c, 3)))
    photos = len(list(coco_items("coco8-pose")))
    assert expected_images([("coco8-pose", lambda: coco_items("coco8-pose"))], 3, some) == photos + read
