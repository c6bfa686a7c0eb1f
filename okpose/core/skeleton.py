"""Keypoint schemas, declared once: names, 0-based limbs, flip pairs, OKS sigmas and body parts,
keyed by schema (COCO-17, MPII-16). Models carry names, limbs and flip pairs in their spec; the rest
is looked up here by the names (``skeleton_for``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Skeleton:
    name: str
    keypoints: tuple[str, ...]
    limbs: tuple[tuple[int, int], ...]
    flip_pairs: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...]  # OKS per-keypoint sigmas
    upper_body: tuple[int, ...]  # half-body augmentation parts
    lower_body: tuple[int, ...]
    torso: tuple[int, ...]  # polygon, in order (silhouette masks)
    head: tuple[int, ...]

    def __post_init__(self) -> None:
        k = len(self.keypoints)
        if len(self.sigmas) != k:
            raise ValueError(f"{self.name}: {len(self.sigmas)} sigmas for {k} keypoints")
        for a, b in (*self.limbs, *self.flip_pairs):
            if not (0 <= a < k and 0 <= b < k):
                raise ValueError(f"{self.name}: pair ({a}, {b}) out of range")

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

    def flip_index(self) -> npt.NDArray[np.int64]:
        return flip_index(self.num_keypoints, self.flip_pairs)


COCO17 = Skeleton(
    name="coco17",
    keypoints=(
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
    ),
    # legs, hips, torso, arms, head (COCO's json is 1-based)
    limbs=(
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
    ),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    # from the COCO evaluation code
    sigmas=(
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
    ),
    upper_body=tuple(range(0, 11)),
    lower_body=tuple(range(11, 17)),
    torso=(5, 6, 12, 11),
    head=(0, 1, 2, 3, 4),
)

MPII16 = Skeleton(
    name="mpii16",
    keypoints=(
        "right_ankle",
        "right_knee",
        "right_hip",
        "left_hip",
        "left_knee",
        "left_ankle",
        "pelvis",
        "thorax",
        "upper_neck",
        "head_top",
        "right_wrist",
        "right_elbow",
        "right_shoulder",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
    ),
    limbs=(
        (0, 1),
        (1, 2),
        (2, 6),
        (6, 3),
        (3, 4),
        (4, 5),
        (6, 7),
        (7, 8),
        (8, 9),
        (10, 11),
        (11, 12),
        (12, 7),
        (7, 13),
        (13, 14),
        (14, 15),
    ),
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    # MPII is scored with PCKh; for OKS (pose NMS, tracking) each joint takes the sigma of its COCO
    # counterpart (pelvis: hips; thorax, neck: shoulders; head top: ears)
    sigmas=(
        0.089,
        0.087,
        0.107,
        0.107,
        0.087,
        0.089,
        0.107,
        0.079,
        0.079,
        0.035,
        0.062,
        0.072,
        0.079,
        0.079,
        0.072,
        0.062,
    ),
    upper_body=(7, 8, 9, 10, 11, 12, 13, 14, 15),
    lower_body=(0, 1, 2, 3, 4, 5, 6),
    torso=(12, 13, 3, 2),
    head=(8, 9),
)

SKELETONS: dict[str, Skeleton] = {s.name: s for s in (COCO17, MPII16)}

# the COCO schema's parts by their usual names
COCO_KEYPOINTS = COCO17.keypoints
COCO_LIMBS = COCO17.limbs
COCO_FLIP_PAIRS = COCO17.flip_pairs
COCO_SIGMAS = COCO17.sigmas
NUM_KEYPOINTS = COCO17.num_keypoints


def skeleton_for(keypoints: tuple[str, ...] | int) -> Skeleton:
    """The schema with these keypoint names (or this many keypoints)."""
    for s in SKELETONS.values():
        if keypoints == s.keypoints or keypoints == s.num_keypoints:
            return s
    raise ValueError(f"no keypoint schema with {keypoints!r} (known: {', '.join(SKELETONS)})")


def flip_index(num_keypoints: int, flip_pairs: tuple[tuple[int, int], ...]) -> npt.NDArray[np.int64]:
    """Permutation p such that keypoint k of a mirrored image is keypoint p[k] of the original."""
    perm = np.arange(num_keypoints)
    for a, b in flip_pairs:
        perm[a], perm[b] = b, a
    return perm
