"""Top-down pre/post-processing shared by the trainer's evaluation and the service."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from posecore.geometry import apply_affine, box_to_center_size, crop_batch, invert_affine
from posecore.heatmaps import decode, heatmap_to_input
from posecore.spec import ModelSpec

F32 = npt.NDArray[np.float32]


def normalize_crops(crops_bgr: npt.NDArray[np.uint8], spec: ModelSpec) -> F32:
    """BGR uint8 crops (N, H, W, 3) -> network input (N, 3, H, W) float32, per the spec."""
    x = crops_bgr[..., ::-1] if spec.color == "rgb" else crops_bgr
    mean = np.asarray(spec.mean, dtype=np.float32)
    inv_std = 1.0 / np.asarray(spec.std, dtype=np.float32)
    out = (x.astype(np.float32) - mean) * inv_std
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def heatmaps_to_image(
    heatmaps: npt.ArrayLike, image_to_crop: npt.ArrayLike, spec: ModelSpec, refine: str = "dark"
) -> F32:
    """Heatmaps (N, K, h, w) + image->crop matrices (N, 2, 3) -> keypoints (N, K, 3) in image pixels.

    The third column is the heatmap peak value (the keypoint score).
    """
    hm = np.asarray(heatmaps, dtype=np.float32)
    mats = np.asarray(image_to_crop, dtype=np.float64).reshape(-1, 2, 3)
    coords, scores = decode(hm, refine=refine)
    crop_xy = heatmap_to_input(coords, spec.heatmap_stride)
    inv = np.stack([invert_affine(m) for m in mats]) if len(mats) else np.zeros((0, 2, 3))
    img_xy = apply_affine(crop_xy, inv) if len(mats) else crop_xy
    # heatmap peaks can overshoot 1 slightly; a keypoint score is a confidence in [0, 1]
    return np.concatenate([img_xy, np.clip(scores, 0.0, 1.0)[..., None]], axis=2).astype(np.float32)


def prepare_crops(
    image_bgr: npt.NDArray[np.uint8], boxes_xyxy: npt.ArrayLike, spec: ModelSpec
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]:
    """Person boxes (N, 4) -> aspect-fixed, padded crops (N, H, W, 3) and image->crop matrices (N, 2, 3)."""
    w, h = spec.input_wh
    centers, sizes = box_to_center_size(boxes_xyxy, aspect_wh=w / h, padding=spec.padding)
    return crop_batch(image_bgr, centers, sizes, spec.input_wh)
