"""The real service (uvicorn, websocket, pipeline) for the benchmark, with the detector swapped for
``ProxyDetector`` when YOLO assets exist: YOLO's real cost, the frame's GT boxes.

python -m bench.serve_proxy DETECTOR(default|proxy) YOLO_DETECT_ONNX PER_CLIP (other settings: POSE_* environment,
as for ``python -m service``; started by ``service.live.ServiceProcess``)
"""

from __future__ import annotations

import sys

import numpy as np

from bench.frames import load_frames
from okpose.core.types import Detections
from okpose.detect.detectors import YoloOnnxDetector
from service.app import create_app
from service.engine import Engine
from service.server import GracefulServer, uvicorn_config
from service.settings import Settings


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


def main() -> None:
    import cv2

    mode, yolo_path, per_clip = sys.argv[1], sys.argv[2], int(sys.argv[3])
    settings = Settings(log_level="warning")
    detector = None
    if mode == "proxy":
        table = {}
        for f in load_frames(per_clip):
            table[key(cv2.imdecode(np.frombuffer(f.jpeg, np.uint8), cv2.IMREAD_COLOR))] = f.gt_boxes
        detector = FrameLookupProxy(YoloOnnxDetector(yolo_path, 320, 0.35, "auto", 2), table)
    engine = Engine.load(settings, detector=detector)
    GracefulServer(uvicorn_config(create_app(settings, engine), settings), engine, settings.shutdown_grace_s).run()


if __name__ == "__main__":
    main()
