"""Augmentation on both keypoint schemas, and the MPII config training end to end (on real frames
relabelled into MPII's 16-joint json)."""

import json

import numpy as np
import pytest

from okpose.core.skeleton import COCO17, MPII16, skeleton_for
from trainer.__main__ import main
from trainer.augment import AugmentConfig, augment_sample, person_mask
from trainer.data import load_coco

# COCO-17 -> MPII-16: the joints both have, plus pelvis = mid hips, thorax = mid shoulders,
# upper neck = 2/3 of the way from thorax to nose, head top = nose + (nose - thorax) / 2
DIRECT = {0: 16, 1: 14, 2: 12, 3: 11, 4: 13, 5: 15, 10: 10, 11: 8, 12: 6, 13: 5, 14: 7, 15: 9}


def to_mpii(kps: np.ndarray) -> np.ndarray:
    out = np.zeros((16, 3))
    for m, c in DIRECT.items():
        out[m] = kps[c]
    pairs = {6: (11, 12), 7: (5, 6)}
    for m, (a, b) in pairs.items():
        if kps[a, 2] > 0 and kps[b, 2] > 0:
            out[m] = [*(kps[a, :2] + kps[b, :2]) / 2, 2]
    if out[7, 2] > 0 and kps[0, 2] > 0:
        out[8] = [*(out[7, :2] + 2 * (kps[0, :2] - out[7, :2]) / 3), 2]
        out[9] = [*(kps[0, :2] + (kps[0, :2] - out[7, :2]) / 2), 2]
    return out


@pytest.fixture(scope="module")
def mpii_root(tmp_path_factory, data_root):
    root = tmp_path_factory.mktemp("mpii")
    (root / "annotations").mkdir()
    (root / "images").symlink_to(data_root / "images")
    for split in ("train", "val"):
        recs = load_coco(data_root / "annotations" / f"person_keypoints_{split}.json", data_root / "images")[:12]
        items = []
        for r in recs:
            x1, y1, x2, y2 = r.box_xyxy
            mp = to_mpii(np.asarray(r.keypoints))
            items.append(
                {
                    "image": r.image_path.split("/images/")[-1],
                    "center": [(x1 + x2) / 2, (y1 + y2) / 2],
                    "scale": max(x2 - x1, y2 - y1) / 200,
                    "joints": mp[:, :2].tolist(),
                    "joints_vis": (mp[:, 2] > 0).astype(int).tolist(),
                    "head_size": 0.3 * (y2 - y1),
                }
            )
        (root / "annotations" / f"mpii_{split}.json").write_text(json.dumps(items))
    return root


@pytest.mark.parametrize("skeleton", [COCO17, MPII16], ids=lambda s: s.name)
def test_augment_sample_keeps_keypoints_on_the_body_for_either_schema(skeleton, data_root):
    """Every augmentation on (background swap, occlusion, flip, half body): the crop has the input size,
    visible keypoints stay inside it, and a flip swaps left and right by the schema's own pairs."""
    import cv2

    rec = load_coco(data_root / "annotations" / "person_keypoints_val.json", data_root / "images")[3]
    kps = np.asarray(rec.keypoints, np.float64)
    if skeleton is MPII16:
        kps = to_mpii(kps)
    img = cv2.imread(rec.image_path)
    cfg = AugmentConfig(background_prob=1.0, occlusion_prob=1.0, half_body_prob=0.5)
    from okpose.core.geometry import apply_affine

    flipped = 0
    perm = skeleton.flip_index()
    for seed in range(20):
        crop, out, mat = augment_sample(
            np.random.default_rng(seed), img, np.asarray(rec.box_xyxy), kps, cfg, (48, 64), 1.25, skeleton, img
        )
        assert crop.shape == (64, 48, 3) and out.shape == kps.shape
        # keypoints follow the crop's own transform; after a flip, by the schema's left/right pairs
        moved = apply_affine(kps[:, :2], mat)
        vis = out[:, 2] > 0
        plain = np.abs(out[vis, :2] - moved[vis]).max()
        mirrored = np.abs(out[vis, :2] - moved[perm][vis]).max()
        assert min(plain, mirrored) < 1e-3, (plain, mirrored)
        flipped += mirrored < plain
    assert flipped > 0  # some samples were flipped, and pairs followed


def test_person_mask_uses_the_schema():
    kps = np.zeros((16, 3))
    kps[[12, 13, 3, 2, 8, 9], :] = [[10, 20, 2], [30, 20, 2], [28, 50, 2], [12, 50, 2], [20, 14, 2], [20, 6, 2]]
    mask = person_mask((64, 48), kps, 4.0, MPII16)
    assert mask[35, 20] > 0.5 and mask[60, 45] < 0.1  # torso filled, far corner empty


def test_skeletons_are_consistent():
    for s in (COCO17, MPII16):
        assert skeleton_for(s.keypoints) is s and skeleton_for(s.num_keypoints) is s
        perm = s.flip_index()
        assert (perm[perm] == np.arange(s.num_keypoints)).all()
        for a, b in s.flip_pairs:  # pairs swap left and right
            assert s.keypoints[a].replace("left", "right") == s.keypoints[b].replace("left", "right")
    with pytest.raises(ValueError):
        skeleton_for(5)


def test_mpii_config_trains_with_background_swap(mpii_root, tmp_path):
    """The paper-scale MPII config, shrunk: 16 joints through augmentation (background swap always on),
    the OKDHP loss, PCKh evaluation and export."""
    args = [
        "train",
        "--config",
        "trainer/configs/hourglass_mpii.yaml",
        f"data.root={mpii_root}",
        f"train.out_dir={tmp_path}",
        "train.name=mpii",
        "train.device=cpu",
        "train.workers=0",
        "train.threads=1",
        "data.input_wh=[64,64]",
        "model.width=16",
        "optim.batch_size=4",
        "optim.epochs=1",
        "augment.background_prob=1.0",
        "train.eval_every=1",
        "optim.warmup_iters=1",
    ]
    assert main(args) == 0
    metrics = json.loads((tmp_path / "mpii" / "metrics.json").read_text())["metrics"]
    assert metrics and all(0.0 <= m.get("PCKh", m.get("AP", 0.0)) <= 1.0 for m in metrics.values())
