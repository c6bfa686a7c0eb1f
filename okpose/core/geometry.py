"""Geometry in image pixels: boxes, center/scale, affine crops and their inverses.

Conventions
- boxes are ``xyxy`` float arrays in image pixels;
- a crop region is ``center`` (x, y) and ``size_wh`` (w, h) in image pixels (no hidden
  ``scale * 200`` unit);
- ``affine_matrix`` maps image pixels to crop pixels (2x3); points map with ``apply_affine``.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


def box_to_center_size(
    boxes_xyxy: npt.ArrayLike, aspect_wh: float | None = None, padding: float = 1.0
) -> tuple[F64, F64]:
    """Boxes (N, 4) xyxy -> centers (N, 2) and sizes (N, 2) as (w, h).

    With ``aspect_wh`` the shorter side is grown so that w / h == aspect_wh (nothing is cut off);
    ``padding`` then multiplies both sides.
    """
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    centers = np.stack([(b[:, 0] + b[:, 2]) / 2.0, (b[:, 1] + b[:, 3]) / 2.0], axis=1)
    sizes = np.stack([b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)
    if aspect_wh is not None:
        w, h = sizes[:, 0].copy(), sizes[:, 1].copy()
        wider = w > aspect_wh * h
        h = np.where(wider, w / aspect_wh, h)
        w = np.where(wider, w, h * aspect_wh)
        sizes = np.stack([w, h], axis=1)
    return centers, sizes * padding


def center_size_to_box(centers: npt.ArrayLike, sizes_wh: npt.ArrayLike) -> F64:
    """Centers (N, 2) and sizes (N, 2) -> boxes (N, 4) xyxy."""
    c = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    s = np.asarray(sizes_wh, dtype=np.float64).reshape(-1, 2)
    return np.concatenate([c - s / 2.0, c + s / 2.0], axis=1)


def affine_matrix(
    center: npt.ArrayLike, size_wh: npt.ArrayLike, out_wh: tuple[int, int], rotation_deg: float = 0.0
) -> F64:
    """2x3 matrix mapping image pixels to crop pixels.

    The region of ``size_wh`` around ``center`` (rotated by ``rotation_deg``, counter-clockwise)
    fills the ``out_wh`` crop; ``center`` lands on the crop centre.
    """
    cx, cy = np.asarray(center, dtype=np.float64).reshape(2)
    sw, sh = np.asarray(size_wh, dtype=np.float64).reshape(2)
    ow, oh = out_wh
    sx, sy = ow / sw, oh / sh
    t = np.deg2rad(rotation_deg)
    cos, sin = np.cos(t), np.sin(t)
    # translate center to origin -> rotate -> scale -> translate to crop centre
    rot = np.array([[cos, sin], [-sin, cos]])
    lin = np.diag([sx, sy]) @ rot
    offset = np.array([ow / 2.0, oh / 2.0]) - lin @ np.array([cx, cy])
    return np.concatenate([lin, offset[:, None]], axis=1)


def invert_affine(matrix: npt.ArrayLike) -> F64:
    """Inverse of a 2x3 affine matrix."""
    m = np.asarray(matrix, dtype=np.float64)
    lin_inv = np.linalg.inv(m[:, :2])
    return np.concatenate([lin_inv, (-lin_inv @ m[:, 2])[:, None]], axis=1)


def apply_affine(points: npt.ArrayLike, matrix: npt.ArrayLike) -> F64:
    """Points (..., 2) mapped by a 2x3 matrix (or matrices (N, 2, 3) with points (N, K, 2))."""
    p = np.asarray(points, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim == 2:
        return np.asarray(p @ m[:, :2].T + m[:, 2], dtype=np.float64)
    return np.asarray(np.einsum("nkj,nij->nki", p, m[:, :, :2]) + m[:, None, :, 2], dtype=np.float64)


def crop_batch(
    image: npt.NDArray[np.uint8],
    centers: npt.ArrayLike,
    sizes_wh: npt.ArrayLike,
    out_wh: tuple[int, int],
) -> tuple[npt.NDArray[np.uint8], F64]:
    """Crop N regions of one image into one (N, H, W, C) array.

    Returns the crops and the (N, 2, 3) image->crop matrices; regions leaving the frame are
    zero-padded.
    """
    c = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    s = np.asarray(sizes_wh, dtype=np.float64).reshape(-1, 2)
    ow, oh = out_wh
    channels = 1 if image.ndim == 2 else image.shape[2]
    crops = np.zeros((len(c), oh, ow, channels), dtype=np.uint8)
    mats = np.zeros((len(c), 2, 3), dtype=np.float64)
    for i in range(len(c)):
        mats[i] = affine_matrix(c[i], s[i], out_wh)
        out = cv2.warpAffine(image, mats[i], (ow, oh), flags=cv2.INTER_LINEAR, borderValue=0)
        crops[i] = out.reshape(oh, ow, channels)
    return crops, mats


def clip_boxes(boxes_xyxy: npt.ArrayLike, image_wh: tuple[int, int]) -> F64:
    """Clip boxes (N, 4) to the image; boxes fully outside collapse to zero area."""
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4).copy()
    w, h = image_wh
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, w)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, h)
    return b


def keypoints_to_box(keypoints: npt.ArrayLike, min_score: float = 0.0) -> F64:
    """Tight boxes (N, 4) around keypoints (N, K, 3) whose score > min_score (NaN if none)."""
    k = np.asarray(keypoints, dtype=np.float64).reshape(-1, np.shape(keypoints)[-2], 3)
    vis = k[..., 2] > min_score
    x = np.where(vis, k[..., 0], np.nan)
    y = np.where(vis, k[..., 1], np.nan)
    out = np.full((len(k), 4), np.nan)
    has = vis.any(axis=1)
    if has.any():
        out[has] = np.stack(
            [np.nanmin(x[has], 1), np.nanmin(y[has], 1), np.nanmax(x[has], 1), np.nanmax(y[has], 1)], axis=1
        )
    return out
