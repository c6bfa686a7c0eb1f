"""Baselines measured next to our pipeline: a box-IoU greedy tracker (what rtmlib and simple
trackers do), used by the tracking evaluation and the benchmark."""

from __future__ import annotations

import numpy as np

from okpose.core.oks import box_iou
from okpose.core.types import Poses, TrackedPoses


class IoUTracker:
    """Greedy box-IoU matching to the last box of each track (no motion, no pose)."""

    def __init__(self, iou_threshold: float = 0.3, max_age: int = 30):
        self.iou_threshold, self.max_age = iou_threshold, max_age
        self.reset()

    def reset(self) -> None:
        self.boxes: dict[int, np.ndarray] = {}
        self.last: dict[int, int] = {}
        self._next = 1
        self._frame = -1

    def match(self, iou: np.ndarray) -> list[tuple[int, int]]:
        """(track row, pose column) pairs: greedy, best IoU first, at least ``iou_threshold``."""
        pairs, used_t, used_p = [], set(), set()
        for flat in np.argsort(-iou, axis=None):
            i, j = divmod(int(flat), iou.shape[1])
            if iou[i, j] < self.iou_threshold:
                break
            if i in used_t or j in used_p:
                continue
            used_t.add(i)
            used_p.add(j)
            pairs.append((i, j))
        return pairs

    def update(self, poses: Poses, frame: int | None = None) -> TrackedPoses:
        frame = self._frame + 1 if frame is None else frame
        self._frame = frame
        ids = np.zeros(len(poses), np.int64)
        tids = list(self.boxes)
        if tids and len(poses):
            for i, j in self.match(box_iou(np.stack([self.boxes[t] for t in tids]), poses.boxes)):
                ids[j] = tids[i]
        for j in range(len(poses)):
            if ids[j] == 0:
                ids[j] = self._next
                self._next += 1
            self.boxes[int(ids[j])] = poses.boxes[j].astype(np.float64)
            self.last[int(ids[j])] = frame
        for t in [t for t, f in self.last.items() if frame - f > self.max_age]:
            del self.boxes[t], self.last[t]
        return TrackedPoses(poses, ids)


class HungarianIoUTracker(IoUTracker):
    """Optimal (Hungarian) box-IoU assignment to the last box of each track, as SORT does without
    its Kalman filter: the stronger box-only baseline."""

    def match(self, iou: np.ndarray) -> list[tuple[int, int]]:
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(-iou)
        return [(int(i), int(j)) for i, j in zip(rows, cols, strict=True) if iou[i, j] >= self.iou_threshold]
