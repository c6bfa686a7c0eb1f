"""Detector tiles for small people in large frames (``okpose.detect.tiles``, ``PipelineOptions.tiles``): the
geometry, then the embedded detector on real small people (people-diverse photos laid out on a full-HD canvas,
``bench.detector.mosaics``), as single images and as a stream, and a lab clip where tiles find nobody new."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import okpose
from bench.detector import mosaics, recall_precision
from okpose.core.types import Detections
from okpose.detect.tiles import drop_covered, inner_edge_cut, tile_windows
from tests.library.media import N_FRAMES


@pytest.mark.parametrize("wh", [(1920, 1080), (1280, 720), (3840, 2160)])
@pytest.mark.parametrize("grid", [2, 3, 4])
def test_tiles_cover_the_frame_and_overlap_their_neighbours(wh: tuple[int, int], grid: int) -> None:
    win = tile_windows(wh, grid, overlap=0.2)
    assert len(win) == grid * grid
    covered = np.zeros((wh[1], wh[0]), np.int32)
    for x1, y1, x2, y2 in win:
        covered[y1:y2, x1:x2] += 1
    assert covered.min() >= 1, "every pixel is in some tile"
    tile_w, tile_h = win[0, 2] - win[0, 0], win[0, 3] - win[0, 1]
    assert abs(tile_w / tile_h - wh[0] / wh[1]) < 0.02, "tiles keep the frame's shape"
    shared_x = win[0, 2] - win[1, 0]  # the first row's two leftmost tiles
    assert abs(shared_x - 0.2 * tile_w) <= 2


def test_no_tiles_on_small_frames_or_when_off() -> None:
    assert len(tile_windows((1280, 720), 3)) == 9
    assert len(tile_windows((1279, 720), 3)) == 0
    assert len(tile_windows((640, 480), 3)) == 0
    assert len(tile_windows((1920, 1080), 1)) == 0 and len(tile_windows((1920, 1080), 0)) == 0
    with pytest.raises(ValueError, match="overlap"):
        tile_windows((1920, 1080), 2, overlap=1.0)
    with pytest.raises(ValueError, match="tiles"):
        okpose.PipelineOptions(tiles=7)


def test_a_box_on_a_tiles_inner_edge_is_a_cut_person() -> None:
    window = np.array([600, 0, 1300, 500])  # a top tile: its top edge is the frame's, the others are inside
    boxes = np.array([[601, 100, 700, 200],  # on the left inner edge
                      [900, 0, 950, 120],  # on the frame's top border: whole
                      [900, 100, 950, 220],  # inside
                      [1200, 450, 1299, 500]], np.float32)  # on the right and bottom inner edges  # fmt: skip
    assert inner_edge_cut(boxes, window, (1920, 1080)).tolist() == [True, False, False, True]
    big = np.array([[0, 0, 400, 800]], np.float32)
    part = Detections(np.array([[50, 300, 350, 700], [500, 300, 600, 500]], np.float32), np.ones(2, np.float32))
    assert drop_covered(part, big).xyxy.tolist() == [[500, 300, 600, 500]], "part of a person the frame has"


@pytest.fixture(scope="module")
def small_people() -> tuple[dict, np.ndarray]:
    """One full-HD canvas of 40 real people 30-150 px tall, each boxed by a human."""
    gt, images = mosaics(100)
    assert len(images) == 1 and len(gt["annotations"]) == 40
    return gt, next(iter(images.values()))


def _recall(gt: dict, found: list[okpose.Result]) -> list[float]:
    return [recall_precision(gt, {1: Detections(r.boxes, r.scores)}, 0.0)["recall"] for r in found]


def test_tiles_find_small_people_the_whole_frame_misses(pipe: okpose.Pipeline, small_people: tuple) -> None:
    gt, canvas = small_people
    off = pipe(canvas, options=pipe.options.replace(tiles=0))
    on = pipe(canvas, options=pipe.options.replace(tiles=3))
    assert off.tiles == 0 and on.tiles == 9
    r_off, r_on = _recall(gt, [off, on])
    assert r_on >= r_off + 0.2, (r_off, r_on)
    # a 640-px copy of the same canvas is not tiled: the option costs nothing on webcam frames
    small = pipe(canvas[::3, ::3].copy(), options=pipe.options.replace(tiles=3))
    assert small.tiles == 0


def test_a_stream_tiles_one_window_per_frame_and_keeps_who_they_find(
    pipe: okpose.Pipeline, small_people: tuple
) -> None:
    gt, canvas = small_people
    n = 30
    runs = {t: list(pipe.track([canvas] * n, pipe.options.replace(tiles=t))) for t in (0, 3)}
    tiled = [r for _, r in runs[3]]
    assert max(r.tiles for r in tiled) == 1 and sum(r.tiles for r in tiled) >= 9, "one tile a frame, in turn"
    assert all(r.tiles == 0 for _, r in runs[0])
    r_off = np.mean(_recall(gt, [r for _, r in runs[0]][-10:]))
    r_on = np.mean(_recall(gt, tiled[-10:]))
    assert r_on >= r_off + 0.15, (r_off, r_on)
    # the people tiles found are kept on the frames between (as tracks, with their ids)
    last = tiled[-1]
    assert last.track_ids is not None and len(set(last.track_ids.tolist())) == len(last)


def test_tiles_pause_where_they_find_nobody_small(pipe: okpose.Pipeline, clip: Path) -> None:
    """The lab clip's three people fill the frame: one round of tiles finds no small person, tiling pauses, and
    the answer is the untiled stream's."""
    on = [r for _, r in pipe.track(clip, pipe.options.replace(tiles=3), max_frames=N_FRAMES)]
    off = [r for _, r in pipe.track(clip, pipe.options.replace(tiles=0), max_frames=N_FRAMES)]
    ran = [r.tiles for r in on]
    assert sum(ran) == 9 and all(t == 0 for t in ran[-6:]), ran
    assert [len(r) for r in on] == [len(r) for r in off]
    assert [sorted(a.track_ids.tolist()) for a in on] == [sorted(b.track_ids.tolist()) for b in off]
