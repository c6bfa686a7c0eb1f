"""Top-down pose estimation with the student ONNX: all person crops of a frame in one batched call."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from posecore.geometry import box_to_center_size, center_size_to_box
from posecore.heatmaps import merge_flip
from posecore.skeleton import flip_index
from posecore.spec import ModelSpec
from posecore.topdown import heatmaps_to_image, normalize_crops, prepare_crops
from posecore.types import Poses
from service.runtime import ModelLoadError, open_session


@dataclass(frozen=True)
class PoseTimings:
    crop_ms: float
    pose_ms: float
    decode_ms: float


class PoseEstimator:
    """Reads input size, mean/std and keypoint schema from the model's own metadata."""

    def __init__(self, path: str | Path, providers: str = "auto", threads: int = 0, flip_test: bool = False):
        self.session = open_session(path, providers, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        try:
            self.spec = ModelSpec.from_metadata(meta)
        except (ValueError, KeyError) as e:
            raise ModelLoadError(f"{path}: {e}") from e
        self.input_name = self.session.get_inputs()[0].name
        self.flip_test = flip_test
        self.flip_perm = flip_index(self.spec.num_keypoints, self.spec.flip_pairs)

    def __call__(self, image_bgr: npt.NDArray[np.uint8], boxes_xyxy: npt.ArrayLike) -> tuple[Poses, PoseTimings]:
        """Boxes (N, 4) -> Poses with keypoints in image pixels; box scores are set by the caller."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
        k = self.spec.num_keypoints
        if len(boxes) == 0:
            return Poses.empty(k), PoseTimings(0.0, 0.0, 0.0)
        t0 = time.perf_counter()
        crops, mats = prepare_crops(image_bgr, boxes, self.spec)
        x = normalize_crops(crops, self.spec)
        if self.flip_test:
            x = np.concatenate([x, np.ascontiguousarray(x[..., ::-1])])
        t1 = time.perf_counter()
        heatmaps = self.session.run(None, {self.input_name: x})[0]
        t2 = time.perf_counter()
        if self.flip_test:
            n = len(boxes)
            heatmaps = merge_flip(heatmaps[:n], heatmaps[n:], self.flip_perm)
        kps = heatmaps_to_image(heatmaps, mats, self.spec)
        t3 = time.perf_counter()
        # the crop region (aspect-fixed, padded) is the box the pose was estimated in
        w, h = self.spec.input_wh
        c, s = box_to_center_size(boxes, aspect_wh=w / h)
        crop_boxes = center_size_to_box(c, s).astype(np.float32)
        scores = np.zeros(len(boxes), np.float32)
        timings = PoseTimings((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)
        return Poses(kps, crop_boxes, scores), timings
