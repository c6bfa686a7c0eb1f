"""okpose.core: the torch-free pieces trainer and service must agree on.

skeleton (COCO-17), geometry (boxes, affine crops), heatmaps (encode/decode), oks (OKS, NMS,
IoU), types (typed result objects) and spec (model metadata carried inside the ONNX file).
Only numpy and OpenCV are imported here.
"""

from importlib.metadata import PackageNotFoundError, version

try:  # the one version source is pyproject.toml (through the installed package's metadata)
    __version__ = version("okpose")
except PackageNotFoundError:  # pragma: no cover - a tree that was never installed
    __version__ = "0+unknown"
