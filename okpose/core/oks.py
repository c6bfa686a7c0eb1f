"""Object keypoint similarity, OKS-based pose NMS and box IoU."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from okpose.core.skeleton import COCO_SIGMAS

F64 = npt.NDArray[np.float64]


def box_intersection(a_xyxy: npt.ArrayLike, b_xyxy: npt.ArrayLike) -> F64:
    """Intersection areas (N, M) between boxes a (N, 4) and b (M, 4), xyxy."""
    a = np.asarray(a_xyxy, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b_xyxy, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    # np.maximum rather than np.clip: same result, a fraction of the call overhead on tiny arrays
    wh = np.maximum(rb - lt, 0.0)
    return np.asarray(wh[..., 0] * wh[..., 1], dtype=np.float64)


def box_iou(a_xyxy: npt.ArrayLike, b_xyxy: npt.ArrayLike) -> F64:
    """IoU matrix (N, M) between boxes a (N, 4) and b (M, 4), xyxy."""
    a = np.asarray(a_xyxy, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b_xyxy, dtype=np.float64).reshape(-1, 4)
    inter = box_intersection(a, b)
    sa = np.maximum(a[:, 2:] - a[:, :2], 0.0)
    sb = np.maximum(b[:, 2:] - b[:, :2], 0.0)
    union = (sa[:, 0] * sa[:, 1])[:, None] + (sb[:, 0] * sb[:, 1])[None, :] - inter
    return np.asarray(np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0), dtype=np.float64)


def oks(
    pose: npt.ArrayLike,
    others: npt.ArrayLike,
    area: float,
    sigmas: npt.ArrayLike = COCO_SIGMAS,
    visible: npt.ArrayLike | None = None,
) -> F64:
    """OKS (M,) of ``pose`` (K, 2+) taken as reference against ``others`` (M, K, 2+).

    ``area`` is the reference object's area in pixels² (COCO's s²); ``visible`` (K,) bool
    selects the reference keypoints that count (default: all). COCO formula:
    mean over counted k of exp(-d² / (2 s² (2σ_k)²)).
    """
    p = np.asarray(pose, dtype=np.float64)[..., :2]
    o = np.asarray(others, dtype=np.float64)[..., :2].reshape(-1, p.shape[0], 2)
    var = (2.0 * np.asarray(sigmas, dtype=np.float64)) ** 2
    vis = np.ones(p.shape[0], dtype=bool) if visible is None else np.asarray(visible, dtype=bool)
    if o.shape[0] == 0 or not vis.any():
        return np.zeros(o.shape[0])
    d2 = ((o - p[None]) ** 2).sum(axis=2)
    e = d2 / (2.0 * max(area, 1e-6) * var[None, :])
    return np.asarray(np.exp(-e)[:, vis].mean(axis=1), dtype=np.float64)


def oks_matrix(
    poses_a: npt.ArrayLike,
    poses_b: npt.ArrayLike,
    areas_a: npt.ArrayLike,
    sigmas: npt.ArrayLike = COCO_SIGMAS,
    min_score: float = 0.0,
) -> F64:
    """OKS (N, M) of each pose in a (N, K, 3) as reference against every pose in b (M, K, 3).

    Keypoints of ``a`` with score <= min_score do not count (a pose with none scores 0).
    """
    a = np.asarray(poses_a, dtype=np.float64)
    b = np.asarray(poses_b, dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    ar = np.maximum(np.asarray(areas_a, dtype=np.float64).reshape(-1), 1e-6)
    var = (2.0 * np.asarray(sigmas, dtype=np.float64)) ** 2
    d2 = ((a[:, None, :, :2] - b[None, :, :, :2]) ** 2).sum(axis=3)  # (N, M, K)
    e = np.exp(-d2 / (2.0 * ar[:, None, None] * var[None, None, :]))
    vis = (a[:, :, 2] > min_score)[:, None, :]
    count = vis.sum(axis=2)
    return np.asarray(np.where(count > 0, (e * vis).sum(axis=2) / np.maximum(count, 1), 0.0), dtype=np.float64)


def pose_nms(
    keypoints: npt.ArrayLike,
    scores: npt.ArrayLike,
    areas: npt.ArrayLike,
    threshold: float = 0.7,
    sigmas: npt.ArrayLike = COCO_SIGMAS,
) -> npt.NDArray[np.int64]:
    """Greedy OKS NMS. Returns kept indices (highest score first).

    keypoints (N, K, 3), scores (N,), areas (N,) in pixels².
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    sc = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(kp) == 0:
        return np.zeros(0, dtype=np.int64)
    sim = oks_matrix(kp, kp, areas, sigmas, min_score=-np.inf)
    order = np.argsort(-sc, kind="stable")
    suppressed = np.zeros(len(kp), dtype=bool)
    keep: list[int] = []
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        suppressed |= sim[i] > threshold
    return np.asarray(keep, dtype=np.int64)
