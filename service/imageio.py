"""Image decoding with limits checked *before* decoding (no decompression bombs)."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import numpy.typing as npt


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


def decode_image(data: bytes, max_bytes: int, max_pixels: int) -> npt.NDArray[np.uint8]:
    """JPEG/PNG bytes -> BGR uint8 (H, W, 3). Raises ImageError with a client-safe reason."""
    if not data:
        raise ImageError("empty image")
    check_size(len(data), max_bytes)
    fmt, w, h = header_size(data)
    if w <= 0 or h <= 0:
        raise ImageError(f"invalid {fmt} dimensions {w}x{h}")
    if w * h > max_pixels:
        raise ImageError(f"image is {w}x{h} = {w * h} pixels, limit is {max_pixels}")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ImageError(f"corrupt {fmt} data")
    return np.asarray(img, dtype=np.uint8)
