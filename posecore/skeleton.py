"""COCO-17 keypoint schema: names, 0-based limbs, flip pairs and OKS sigmas."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

COCO_KEYPOINTS: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
NUM_KEYPOINTS = len(COCO_KEYPOINTS)

# 0-based (COCO's json is 1-based): legs, hips, torso, arms, head.
COCO_LIMBS: tuple[tuple[int, int], ...] = (
    (15, 13),
    (13, 11),
    (16, 14),
    (14, 12),
    (11, 12),
    (5, 11),
    (6, 12),
    (5, 6),
    (5, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (1, 2),
    (0, 1),
    (0, 2),
    (1, 3),
    (2, 4),
    (3, 5),
    (4, 6),
)

COCO_FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 2),
    (3, 4),
    (5, 6),
    (7, 8),
    (9, 10),
    (11, 12),
    (13, 14),
    (15, 16),
)

# Per-keypoint OKS sigmas from the COCO evaluation code.
COCO_SIGMAS: tuple[float, ...] = (
    0.026,
    0.025,
    0.025,
    0.035,
    0.035,
    0.079,
    0.079,
    0.072,
    0.072,
    0.062,
    0.062,
    0.107,
    0.107,
    0.087,
    0.087,
    0.089,
    0.089,
)


def flip_index(num_keypoints: int, flip_pairs: tuple[tuple[int, int], ...]) -> npt.NDArray[np.int64]:
    """Permutation p such that keypoint k of a mirrored image is keypoint p[k] of the original."""
    perm = np.arange(num_keypoints)
    for a, b in flip_pairs:
        perm[a], perm[b] = b, a
    return perm


def limbs_from_coco_skeleton(skeleton_1based: list[list[int]]) -> tuple[tuple[int, int], ...]:
    """Convert a COCO json ``skeleton`` (1-based pairs) to 0-based limbs."""
    return tuple((int(a) - 1, int(b) - 1) for a, b in skeleton_1based)
