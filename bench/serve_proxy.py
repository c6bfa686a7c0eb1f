"""The real service (uvicorn, websocket, pipeline) for the benchmark, with the detector swapped for
``ProxyDetector`` when YOLO assets exist: YOLO's real cost, the frame's GT boxes.

python -m bench.serve_proxy PORT DETECTOR(default|proxy) YOLO_DETECT_ONNX PER_CLIP
"""

from __future__ import annotations

import sys

import numpy as np

from bench.frames import load_frames
from posecore.types import Detections
from service.app import create_app
from service.detector import YoloOnnxDetector
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

    port, mode, yolo_path, per_clip = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    settings = Settings(
        host="127.0.0.1",
        port=port,
        threads=threads,
        workers=2,
        max_fps=1000,
        max_streams=64,
        max_streams_per_client=64,
        log_level="warning",
    )
    detector = None
    if mode == "proxy":
        table = {}
        for f in load_frames(per_clip):
            table[key(cv2.imdecode(np.frombuffer(f.jpeg, np.uint8), cv2.IMREAD_COLOR))] = f.gt_boxes
        detector = FrameLookupProxy(YoloOnnxDetector(yolo_path, 320, 0.35, "auto", 2), table)
    engine = Engine.load(settings, detector=detector)
    GracefulServer(uvicorn_config(create_app(settings, engine), settings), engine).run()


if __name__ == "__main__":
    main()
