"""A cheap appearance cue for re-identification after long gaps: a hue-saturation histogram of the
torso (the quadrilateral of shoulders and hips, from the pose itself), compared by histogram
intersection. ~20 µs per person on a 2-core VM; colour of clothing is what tells people apart
once their boxes and poses no longer overlap their last sighting."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
BINS = (12, 4)  # hue, saturation
SAMPLES = 256  # torso pixels sampled per person


def torso_histograms(
    image_bgr: npt.NDArray[np.uint8],
    keypoints: npt.ArrayLike,
    torso: tuple[int, ...],
    thr: float,
    scale_xy: tuple[float, float] = (1.0, 1.0),
) -> F32:
    """(N, H*S) L1-normalised histograms of each person's torso box in ``image_bgr`` (rows of zeros
    where fewer than 3 torso keypoints are confident). Keypoints are in image pixels; ``scale_xy`` maps
    them to ``image_bgr`` pixels (reduced decodes)."""
    kps = np.asarray(keypoints, np.float64).reshape(-1, np.asarray(keypoints).shape[-2], 3)
    out = np.zeros((len(kps), BINS[0] * BINS[1]), np.float32)
    h, w = image_bgr.shape[:2]
    # every person's torso box at once (in image_bgr pixels), then one small crop per person
    pts = kps[:, list(torso)]
    ok = pts[..., 2] > thr
    xy = pts[..., :2] / np.asarray(scale_xy)
    usable = ok.sum(axis=1) >= 3
    lo = np.maximum(np.where(ok[..., None], xy, 1e9).min(axis=1), 0).astype(np.int64)
    hi = np.minimum(np.where(ok[..., None], xy, -1e9).max(axis=1).astype(np.int64) + 1, [w, h])
    usable &= ((hi - lo) >= 4).all(axis=1)
    for i in np.flatnonzero(usable).tolist():
        (x1, y1), (x2, y2) = lo[i].tolist(), hi[i].tolist()
        step = max(1, round(((x2 - x1) * (y2 - y1) / SAMPLES) ** 0.5))  # ~SAMPLES pixels are plenty
        hsv = cv2.cvtColor(np.ascontiguousarray(image_bgr[y1:y2:step, x1:x2:step]), cv2.COLOR_BGR2HSV)
        hist = cv2.calcHist([hsv], [0, 1], None, list(BINS), [0, 180, 0, 256]).reshape(-1)
        out[i] = hist / max(float(hist.sum()), 1.0)
    return out


def similarity(a: F32, b: F32) -> npt.NDArray[np.float64]:
    """Histogram intersection (T, P) in [0, 1]; NaN where either histogram is missing."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    inter = np.minimum(a[:, None, :], b[None, :, :]).sum(-1).astype(np.float64)
    missing = (a.sum(1) == 0)[:, None] | (b.sum(1) == 0)[None, :]
    return np.where(missing, np.nan, inter)
