"""The previous-pose input of a video-mode student (DKD-style, ``trainer.video``): the track's last pose,
mapped into the current crop and drawn as one Gaussian per joint at heatmap resolution.

One definition for training (ground truth with noise, or the model's own earlier prediction), the
service (the track's last pose) and the benchmark, so the three cannot drift apart. What a video model
expects is in its spec: ``spec.extra["video"]`` holds a JSON ``VideoPrior``; a model without it is a
per-frame student.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from okpose.core.geometry import apply_affine
from okpose.core.heatmaps import input_to_heatmap
from okpose.core.spec import ModelSpec

F32 = npt.NDArray[np.float32]
VIDEO_KEY = "video"


@dataclass(frozen=True)
class VideoPrior:
    """How the previous pose is drawn: Gaussian ``sigma`` in heatmap pixels, peak = the keypoint's score
    (clipped to [0, 1]); keypoints scored below ``threshold`` are left out. ``input`` names the ONNX input.
    ``max_age_s``: a pose older than this is not used (the person is treated as a new track)."""

    sigma: float = 2.0
    threshold: float = 0.2
    input: str = "prior"
    max_age_s: float = 0.5

    def to_extra(self) -> dict[str, str]:
        return {VIDEO_KEY: json.dumps(asdict(self), sort_keys=True)}

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> VideoPrior | None:
        """The model's prior description, or None for a per-frame model."""
        raw = spec.extra.get(VIDEO_KEY)
        if not raw:
            return None
        d = json.loads(raw)
        return cls(
            sigma=float(d["sigma"]),
            threshold=float(d["threshold"]),
            input=str(d["input"]),
            max_age_s=float(d.get("max_age_s", cls.max_age_s)),
        )


def render_prior(
    crop_xy: npt.ArrayLike, scores: npt.ArrayLike, heatmap_wh: tuple[int, int], stride: float, sigma: float
) -> F32:
    """Keypoints in input-crop pixels (N, K, 2) with scores (N, K) -> prior maps (N, K, h, w) in [0, 1].

    A keypoint with score <= 0 (or a non-finite position) draws nothing; an all-zero prior is the
    first-frame input (no previous pose)."""
    xy = np.asarray(crop_xy, dtype=np.float64)
    s = np.clip(np.nan_to_num(np.asarray(scores, dtype=np.float64)), 0.0, 1.0)
    n, k = s.shape
    w, h = heatmap_wh
    hm = input_to_heatmap(xy.reshape(n, k, 2), stride)
    ok = np.isfinite(hm).all(axis=2) & (s > 0)
    hm = np.where(ok[..., None], hm, 0.0)
    gx = np.exp(-((np.arange(w)[None, None, :] - hm[..., :1]) ** 2) / (2 * sigma**2))  # (N, K, w)
    gy = np.exp(-((np.arange(h)[None, None, :] - hm[..., 1:2]) ** 2) / (2 * sigma**2))  # (N, K, h)
    amp = np.where(ok, s, 0.0)
    return (amp[..., None, None] * gy[..., :, None] * gx[..., None, :]).astype(np.float32)


def prior_from_image(keypoints: npt.ArrayLike, image_to_crop: npt.ArrayLike, spec: ModelSpec, prior: VideoPrior) -> F32:
    """Previous poses in image pixels (N, K, 3; a row of NaN or zero scores = no previous pose) and the
    current crops' image->crop matrices (N, 2, 3) -> the model's prior input (N, K, h, w)."""
    kps = np.asarray(keypoints, dtype=np.float64).reshape(-1, spec.num_keypoints, 3)
    mats = np.asarray(image_to_crop, dtype=np.float64).reshape(-1, 2, 3)
    if len(kps) != len(mats):
        raise ValueError(f"{len(kps)} previous poses for {len(mats)} crops")
    crop_xy = (
        np.stack([apply_affine(p[:, :2], m) for p, m in zip(kps, mats, strict=True)]) if len(kps) else kps[..., :2]
    )
    scores = np.where(np.nan_to_num(kps[..., 2]) >= prior.threshold, kps[..., 2], 0.0)
    return render_prior(crop_xy, scores, spec.heatmap_wh, spec.heatmap_stride, prior.sigma)


def flip_prior(prior_maps: npt.ArrayLike, flip_perm: npt.ArrayLike) -> F32:
    """The prior of a mirrored crop (flip test): columns reversed and left/right joints swapped."""
    p = np.asarray(prior_maps, dtype=np.float32)
    return np.ascontiguousarray(p[:, np.asarray(flip_perm, dtype=np.int64), :, ::-1])
