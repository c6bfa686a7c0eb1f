"""Heatmap encode (training targets) and decode (evaluation and serving share this code).

Coordinate convention: heatmap pixel ``j`` covers input pixels ``[j*s, (j+1)*s)``, so with pixel
centres ``x_hm = (x_in + 0.5) / s - 0.5``. Under this convention mirroring the input image is
exactly reversing the heatmap columns, which makes flip-test merging shift-free.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


def input_to_heatmap(xy: npt.ArrayLike, stride: float) -> F64:
    """Input-crop pixels -> heatmap pixels."""
    return (np.asarray(xy, dtype=np.float64) + 0.5) / stride - 0.5


def heatmap_to_input(xy: npt.ArrayLike, stride: float) -> F64:
    """Heatmap pixels -> input-crop pixels."""
    return (np.asarray(xy, dtype=np.float64) + 0.5) * stride - 0.5


def encode_gaussian(
    keypoints: npt.ArrayLike, heatmap_wh: tuple[int, int], stride: float, sigma: float = 2.0
) -> tuple[F32, F32]:
    """Gaussian targets for one person.

    keypoints: (K, 3) x, y in input-crop pixels and visibility (>0 labelled).
    Returns heatmaps (K, H, W) with peak 1 and weights (K,): 1 for labelled keypoints whose
    Gaussian touches the heatmap, 0 otherwise (unlabelled joints do not contribute to the loss).
    """
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 3)
    w, h = heatmap_wh
    xs = np.arange(w, dtype=np.float64)
    ys = np.arange(h, dtype=np.float64)
    hm_xy = input_to_heatmap(kp[:, :2], stride)
    radius = 3.0 * sigma
    inside = (
        (hm_xy[:, 0] >= -radius)
        & (hm_xy[:, 0] <= w - 1 + radius)
        & (hm_xy[:, 1] >= -radius)
        & (hm_xy[:, 1] <= h - 1 + radius)
    )
    weights = ((kp[:, 2] > 0) & inside).astype(np.float32)
    gx = np.exp(-((xs[None, :] - hm_xy[:, :1]) ** 2) / (2 * sigma**2))  # (K, W)
    gy = np.exp(-((ys[None, :] - hm_xy[:, 1:2]) ** 2) / (2 * sigma**2))  # (K, H)
    heatmaps = (gy[:, :, None] * gx[:, None, :]).astype(np.float32)
    heatmaps *= weights[:, None, None]
    return heatmaps, weights


def _argmax_2d(heatmaps: F32) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], F32]:
    m, h, w = heatmaps.shape
    flat = heatmaps.reshape(m, h * w)
    if m == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.float32)
    idx = flat.argmax(axis=1)
    return idx % w, idx // w, flat[np.arange(m), idx]


def decode(heatmaps: npt.ArrayLike, refine: str = "dark", dark_kernel: int = 11) -> tuple[F64, F32]:
    """Heatmaps (N, K, H, W) -> coordinates (N, K, 2) in heatmap pixels and scores (N, K).

    refine: ``"dark"`` (Taylor expansion of the log of the blurred heatmap, Zhang et al. 2020),
    ``"quarter"`` (0.25 px towards the higher neighbour) or ``"none"``.
    """
    hm = np.asarray(heatmaps, dtype=np.float32)
    if hm.ndim != 4:
        raise ValueError(f"heatmaps must be (N, K, H, W), got shape {hm.shape}")
    n, k, h, w = hm.shape
    flat = hm.reshape(n * k, h, w)
    xi, yi, scores = _argmax_2d(flat)
    coords = np.stack([xi, yi], axis=1).astype(np.float64)
    if n * k == 0 or refine == "none":
        return coords.reshape(n, k, 2), scores.reshape(n, k)
    rows = np.arange(n * k)
    if refine == "quarter":
        xl, xr = np.clip(xi - 1, 0, w - 1), np.clip(xi + 1, 0, w - 1)
        yu, yd = np.clip(yi - 1, 0, h - 1), np.clip(yi + 1, 0, h - 1)
        dx = flat[rows, yi, xr] - flat[rows, yi, xl]
        dy = flat[rows, yd, xi] - flat[rows, yu, xi]
        coords[:, 0] += 0.25 * np.sign(dx)
        coords[:, 1] += 0.25 * np.sign(dy)
    elif refine == "dark":
        coords += _dark_offsets(flat, xi, yi, dark_kernel)
    else:
        raise ValueError(f"unknown refine mode {refine!r}")
    return coords.reshape(n, k, 2), scores.reshape(n, k)


def _dark_offsets(flat: F32, xi: npt.NDArray[np.int64], yi: npt.NDArray[np.int64], kernel: int) -> F64:
    """Sub-pixel offsets -H^-1 g of the log of the blurred heatmap at the integer maxima."""
    m, h, w = flat.shape
    # one blur call over all maps stacked as channels (OpenCV handles up to 512 channels per call)
    stack = np.ascontiguousarray(flat.transpose(1, 2, 0))
    chunks = [cv2.GaussianBlur(stack[..., i : i + 512], (kernel, kernel), 0) for i in range(0, m, 512)]
    blurred = np.concatenate([c.reshape(h, w, -1) for c in chunks], axis=2).transpose(2, 0, 1)
    # keep each map's original peak height so the log surface has the same scale
    peak, bmax = flat.reshape(m, -1).max(1), blurred.reshape(m, -1).max(1)
    blurred = blurred * np.where(bmax > 0, peak / np.where(bmax > 0, bmax, 1.0), 1.0)[:, None, None]
    logm = np.log(np.maximum(blurred, 1e-10)).astype(np.float64)
    p = np.pad(logm, ((0, 0), (1, 1), (1, 1)), mode="edge")
    r = np.arange(m)
    x, y = xi + 1, yi + 1
    c = p[r, y, x]
    dx = 0.5 * (p[r, y, x + 1] - p[r, y, x - 1])
    dy = 0.5 * (p[r, y + 1, x] - p[r, y - 1, x])
    dxx = p[r, y, x + 1] - 2 * c + p[r, y, x - 1]
    dyy = p[r, y + 1, x] - 2 * c + p[r, y - 1, x]
    dxy = 0.25 * (p[r, y + 1, x + 1] - p[r, y + 1, x - 1] - p[r, y - 1, x + 1] + p[r, y - 1, x - 1])
    det = dxx * dyy - dxy**2
    ok = (det > 1e-12) & (dxx < 0) & (dyy < 0)
    safe = np.where(ok, det, 1.0)
    ox = -(dyy * dx - dxy * dy) / safe
    oy = -(dxx * dy - dxy * dx) / safe
    off = np.stack([np.where(ok, ox, 0.0), np.where(ok, oy, 0.0)], axis=1)
    # a Taylor step beyond one pixel means the surface is not locally quadratic: do not trust it
    return np.asarray(np.clip(off, -1.0, 1.0), dtype=np.float64)


def flip_heatmaps(heatmaps: npt.ArrayLike, flip_perm: npt.ArrayLike) -> F32:
    """Heatmaps predicted on a mirrored input -> heatmaps of the original input.

    Reverses columns and swaps left/right channels; (N, K, H, W) in and out.
    """
    hm = np.asarray(heatmaps, dtype=np.float32)
    perm = np.asarray(flip_perm, dtype=np.int64)
    return np.ascontiguousarray(hm[:, perm, :, ::-1])


def merge_flip(heatmaps: npt.ArrayLike, heatmaps_flipped: npt.ArrayLike, flip_perm: npt.ArrayLike) -> F32:
    """Average of normal and un-mirrored flipped heatmaps (flip test)."""
    return (np.asarray(heatmaps, dtype=np.float32) + flip_heatmaps(heatmaps_flipped, flip_perm)) * np.float32(0.5)
