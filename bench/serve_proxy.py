"""The benchmark's detector plugin for the real service (``POSE_DETECTOR_FACTORY=bench.serve_proxy:proxy_detector``):
a real YOLO ONNX for its cost, the frame's GT boxes as its answer (untrained YOLO weights find nobody).

Environment: ``BENCH_PROXY_YOLO`` (the YOLO detect ONNX), ``BENCH_PROXY_PER_CLIP`` (frames per clip, as
``bench.frames.load_frames`` loads them). Started by ``bench.streams.start_server`` through ``python -m service``.
"""

from __future__ import annotations

import os

import numpy as np

from bench.frames import load_frames
from okpose.core.types import Detections
from okpose.detect.detectors import YoloOnnxDetector


def key(image: np.ndarray) -> bytes:
    return image[::17, ::13].tobytes()


class FrameLookupProxy:
    def __init__(self, yolo: YoloOnnxDetector, table: dict[bytes, np.ndarray]):
        self.yolo, self.table, self.name = yolo, table, f"{yolo.name} (timing) + GT boxes"
        self.providers = yolo.providers

    def __call__(self, image: np.ndarray) -> Detections:
        out, r = self.yolo.infer(image)  # real cost: letterbox, inference, NMS of the 20 best candidates
        self.yolo.postprocess(out, r, (image.shape[1], image.shape[0]), max_candidates=20)
        boxes = self.table.get(key(image), np.zeros((0, 4), np.float32))
        return Detections(boxes, np.ones(len(boxes), np.float32))


def proxy_detector() -> FrameLookupProxy:
    import cv2

    table = {}
    for f in load_frames(int(os.environ["BENCH_PROXY_PER_CLIP"])):
        table[key(cv2.imdecode(np.frombuffer(f.jpeg, np.uint8), cv2.IMREAD_COLOR))] = f.gt_boxes
    return FrameLookupProxy(YoloOnnxDetector(os.environ["BENCH_PROXY_YOLO"], 320, 0.35, "auto", 2), table)
