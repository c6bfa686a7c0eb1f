"""okpose service: detector -> OKDHP student (ONNX Runtime) -> PoseFlow tracker, over REST and websocket."""
