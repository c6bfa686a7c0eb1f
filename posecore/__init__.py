"""posecore: the torch-free pieces trainer and service must agree on.

skeleton (COCO-17), geometry (boxes, affine crops), heatmaps (encode/decode), oks (OKS, NMS,
IoU), types (typed result objects) and spec (model metadata carried inside the ONNX file).
Only numpy and OpenCV are imported here.
"""

__version__ = "0.1.0"
