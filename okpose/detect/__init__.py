"""Person detectors: one protocol (image -> ``Detections``), the embedded NanoDet, user-exported YOLO ONNX,
Ultralytics, and OpenCV's HOG; ``build_detector`` picks one from a ``DetectorConfig``."""

from okpose.detect.detectors import Detector, DetectorConfig, build_detector

__all__ = ["Detector", "DetectorConfig", "build_detector"]
