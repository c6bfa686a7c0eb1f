"""Model spec: what a pose ONNX file must say about itself, round-tripped through its metadata."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from okpose.core.skeleton import COCO_FLIP_PAIRS, COCO_KEYPOINTS, COCO_LIMBS

SPEC_KEY = "okpose.spec"
SPEC_FORMAT = 1
OUTPUTS = ("heatmaps", "keypoints")


@dataclass(frozen=True)
class ModelSpec:
    """Everything the service needs to pre- and post-process a top-down heatmap model.

    input_wh: network input (width, height) in pixels; mean/std: per-channel on 0-255 RGB;
    heatmap_stride: input pixels per heatmap pixel; padding: box enlargement before cropping.
    output: what the network's first output is: ``heatmaps`` (N, K, h, w), decoded here, or ``keypoints``
    (N, K, 3) x, y in crop-input pixels and a score, decoded in the graph (the MoveNet-head students).
    """

    name: str
    version: str
    input_wh: tuple[int, int] = (192, 256)
    mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    std: tuple[float, float, float] = (58.395, 57.12, 57.375)
    heatmap_stride: int = 4
    padding: float = 1.25
    color: str = "rgb"
    keypoint_names: tuple[str, ...] = COCO_KEYPOINTS
    limbs: tuple[tuple[int, int], ...] = COCO_LIMBS
    flip_pairs: tuple[tuple[int, int], ...] = COCO_FLIP_PAIRS
    extra: dict[str, str] = field(default_factory=dict)
    output: str = "heatmaps"

    def __post_init__(self) -> None:
        if self.color not in ("rgb", "bgr"):
            raise ValueError(f"color must be 'rgb' or 'bgr', got {self.color!r}")
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        w, h = self.input_wh
        if w <= 0 or h <= 0 or w % self.heatmap_stride or h % self.heatmap_stride:
            raise ValueError(f"input_wh {self.input_wh} must be positive multiples of stride {self.heatmap_stride}")
        k = len(self.keypoint_names)
        for a, b in (*self.limbs, *self.flip_pairs):
            if not (0 <= a < k and 0 <= b < k):
                raise ValueError(f"limb/flip pair ({a}, {b}) out of range for {k} keypoints")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("mean and std need 3 values, std > 0")

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    @property
    def heatmap_wh(self) -> tuple[int, int]:
        return self.input_wh[0] // self.heatmap_stride, self.input_wh[1] // self.heatmap_stride

    def to_metadata(self) -> dict[str, str]:
        """Flat str->str dict for ONNX ``metadata_props``."""
        d = asdict(self)
        return {
            SPEC_KEY: json.dumps({"format": SPEC_FORMAT, **d}, sort_keys=True),
            "name": self.name,
            "version": self.version,
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> ModelSpec:
        if SPEC_KEY not in meta:
            raise ValueError(
                f"model metadata has no {SPEC_KEY!r} entry (was it exported by `python -m trainer export`?)"
            )
        raw: dict[str, Any] = json.loads(meta[SPEC_KEY])
        fmt = raw.pop("format", None)
        if fmt != SPEC_FORMAT:
            raise ValueError(f"unsupported spec format {fmt!r}, expected {SPEC_FORMAT}")
        return cls(
            name=str(raw["name"]),
            version=str(raw["version"]),
            input_wh=(int(raw["input_wh"][0]), int(raw["input_wh"][1])),
            mean=tuple(float(v) for v in raw["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in raw["std"]),  # type: ignore[arg-type]
            heatmap_stride=int(raw["heatmap_stride"]),
            padding=float(raw["padding"]),
            color=str(raw["color"]),
            keypoint_names=tuple(str(n) for n in raw["keypoint_names"]),
            limbs=tuple((int(a), int(b)) for a, b in raw["limbs"]),
            flip_pairs=tuple((int(a), int(b)) for a, b in raw["flip_pairs"]),
            extra={str(k): str(v) for k, v in raw.get("extra", {}).items()},
            output=str(raw.get("output", "heatmaps")),  # files written before the field: heatmap models
        )


DETECTOR_SPEC_KEY = "okpose.detector_spec"
DETECTOR_SPEC_FORMAT = 1


@dataclass(frozen=True)
class DetectorSpec:
    """What a detector ONNX file says about itself (written by ``tools/convert_models.py``).

    kind: output layout (``nanodet-gfl``: per-level class scores + per-side distance bins);
    input_size: the long side the frame is resized to (the graph takes any H, W that are
    multiples of ``size_divisor``; ``dynamic`` False means exactly ``input_size`` square);
    mean/std: per channel on 0-255 values in ``color`` order, applied inside the graph when
    ``input_format`` is ``uint8-nhwc`` (the caller passes the resized raw pixels) and by
    the caller for ``float-nchw``; strides/reg_max: the decode;
    class_names/person_class: which score column is a person.
    """

    name: str
    version: str
    kind: str = "nanodet-gfl"
    input_size: int = 320
    size_divisor: int = 32
    dynamic: bool = True
    mean: tuple[float, float, float] = (103.53, 116.28, 123.675)
    std: tuple[float, float, float] = (57.375, 57.12, 58.395)
    color: str = "bgr"
    input_format: str = "uint8-nhwc"
    strides: tuple[int, ...] = (8, 16, 32)
    reg_max: int = 10
    class_names: tuple[str, ...] = ("person",)
    person_class: int = 0
    precision: str = "fp32"
    source: str = ""
    license: str = ""

    def __post_init__(self) -> None:
        if self.kind != "nanodet-gfl":
            raise ValueError(f"unsupported detector kind {self.kind!r}")
        if self.color not in ("rgb", "bgr"):
            raise ValueError(f"color must be 'rgb' or 'bgr', got {self.color!r}")
        if self.input_format not in ("uint8-nhwc", "float-nchw"):
            raise ValueError(f"input_format must be 'uint8-nhwc' or 'float-nchw', got {self.input_format!r}")
        if self.input_size <= 0 or self.input_size % self.size_divisor:
            raise ValueError(f"input_size {self.input_size} must be a positive multiple of {self.size_divisor}")
        if not 0 <= self.person_class < len(self.class_names):
            raise ValueError(f"person_class {self.person_class} out of range for {len(self.class_names)} classes")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("mean and std need 3 values, std > 0")

    def to_metadata(self) -> dict[str, str]:
        return {
            DETECTOR_SPEC_KEY: json.dumps({"format": DETECTOR_SPEC_FORMAT, **asdict(self)}, sort_keys=True),
            "name": self.name,
            "version": self.version,
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> DetectorSpec:
        if DETECTOR_SPEC_KEY not in meta:
            raise ValueError(f"model metadata has no {DETECTOR_SPEC_KEY!r} entry")
        raw: dict[str, Any] = json.loads(meta[DETECTOR_SPEC_KEY])
        fmt = raw.pop("format", None)
        if fmt != DETECTOR_SPEC_FORMAT:
            raise ValueError(f"unsupported detector spec format {fmt!r}, expected {DETECTOR_SPEC_FORMAT}")
        tuples = {"mean", "std", "strides", "class_names"}
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown detector spec fields {sorted(unknown)}")
        kwargs: dict[str, Any] = {k: tuple(v) if k in tuples else v for k, v in raw.items()}
        return cls(**kwargs)
