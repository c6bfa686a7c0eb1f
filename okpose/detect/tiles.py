"""Small people in large frames: the detector also runs on overlapping tiles (SAHI-style slicing, Akyon et al.
2022), each resized to the detector's own input, and the tile boxes join the full frame's through one NMS.

A 1920x1080 frame at NanoDet's 416 input shrinks a 60 px pedestrian to 13 px, under what its stride-8 level
finds; a 2x2 grid of tiles shows the detector the same person 1.8x larger. Tiles only pay where the frame is
much larger than the detector input, so ``tile_windows`` returns none below ``min_side``. A box that touches a
tile's inner edge is a person cut by the slice: it is dropped (the neighbouring tile, which overlaps by
``overlap``, or the full frame sees that person whole).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from okpose.core.oks import box_intersection, box_iou
from okpose.core.types import Detections
from okpose.detect.nanodet import nms_xyxy

F32 = npt.NDArray[np.float32]
TILE_MIN_SIDE = 1280  # frames whose long side (in their own pixels) is shorter are never tiled
TILE_OVERLAP = 0.2  # share of a tile's side it shares with its neighbour (SAHI's default)
EDGE_PX = 2.0  # a tile box this close to a tile's inner edge is a cut person
COVERED_SHARE = 0.6  # a tile box this much inside a person the frame already has is part of that person


class TiledDetector:
    """Any detector on the whole frame and on every tile of a ``grid`` x ``grid`` layout (frames whose long side is
    ``min_side`` or more), merged: what ``okpose.Pipeline`` does for a single image, as a detector of its own."""

    def __init__(self, detector: object, grid: int, min_side: int = TILE_MIN_SIDE, nms_iou: float | None = None):
        self.detector, self.grid, self.min_side = detector, grid, min_side
        self.nms_iou = float(getattr(detector, "nms_iou", 0.6) if nms_iou is None else nms_iou)
        self.name = f"{getattr(detector, 'name', 'detector')} + {grid}x{grid} tiles"
        self.providers: list[str] = list(getattr(detector, "providers", []))

    def __call__(self, image: npt.NDArray[np.uint8]) -> Detections:
        full: Detections = self.detector(image)  # type: ignore[operator]
        windows = tile_windows((image.shape[1], image.shape[0]), self.grid, self.min_side)
        return merge_tiles(image, full, windows, self.detector, self.nms_iou) if len(windows) else full


def tile_windows(
    wh: tuple[int, int], grid: int, min_side: int = TILE_MIN_SIDE, overlap: float = TILE_OVERLAP
) -> npt.NDArray[np.int64]:
    """(T, 4) tile windows x1, y1, x2, y2 of a ``wh`` frame: a ``grid`` x ``grid`` layout whose neighbours
    overlap by ``overlap`` of a tile, row by row. None (shape (0, 4)) when ``grid`` < 2 or the frame's long side
    is under ``min_side``."""
    w, h = wh
    if grid < 2 or max(w, h) < min_side:
        return np.zeros((0, 4), np.int64)
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"tile overlap must be in [0, 1), got {overlap}")

    def cuts(size: int) -> list[tuple[int, int]]:
        tile = size / (grid - (grid - 1) * overlap)
        step = tile * (1 - overlap)
        return [(round(i * step), min(size, round(i * step + tile))) for i in range(grid)]

    return np.array([(x1, y1, x2, y2) for y1, y2 in cuts(h) for x1, x2 in cuts(w)], np.int64)


def scale_windows(windows: npt.ArrayLike, scale_xy: tuple[float, float], wh: tuple[int, int]) -> npt.NDArray[np.int64]:
    """Windows laid out in a frame's own pixels, moved to the pixels of its reduced decode (``scale_xy``: decoded
    / own) and clipped to the decoded ``wh``."""
    win = np.asarray(windows, np.float64).reshape(-1, 4) * np.array([*scale_xy, *scale_xy])
    return np.asarray(np.round(win).clip(0, [wh[0], wh[1], wh[0], wh[1]]), np.int64)


def inner_edge_cut(
    boxes: F32, window: npt.ArrayLike, wh: tuple[int, int], edge_px: float = EDGE_PX
) -> npt.NDArray[np.bool_]:
    """Which ``boxes`` (frame pixels) touch an edge of ``window`` that is inside the frame (a cut person); edges
    on the frame's own border cut nobody."""
    x1, y1, x2, y2 = np.asarray(window, np.float64).reshape(4).tolist()
    w, h = wh
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    cut = np.zeros(len(b), bool)
    if x1 > 0:
        cut |= b[:, 0] <= x1 + edge_px
    if y1 > 0:
        cut |= b[:, 1] <= y1 + edge_px
    if x2 < w:
        cut |= b[:, 2] >= x2 - edge_px
    if y2 < h:
        cut |= b[:, 3] >= y2 - edge_px
    return cut


def inside_share(boxes: F32, others: F32) -> npt.NDArray[np.float64]:
    """(N,) the largest share of each of ``boxes``' area that lies inside one of ``others`` (0 when none)."""
    a = np.asarray(boxes, np.float64).reshape(-1, 4)
    b = np.asarray(others, np.float64).reshape(-1, 4)
    if not len(a) or not len(b):
        return np.zeros(len(a))
    inter = box_intersection(a, b)
    area = np.maximum(np.prod(a[:, 2:] - a[:, :2], axis=1), 1e-9)
    return np.asarray((inter / area[:, None]).max(axis=1), np.float64)


def drop_covered(
    tiles: Detections, covered: F32, share: float = COVERED_SHARE, same_iou: float | None = None
) -> Detections:
    """Tile boxes that lie mostly (``share`` of their area) inside one of ``covered`` (persons the whole frame or
    a track already has) are dropped: a tile sees part of a large person as a person of its own. ``same_iou``:
    a box that overlaps a covering box at least this much is that person found again, and stays."""
    keep = inside_share(tiles.xyxy, covered) < share
    if same_iou is not None and len(covered) and len(tiles):
        keep |= box_iou(tiles.xyxy, np.asarray(covered, np.float32).reshape(-1, 4)).max(axis=1) >= same_iou
    return tiles if keep.all() else Detections(tiles.xyxy[keep], tiles.scores[keep])


def union(a: Detections, b: Detections, nms_iou: float) -> Detections:
    """``a`` and ``b`` through one NMS (best first); ``a`` as it is when ``b`` is empty."""
    if not len(b):
        return a
    xyxy = np.concatenate([a.xyxy, b.xyxy]).astype(np.float32)
    scores = np.concatenate([a.scores, b.scores]).astype(np.float32)
    keep = nms_xyxy(xyxy, scores, nms_iou)
    return Detections(xyxy[keep], scores[keep])


def merge_tiles(
    image: npt.NDArray[np.uint8],
    full: Detections,
    windows: npt.ArrayLike,
    detect: object,
    nms_iou: float,
) -> Detections:
    """``full`` (the whole frame's detections) joined by ``detect(tile_image)`` on each window, tile boxes moved to
    frame pixels, cut persons and parts of ``full``'s persons dropped, then one NMS over all (best first)."""
    h, w = image.shape[:2]
    boxes, scores = [np.zeros((0, 4), np.float32)], [np.zeros(0, np.float32)]
    for win in np.asarray(windows, np.int64).reshape(-1, 4):
        x1, y1, x2, y2 = (int(v) for v in win)
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        found: Detections = detect(image[y1:y2, x1:x2])  # type: ignore[operator]
        if not len(found):
            continue
        xyxy = found.xyxy + np.array([x1, y1, x1, y1], np.float32)
        whole = ~inner_edge_cut(xyxy, win, (w, h))
        boxes.append(xyxy[whole])
        scores.append(found.scores[whole])
    tiles = drop_covered(Detections(np.concatenate(boxes), np.concatenate(scores)), full.xyxy)
    return union(full, tiles, nms_iou)
