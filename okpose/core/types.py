"""Typed, frozen result objects with shape checks (the values crossing module boundaries)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


def _as(a: npt.ArrayLike, dtype: type, shape_tail: tuple[int, ...], name: str) -> npt.NDArray[np.generic]:
    arr: npt.NDArray[np.generic] = np.asarray(a, dtype=dtype)
    if arr.size == 0:
        arr = arr.reshape((0, *shape_tail))
    if arr.ndim != 1 + len(shape_tail) or tuple(arr.shape[1:]) != shape_tail:
        raise ValueError(f"{name} must have shape (N, {', '.join(map(str, shape_tail))}), got {arr.shape}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class Detections:
    """Person boxes (N, 4) xyxy in image pixels and their scores (N,)."""

    xyxy: F32
    scores: F32

    def __post_init__(self) -> None:
        object.__setattr__(self, "xyxy", _as(self.xyxy, np.float32, (4,), "xyxy"))
        object.__setattr__(self, "scores", _as(self.scores, np.float32, (), "scores"))
        if len(self.xyxy) != len(self.scores):
            raise ValueError(f"{len(self.xyxy)} boxes but {len(self.scores)} scores")

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))


@dataclass(frozen=True)
class Poses:
    """N persons: keypoints (N, K, 3) as x, y, score in image pixels; boxes (N, 4); scores (N,)."""

    keypoints: F32
    boxes: F32
    scores: F32

    def __post_init__(self) -> None:
        kp = np.asarray(self.keypoints, dtype=np.float32)
        if kp.ndim != 3:
            raise ValueError(f"keypoints must have shape (N, K, 3), got {kp.shape}")
        k = kp.shape[1]
        object.__setattr__(self, "keypoints", _as(kp, np.float32, (k, 3), "keypoints"))
        object.__setattr__(self, "boxes", _as(self.boxes, np.float32, (4,), "boxes"))
        object.__setattr__(self, "scores", _as(self.scores, np.float32, (), "scores"))
        if not len(self.keypoints) == len(self.boxes) == len(self.scores):
            raise ValueError(
                f"mismatched lengths: {len(self.keypoints)} poses, {len(self.boxes)} boxes, {len(self.scores)} scores"
            )

    def __len__(self) -> int:
        return len(self.keypoints)

    def subset(self, index: npt.ArrayLike) -> Poses:
        idx = np.asarray(index, dtype=np.int64)
        return Poses(self.keypoints[idx], self.boxes[idx], self.scores[idx])

    @classmethod
    def empty(cls, num_keypoints: int) -> Poses:
        return cls(
            np.zeros((0, num_keypoints, 3), np.float32),
            np.zeros((0, 4), np.float32),
            np.zeros((0,), np.float32),
        )


@dataclass(frozen=True)
class TrackedPoses:
    """Poses with a per-stream ``track_ids`` (N,) int64."""

    poses: Poses
    track_ids: npt.NDArray[np.int64]

    def __post_init__(self) -> None:
        ids = _as(self.track_ids, np.int64, (), "track_ids")
        if len(ids) != len(self.poses):
            raise ValueError(f"{len(ids)} track ids for {len(self.poses)} poses")
        object.__setattr__(self, "track_ids", ids)

    def __len__(self) -> int:
        return len(self.poses)
