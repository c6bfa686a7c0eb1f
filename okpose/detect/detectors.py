"""Person detectors behind one interface: NanoDet ONNX (the shipped default, ``okpose.detect.nanodet``),
a user's YOLO ONNX export, Ultralytics in-process (optional) and OpenCV's HOG people detector
(last resort when no model file is present)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from okpose.core.runtime import ModelLoadError, open_session
from okpose.core.types import Detections
from okpose.detect.nanodet import NanoDetDetector, has_detector_spec, nms_xyxy

log = logging.getLogger("okpose.detect.detectors")
Image = npt.NDArray[np.uint8]


class Detector(Protocol):
    name: str
    providers: list[str]  # where it runs (ONNX Runtime providers; "cpu"/"cuda" for Ultralytics)

    def __call__(self, image_bgr: Image) -> Detections: ...


@runtime_checkable
class CandidateDetector(Detector, Protocol):
    """A detector that can also return the persons it scores below its own threshold ``score`` (down to
    ``floor``): what a stream's second association (``okpose.pipeline``, ByteTrack's) matches to live tracks.
    Detectors without ``candidates`` (HOG, Ultralytics, a user's) simply get no second association."""

    score: float

    def candidates(self, image_bgr: Image, floor: float | None) -> Detections: ...


DetectorKind = Literal["auto", "nanodet", "yolo-onnx", "ultralytics", "hog"]


@dataclass(frozen=True)
class DetectorConfig:
    """What the detector needs from the settings (``POSE_DETECTOR*``, providers, threads)."""

    kind: DetectorKind = "auto"
    model: str = ""
    input_size: int | None = None
    score: float = 0.3
    nms_iou: float = 0.6
    hog_max_side: int = 480
    providers: str = "auto"
    threads: int = 0

    @classmethod
    def from_settings(cls, s: Any) -> DetectorConfig:
        return cls(
            s.detector,
            s.detector_model,
            s.detector_input,
            s.detector_score,
            s.detector_nms_iou,
            s.hog_max_side,
            s.providers,
            s.threads,
        )


class YoloOnnxDetector:
    """Ultralytics YOLO (v8/11) exported to ONNX: output (1, 4 + classes, anchors); class 0 = person."""

    def __init__(
        self,
        path: str | Path,
        input_size: int,
        score: float,
        providers: str,
        threads: int,
        session: ort.InferenceSession | None = None,
    ):
        self.session = session or open_session(path, providers, threads)
        inp = self.session.get_inputs()[0]
        shape = inp.shape
        self.size = shape[2] if isinstance(shape[2], int) else input_size
        self.input_name, self.score, self.iou = inp.name, score, 0.5
        self.name = f"yolo-onnx:{Path(path).name}@{self.size}"
        self.providers: list[str] = list(self.session.get_providers())

    def infer(self, image_bgr: Image) -> tuple[npt.NDArray[np.float32], float]:
        """Letterbox + ONNX Runtime: raw output (4 + C, anchors) and the resize ratio."""
        h, w = image_bgr.shape[:2]
        r = self.size / max(h, w)
        nh, nw = round(h * r), round(w * r)
        canvas = np.full((self.size, self.size, 3), 114, np.uint8)
        canvas[:nh, :nw] = cv2.resize(image_bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
        x = canvas[None, :, :, ::-1].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        out: npt.NDArray[np.float32] = self.session.run(None, {self.input_name: np.ascontiguousarray(x)})[0][0]
        return out, r

    def postprocess(
        self,
        out: npt.NDArray[np.float32],
        r: float,
        image_wh: tuple[int, int],
        max_candidates: int = 300,
        floor: float | None = None,
    ) -> Detections:
        """Person scores above the threshold (or ``floor``, where lower; at most ``max_candidates``), NMS, back
        to image pixels."""
        w, h = image_wh
        person = out[4]
        sel = np.flatnonzero(person > (self.score if floor is None else min(floor, self.score)))
        if len(sel) == 0:
            return Detections.empty()
        if len(sel) > max_candidates:
            sel = sel[np.argpartition(-person[sel], max_candidates)[:max_candidates]]
        cx, cy, bw, bh = out[:4, sel]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1) / r
        scores = person[sel].astype(np.float32)
        keep = nms_xyxy(boxes.astype(np.float32), scores, self.iou)
        boxes = boxes[keep].clip(0, [w, h, w, h])
        return Detections(boxes.astype(np.float32), scores[keep])

    def __call__(self, image_bgr: Image) -> Detections:
        return self.candidates(image_bgr, None)

    def candidates(self, image_bgr: Image, floor: float | None) -> Detections:
        """Persons scoring above ``floor`` (None: ``score``); see ``NanoDetDetector.candidates``."""
        out, r = self.infer(image_bgr)
        return self.postprocess(out, r, (image_bgr.shape[1], image_bgr.shape[0]), floor=floor)


class UltralyticsDetector:
    """Ultralytics in-process (``detect`` extra). Never downloads: the weights path must exist.

    An Ultralytics model is not safe to share between threads (its predictor keeps per-call state), so
    each worker thread gets its own, loaded on its first frame.
    """

    def __init__(self, weights: str, score: float, load: Any = None):
        if not Path(weights).is_file():
            raise ModelLoadError(f"Ultralytics weights not found: {weights}")
        if load is None:
            from ultralytics import YOLO

            load = YOLO
        self.load, self.weights, self.score = load, weights, score
        self._local = threading.local()
        self.models: list[Any] = []  # every thread's model (for inspection and device reporting)
        self._lock = threading.Lock()
        first = self.model  # load once now: a broken file fails at startup, not on the first frame
        self.name = f"ultralytics:{Path(weights).name}"
        self.providers = [str(getattr(first, "device", "cpu"))]

    @property
    def model(self) -> Any:
        """This thread's model."""
        m = getattr(self._local, "model", None)
        if m is None:
            m = self._local.model = self.load(self.weights)
            with self._lock:
                self.models.append(m)
        return m

    def __call__(self, image_bgr: Image) -> Detections:
        res = self.model.predict(image_bgr, classes=[0], conf=self.score, verbose=False)[0]
        b = res.boxes
        return Detections(b.xyxy.cpu().numpy().astype(np.float32), b.conf.cpu().numpy().astype(np.float32))


class HogDetector:
    """OpenCV's built-in HOG + linear SVM people detector: no weights to download.

    Slow and upright-only, so it runs on a downscaled frame; its 64x128 window has a margin
    around the person, which ``shrink`` removes so the pose crop matches a detector-tight box.
    """

    name = "hog (offline fallback)"
    providers = ["opencv-cpu"]

    def __init__(self, score: float = 0.3, max_side: int = 480, shrink: tuple[float, float] = (0.75, 0.9)):
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())  # type: ignore[attr-defined]
        self.score, self.max_side, self.shrink = score, max_side, shrink

    def __call__(self, image_bgr: Image) -> Detections:
        h, w = image_bgr.shape[:2]
        r = min(1.0, self.max_side / max(h, w))
        small = cv2.resize(image_bgr, (round(w * r), round(h * r))) if r < 1 else image_bgr
        if min(small.shape[:2]) < 128:
            return Detections.empty()
        rects, weights = self.hog.detectMultiScale(small, winStride=(8, 8), padding=(8, 8), scale=1.05)
        if len(rects) == 0:
            return Detections.empty()
        rects = np.asarray(rects, np.float32) / r
        # SVM margins (~0..3) squashed to (0, 1) so thresholds read like probabilities
        scores = (1.0 / (1.0 + np.exp(-2.0 * np.asarray(weights, np.float32).reshape(-1)))).astype(np.float32)
        cx, cy = rects[:, 0] + rects[:, 2] / 2, rects[:, 1] + rects[:, 3] / 2
        bw, bh = rects[:, 2] * self.shrink[0], rects[:, 3] * self.shrink[1]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        sel = scores >= self.score
        boxes, scores = boxes[sel], scores[sel]
        keep = nms_xyxy(boxes, scores, 0.4)
        return Detections(boxes[keep].clip(0, [w, h, w, h]), scores[keep])


def build_detector(s: DetectorConfig) -> Detector:
    """The configured backend. ``auto`` asks the file what it is: an ONNX with a NanoDet spec ->
    NanoDet, any other ONNX -> YOLO export, ``.pt`` -> Ultralytics; HOG only if the file is missing."""
    path, kind = s.model, s.kind
    session = None
    if kind == "auto" and Path(path).is_file() and path.endswith(".onnx"):
        session = open_session(path, s.providers, s.threads)
        kind = "nanodet" if has_detector_spec(session) else "yolo-onnx"
    elif kind == "auto" and path.endswith(".pt"):
        kind = "ultralytics"
    if kind == "nanodet":
        return NanoDetDetector(path, s.score, s.nms_iou, s.input_size, s.providers, s.threads, session=session)
    if kind == "yolo-onnx":
        return YoloOnnxDetector(path, s.input_size or 320, s.score, s.providers, s.threads, session)
    if kind == "ultralytics":
        try:
            return UltralyticsDetector(path, s.score)
        except (ImportError, ModelLoadError) as e:
            if s.kind == "ultralytics":
                raise ModelLoadError(f"Ultralytics detector unavailable: {e}") from e
            log.error("Ultralytics detector unavailable (%s): falling back to HOG, which misses most people", e)
    elif kind == "auto":
        log.error(
            "detector model %s not found: falling back to OpenCV HOG, which misses seated, partly visible "
            "and small people (restore models/nanodet-coco-int8.onnx or set POSE_DETECTOR_MODEL)",
            path,
        )
    return HogDetector(score=min(s.score, 0.5), max_side=s.hog_max_side)
