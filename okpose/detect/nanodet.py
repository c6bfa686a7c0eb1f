"""NanoDet person detector (ONNX Runtime): resize (``input_shape``) -> one call -> GFL decode -> NMS.

Everything about pre- and post-processing (input size, mean/std, colour order, strides, bins,
which class is a person) is read from the model's own metadata (``okpose.core.spec.DetectorSpec``,
written by ``tools/convert_models.py``).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from okpose.core.runtime import ModelLoadError, open_session
from okpose.core.spec import DETECTOR_SPEC_KEY, DetectorSpec
from okpose.core.types import Detections

Image = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]


def input_shape(image_hw: tuple[int, int], size: int, divisor: int, square: bool) -> tuple[int, int]:
    """Network input (h, w) for a frame of ``image_hw``: the long side becomes ``size``, the short
    side the multiple of ``divisor`` nearest to its aspect-kept length (or ``size`` when ``square``).

    The frame is resized to exactly this shape: at most half a ``divisor`` of stretch on the short
    side (NanoDet trains with 0.8-1.2 stretch augmentation) instead of a black band. Measured on
    realpose-lab *train*: padding bands of 11-29 px lost up to 10 points of AP50 at 320.
    """
    h, w = image_hw
    if square:
        return size, size
    r = size / max(h, w)
    short = max(divisor, round(min(h, w) * r / divisor) * divisor)
    return (size, short) if h >= w else (short, size)


def anchor_grid(input_hw: tuple[int, int], strides: tuple[int, ...]) -> tuple[F32, F32]:
    """Cell centres (N, 2) as (x, y) in input pixels and each cell's stride (N,), level by level,
    rows before columns: the order of the network's concatenated outputs."""
    centres, per_cell = [], []
    for s in strides:
        gh, gw = input_hw[0] // s, input_hw[1] // s
        ys, xs = np.mgrid[0:gh, 0:gw]
        centres.append(np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32) * s + s / 2)
        per_cell.append(np.full(gh * gw, s, np.float32))
    return np.concatenate(centres), np.concatenate(per_cell)


def decode_distances(bins: F32, reg_max: int) -> F32:
    """(N, 4 * (reg_max + 1)) logits -> (N, 4) expected distance in stride units (left, top, right, bottom)."""
    logits = bins.reshape(len(bins), 4, reg_max + 1)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    return np.asarray(p @ np.arange(reg_max + 1, dtype=np.float32), np.float32)


def has_detector_spec(session: ort.InferenceSession) -> bool:
    return DETECTOR_SPEC_KEY in session.get_modelmeta().custom_metadata_map


def nms_xyxy(boxes: F32, scores: F32, iou: float) -> npt.NDArray[np.int64]:
    """Indices kept by greedy NMS, best first."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), 0.0, iou)
    return np.asarray(keep, dtype=np.int64).reshape(-1)


class NanoDetDetector:
    """COCO NanoDet restricted to the person class; boxes come back in original image pixels."""

    def __init__(
        self,
        path: str | Path,
        score: float,
        nms_iou: float = 0.6,
        input_size: int | None = None,
        providers: str = "auto",
        threads: int = 0,
        max_candidates: int = 300,
        session: ort.InferenceSession | None = None,
    ):
        """``session``: an already opened session of ``path`` (saves loading it twice)."""
        self.session = session or open_session(path, providers, threads)
        try:
            self.spec = DetectorSpec.from_metadata(self.session.get_modelmeta().custom_metadata_map)
        except (ValueError, TypeError) as e:
            raise ModelLoadError(f"{path}: not a NanoDet detector exported by tools/convert_models.py ({e})") from e
        size = input_size or self.spec.input_size
        if size % self.spec.size_divisor:
            raise ModelLoadError(f"detector input {size} must be a multiple of {self.spec.size_divisor}")
        self.size, self.score, self.nms_iou, self.max_candidates = size, score, nms_iou, max_candidates
        self.mean = np.asarray(self.spec.mean, np.float32)
        self.inv_std = 1.0 / np.asarray(self.spec.std, np.float32)
        self._grids: dict[tuple[int, int], tuple[F32, F32]] = {}
        self.name = f"nanodet:{Path(path).name}@{size} ({self.spec.precision})"
        self.providers: list[str] = list(self.session.get_providers())

    def preprocess(self, image_bgr: Image) -> tuple[npt.NDArray[np.generic], tuple[float, float]]:
        """The network input for ``image_bgr`` and the (x, y) scale from image to input pixels.

        ``uint8-nhwc`` models normalise inside the graph, so the frame is resized once and passed
        as is (no float copy of the frame in Python)."""
        spec = self.spec
        ph, pw = input_shape(image_bgr.shape[:2], self.size, spec.size_divisor, not spec.dynamic)
        small = cv2.resize(image_bgr, (pw, ph), interpolation=cv2.INTER_LINEAR)
        scale = (pw / image_bgr.shape[1], ph / image_bgr.shape[0])
        if spec.color == "rgb":
            small = small[:, :, ::-1]
        if spec.input_format == "uint8-nhwc":
            return np.ascontiguousarray(small[None]), scale
        x = (small.astype(np.float32) - self.mean) * self.inv_std
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None]), scale

    def _grid(self, input_hw: tuple[int, int]) -> tuple[F32, F32]:
        if input_hw not in self._grids:
            self._grids[input_hw] = anchor_grid(input_hw, self.spec.strides)
        return self._grids[input_hw]

    def postprocess(
        self,
        scores: F32,
        distances: F32,
        input_hw: tuple[int, int],
        scale_xy: tuple[float, float],
        image_wh: tuple[int, int],
        floor: float | None = None,
    ) -> Detections:
        """Raw outputs (N, C) and (N, 4*(reg_max+1)) -> person boxes above the score threshold (or ``floor``,
        where lower) after NMS."""
        person = scores[:, self.spec.person_class]
        sel = np.flatnonzero(person > (self.score if floor is None else min(floor, self.score)))
        if len(sel) == 0:
            return Detections.empty()
        if len(sel) > self.max_candidates:
            sel = sel[np.argpartition(-person[sel], self.max_candidates)[: self.max_candidates]]
        centres, strides = self._grid(input_hw)
        d = decode_distances(distances[sel], self.spec.reg_max) * strides[sel, None]
        c = centres[sel]
        sx, sy = scale_xy
        boxes = np.concatenate([c - d[:, :2], c + d[:, 2:]], axis=1) / np.array([sx, sy, sx, sy], np.float32)
        conf = person[sel].astype(np.float32)
        keep = nms_xyxy(boxes.astype(np.float32), conf, self.nms_iou)
        w, h = image_wh
        return Detections(boxes[keep].clip(0, [w, h, w, h]).astype(np.float32), conf[keep])

    def __call__(self, image_bgr: Image) -> Detections:
        return self.candidates(image_bgr, None)

    def candidates(self, image_bgr: Image, floor: float | None) -> Detections:
        """Persons scoring above ``floor`` (None: the detector's own ``score``), best first. NMS only lets a box
        suppress lower-scoring ones, so the boxes at or above ``score`` are exactly what ``__call__`` returns."""
        x, scale = self.preprocess(image_bgr)
        scores, distances = self.session.run(["scores", "distances"], {"image": x})
        h, w = image_bgr.shape[:2]
        input_hw = (x.shape[1], x.shape[2]) if self.spec.input_format == "uint8-nhwc" else (x.shape[2], x.shape[3])
        return self.postprocess(scores[0], distances[0], input_hw, scale, (w, h), floor)
