"""okpose: real-time multi-person pose estimation and tracking, in your own process.

    import cv2, okpose
    pipe = okpose.Pipeline()                          # embedded NanoDet + OKDHP student, no download
    res = pipe(cv2.imread("photo.jpg"))               # res.boxes, res.scores, res.keypoints (N, 17, 3), res.visible
    for frame, res in pipe.track("clip.mp4"):         # file | webcam index | rtsp:// | http(s) | folder | glob
        print(res.frame, res.track_ids)

Subpackages: ``okpose.core`` (geometry, heatmaps, OKS, specs, the top-down runner), ``okpose.detect``,
``okpose.track``; modules ``okpose.sources``, ``okpose.export``, ``okpose.draw``. numpy, OpenCV, ONNX Runtime and
SciPy only: no torch, no web framework.
"""

from okpose.core import __version__
from okpose.pipeline import BoxError, Pipeline, PipelineOptions, Result, Stream

__all__ = ["BoxError", "Pipeline", "PipelineOptions", "Result", "Stream", "__version__"]
