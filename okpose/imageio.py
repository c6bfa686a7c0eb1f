"""Image decoding with limits checked *before* decoding (no decompression bombs)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

# the limits' defaults (the service's POSE_MAX_IMAGE_BYTES / POSE_MAX_IMAGE_PIXELS / POSE_DECODE_MIN_SIDE)
MAX_IMAGE_BYTES = 8 * 1024 * 1024
MAX_IMAGE_PIXELS = 4096 * 4096
DECODE_MIN_SIDE = 960  # large JPEGs are decoded at 1/2, 1/4 or 1/8 scale, keeping the long side >= this


class ImageError(ValueError):
    """The bytes are not an acceptable image; the message is safe to show to the client."""


class ImageTooLarge(ImageError):
    """More bytes than the image limit (REST: 413)."""


def check_size(nbytes: int, limit: int) -> None:
    """The one image byte limit check (whole frames, and running counts of streamed uploads)."""
    if nbytes > limit:
        raise ImageTooLarge(f"image is larger than the limit of {limit} bytes (got {nbytes}+)")


def header_size(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) read from a JPEG or PNG header without decoding pixels."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ImageError("truncated PNG header")
        w, h = struct.unpack(">II", data[16:24])
        return "png", int(w), int(h)
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 4 <= len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                i += 1 if marker == 0xFF else 2
                continue
            (length,) = struct.unpack(">H", data[i + 2 : i + 4])
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                if i + 9 > len(data):
                    break
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return "jpeg", int(w), int(h)
            i += 2 + length
        raise ImageError("truncated JPEG: no frame header found")
    raise ImageError("not a JPEG or PNG image")


REDUCED = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


@dataclass(frozen=True)
class Decoded:
    """Pixels (possibly decoded at a reduced scale) and the image's own size.

    ``scale_xy``: original pixels per decoded pixel along x and y (1.0 when decoded in full).
    """

    pixels: npt.NDArray[np.uint8]
    width: int
    height: int

    @property
    def scale_xy(self) -> tuple[float, float]:
        return self.width / self.pixels.shape[1], self.height / self.pixels.shape[0]


def reduction(width: int, height: int, min_side: int) -> int:
    """The largest JPEG DCT reduction (1, 2, 4, 8) that keeps the long side at least ``min_side``."""
    if min_side <= 0:
        return 1
    return next((f for f in (8, 4, 2) if max(width, height) / f >= min_side), 1)


def decode_image(data: bytes, max_bytes: int, max_pixels: int, min_side: int = 0) -> Decoded:
    """JPEG/PNG bytes -> BGR uint8 (H, W, 3). Raises ImageError with a client-safe reason.

    ``min_side`` > 0: JPEGs whose long side is at least twice that are decoded at 1/2, 1/4 or 1/8 scale
    (libjpeg's DCT scaling: a fraction of the full decode's cost), keeping the long side >= min_side.
    """
    if not data:
        raise ImageError("empty image")
    check_size(len(data), max_bytes)
    fmt, w, h = header_size(data)
    if w <= 0 or h <= 0:
        raise ImageError(f"invalid {fmt} dimensions {w}x{h}")
    if w * h > max_pixels:
        raise ImageError(f"image is {w}x{h} = {w * h} pixels, limit is {max_pixels}")
    factor = reduction(w, h, min_side) if fmt == "jpeg" else 1
    img = cv2.imdecode(np.frombuffer(data, np.uint8), REDUCED[factor])
    if img is None:
        raise ImageError(f"corrupt {fmt} data")
    return Decoded(np.asarray(img, dtype=np.uint8), w, h)
