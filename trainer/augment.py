"""Training augmentation on the shared geometry: one affine warp per sample plus photometric and
occlusion noise, so that a student trained on one lab scene generalises further.

All functions are numpy/OpenCV; images are BGR uint8, keypoints (K, 3) x, y, v in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from okpose.core.geometry import affine_matrix, apply_affine, box_to_center_size
from okpose.core.skeleton import COCO17, Skeleton


@dataclass
class AugmentConfig:
    enabled: bool = True
    scale: float = 0.30  # box size factor in [1 - s, 1 + s]
    rotation: float = 40.0  # degrees, applied with probability rot_prob
    rot_prob: float = 0.6
    flip: bool = True
    shift: float = 0.10  # centre jitter as a fraction of the box (detector box noise)
    aspect_jitter: float = 0.10
    half_body_prob: float = 0.3
    color_prob: float = 0.8
    gray_prob: float = 0.05
    blur_prob: float = 0.2
    occlusion_prob: float = 0.4
    background_prob: float = 0.4  # paste the person onto another image's (or synthetic) background
    # folder of real-scene images (e.g. Debian opencv-doc's samples) used as backgrounds and occluders
    # instead of the training set's own frames with probability ``backgrounds_share``
    backgrounds: str = ""
    backgrounds_share: float = 0.7


def sample_region(
    rng: np.random.Generator,
    box_xyxy: np.ndarray,
    kps: np.ndarray,
    cfg: AugmentConfig,
    aspect: float,
    padding: float,
    skeleton: Skeleton = COCO17,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Random centre (2,), size (2,), rotation for one person (box jitter, scale, half body)."""
    box = np.asarray(box_xyxy, dtype=np.float64)
    vis = kps[:, 2] > 0
    if cfg.enabled and rng.random() < cfg.half_body_prob and vis.sum() > 6:
        part = skeleton.upper_body if rng.random() < 0.5 else skeleton.lower_body
        sel = vis & np.isin(np.arange(len(kps)), part)
        if sel.sum() >= 2:
            pts = kps[sel, :2]
            box = np.concatenate([pts.min(0), pts.max(0)])
            grow = (box[2:] - box[:2]) * 0.15
            box = np.concatenate([box[:2] - grow, box[2:] + grow])
    center, size = box_to_center_size(box[None], aspect_wh=aspect, padding=padding)
    center, size = center[0], size[0]
    rot = 0.0
    if cfg.enabled:
        center = center + rng.uniform(-cfg.shift, cfg.shift, 2) * size / padding
        s = rng.uniform(1 - cfg.scale, 1 + cfg.scale)
        a = rng.uniform(1 - cfg.aspect_jitter, 1 + cfg.aspect_jitter)
        size = size * s * np.array([a, 1.0 / a])
        if rng.random() < cfg.rot_prob:
            rot = float(rng.uniform(-cfg.rotation, cfg.rotation))
    return center, size, rot


def person_mask(
    shape_hw: tuple[int, int], kps: np.ndarray, thickness: float, skeleton: Skeleton = COCO17
) -> np.ndarray:
    """Rough soft silhouette (H, W) float32 from thick limbs and a head disc (no segmentation labels)."""
    mask = np.zeros(shape_hw, np.uint8)
    t = max(2, int(thickness))
    pts = kps[:, :2].astype(np.int32)
    vis = kps[:, 2] > 0
    for a, b in skeleton.limbs:
        if vis[a] and vis[b]:
            cv2.line(mask, tuple(pts[a]), tuple(pts[b]), 255, t)
    torso = [i for i in skeleton.torso if vis[i]]
    if len(torso) >= 3:
        cv2.fillConvexPoly(mask, pts[torso], 255)
    head = [i for i in skeleton.head if vis[i]]
    if head:
        c = pts[head].mean(0).astype(int)
        cv2.circle(mask, (int(c[0]), int(c[1])), int(t * 1.2), 255, -1)
    mask = cv2.dilate(mask, np.ones((3, 3), np.uint8), iterations=max(1, t // 6))
    return cv2.GaussianBlur(mask, (0, 0), max(1.0, t / 4)).astype(np.float32) / 255.0


def synthetic_background(rng: np.random.Generator, hw: tuple[int, int]) -> np.ndarray:
    """Random smooth colour field plus texture noise (stands in for unseen scenes)."""
    h, w = hw
    small = rng.integers(0, 256, (rng.integers(2, 8), rng.integers(2, 8), 3)).astype(np.uint8)
    bg = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    noise = rng.normal(0, rng.uniform(0, 25), (h, w, 3))
    return np.clip(bg + noise, 0, 255).astype(np.uint8)


def photometric(rng: np.random.Generator, img: np.ndarray, cfg: AugmentConfig) -> np.ndarray:
    """Colour jitter, grayscale and blur on a crop."""
    out = img
    if rng.random() < cfg.color_prob:
        hsv = cv2.cvtColor(out, cv2.COLOR_BGR2HSV).astype(np.int16)
        hsv[..., 0] = (hsv[..., 0] + rng.integers(-10, 11)) % 180
        hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.6, 1.4), 0, 255)
        out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)
        alpha, beta = rng.uniform(0.65, 1.35), rng.uniform(-35, 35)
        out = cv2.convertScaleAbs(out, alpha=alpha, beta=beta)
    if rng.random() < cfg.gray_prob:
        out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    if rng.random() < cfg.blur_prob:
        if rng.random() < 0.5:
            out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 2.0))
        else:  # motion blur
            k = int(rng.integers(3, 9))
            kern = np.zeros((k, k), np.float32)
            kern[k // 2] = 1.0 / k
            m = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
            out = cv2.filter2D(out, -1, cv2.warpAffine(kern, m, (k, k)))
    return out


def occlude(rng: np.random.Generator, img: np.ndarray, source: np.ndarray | None) -> np.ndarray:
    """Paste 1-2 random rectangles (flat colour or a patch of another image)."""
    h, w = img.shape[:2]
    out = img.copy()
    for _ in range(int(rng.integers(1, 3))):
        ow, oh = int(w * rng.uniform(0.1, 0.4)), int(h * rng.uniform(0.1, 0.3))
        x, y = int(rng.integers(0, w - ow)), int(rng.integers(0, h - oh))
        if source is not None and rng.random() < 0.6:
            sh, sw = source.shape[:2]
            sx, sy = int(rng.integers(0, max(1, sw - ow))), int(rng.integers(0, max(1, sh - oh)))
            patch = source[sy : sy + oh, sx : sx + ow]
            if patch.shape[:2] == (oh, ow):
                out[y : y + oh, x : x + ow] = patch
                continue
        out[y : y + oh, x : x + ow] = rng.integers(0, 256, 3)
    return out


def augment_sample(
    rng: np.random.Generator,
    image: np.ndarray,
    box_xyxy: np.ndarray,
    kps: np.ndarray,
    cfg: AugmentConfig,
    input_wh: tuple[int, int],
    padding: float,
    skeleton: Skeleton,
    other_image: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop one person with random geometry/photometry. Returns (crop, keypoints in crop px, matrix)."""
    w, h = input_wh
    center, size, rot = sample_region(rng, box_xyxy, kps, cfg, w / h, padding, skeleton)
    mat = affine_matrix(center, size, input_wh, rot)
    crop = cv2.warpAffine(image, mat, (w, h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    out_kps = kps.astype(np.float64).copy()
    out_kps[:, :2] = apply_affine(kps[:, :2], mat)
    out_kps[kps[:, 2] <= 0] = 0
    if not cfg.enabled:
        return crop, out_kps, mat
    if rng.random() < cfg.background_prob:
        m = person_mask((h, w), out_kps, 0.09 * h, skeleton)[..., None]
        if other_image is not None and rng.random() < 0.5:
            oh, ow = other_image.shape[:2]
            bw = max(8, int(ow * rng.uniform(0.3, 1.0)))
            bh = min(oh, max(8, int(bw * h / w)))
            x0, y0 = int(rng.integers(0, max(1, ow - bw))), int(rng.integers(0, max(1, oh - bh)))
            bg = cv2.resize(other_image[y0 : y0 + bh, x0 : x0 + bw], (w, h))
            if rng.random() < 0.5:
                bg = bg[:, ::-1]
        else:
            bg = synthetic_background(rng, (h, w))
        crop = (crop * m + bg * (1 - m)).astype(np.uint8)
    if cfg.flip and rng.random() < 0.5:
        crop = np.ascontiguousarray(crop[:, ::-1])
        out_kps = out_kps[skeleton.flip_index()]
        out_kps[:, 0] = np.where(out_kps[:, 2] > 0, w - 1 - out_kps[:, 0], 0)
        flip = np.array([[-1.0, 0.0, w - 1.0], [0.0, 1.0, 0.0]])
        mat = flip @ np.vstack([mat, [0, 0, 1]])
    crop = photometric(rng, crop, cfg)
    if rng.random() < cfg.occlusion_prob:
        crop = occlude(rng, crop, other_image)
    return crop, out_kps, mat
