"""The frame path itself (``Engine.process``), without a socket: timings, detector scheduling, boxes."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from okpose.pipeline import BoxError, given_boxes
from service.engine import Engine
from service.options import OptionsUpdate
from tests.live import settings_for_tests


class CountingDetector:
    """The real detector, counting its calls."""

    def __init__(self, real):
        self.real, self.name, self.providers, self.calls = real, real.name, real.providers, 0

    def __call__(self, image):
        self.calls += 1
        return self.real(image)


@pytest.fixture(scope="module")
def engine():
    from okpose.detect.detectors import DetectorConfig, build_detector

    settings = settings_for_tests()
    e = Engine.load(settings, detector=CountingDetector(build_detector(DetectorConfig.from_settings(settings))))
    yield e
    e.close()


def test_stage_timings_have_one_writer_and_add_up(engine, multi_frames):
    arrived = time.perf_counter() - 0.05  # the frame waited 50 ms before a worker took it
    t = engine.process(multi_frames[0], engine.defaults, arrived=arrived).timings_ms
    stages = t.model_dump()
    total = stages.pop("total")
    assert t.queue >= 50
    assert total == pytest.approx(sum(stages.values()), abs=0.01)  # total is the sum of the stages (rounded to µs)
    assert t.detect > 0 and t.pose > 0


def test_detector_runs_every_k_frames_and_again_at_once_when_no_track_is_left(engine, multi_frames):
    opts = engine.defaults.updated(OptionsUpdate(detect_interval=4))
    stream = engine.new_stream()
    ran = [engine.process(f, opts, stream).detector_ran for f in multi_frames[:10]]
    # frame 1 runs the detector too: a track is followed on skip frames once the detector found it twice
    assert ran == [True, True, False, False, False, True, False, False, False, True]
    grey = np.full((270, 480, 3), 128, np.uint8)
    import cv2

    blank = cv2.imencode(".jpg", grey)[1].tobytes()
    stream = engine.new_stream()
    frames = [blank, blank, *multi_frames[:3]]
    ran = [engine.process(f, opts, stream).detector_ran for f in frames]
    assert ran == [True, True, True, True, False]  # nobody tracked (or confirmed) -> the detector runs again


def test_client_boxes_skip_the_detector_and_are_clipped(engine, multi_frames):
    before = engine.detector.calls
    answer = engine.process(multi_frames[0], engine.defaults.updated(OptionsUpdate(pose_score_threshold=0.0)),
                            boxes=np.array([[-50, 10, 200, 260]], np.float32))  # fmt: skip
    assert engine.detector.calls == before and not answer.detector_ran
    assert answer.persons[0].box[0] == 0.0
    with pytest.raises(BoxError, match="outside"):
        given_boxes(np.array([[500, 10, 600, 100]], np.float32), (480, 270))


def test_large_jpegs_are_decoded_reduced_with_results_in_image_pixels(engine, data_root):
    """A full-HD frame decoded at half scale (POSE_DECODE_MIN_SIDE=960) gives the same persons, in the
    image's own pixels, as the full decode."""
    import cv2

    from okpose.core.oks import box_iou
    from okpose.imageio import decode_image

    cap = cv2.VideoCapture(str(data_root / "videos" / "pose2sim_multi_cam01.mp4"))
    ok, img = cap.read()
    cap.release()
    jpeg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    assert decode_image(jpeg, 10**8, 10**8, 960).pixels.shape[:2] == (960, 544)
    full = Engine.load(settings_for_tests(decode_min_side=0), detector=engine.detector, pose=engine.pose)
    a, b = full.process(jpeg, full.defaults), engine.process(jpeg, engine.defaults)
    full.close()
    assert (a.width, a.height) == (b.width, b.height) == (1088, 1920)
    iou = box_iou(np.array([p.box for p in a.persons]), np.array([p.box for p in b.persons]))
    matched = iou.max(axis=1) > 0.85
    assert matched.sum() >= 2
    # the detector sees the frame resampled from 1920 or from 960 px: a person it finds in only one of the two
    # must be a borderline detection there (confidence near its threshold), never a clear one
    for answer, alone, min_side in ((a, ~matched, 0), (b, iou.max(axis=0) <= 0.85, 960)):
        decoded = decode_image(jpeg, 10**8, 10**8, min_side)
        dets = engine.detector(decoded.pixels)
        boxes = dets.xyxy * np.array([*decoded.scale_xy, *decoded.scale_xy], np.float32)
        for p in itertools.compress(answer.persons, alone):
            assert dets.scores[box_iou(np.array([p.box]), boxes).argmax()] < engine.detector.real.score + 0.15
    ka = np.array([p.keypoints for p, m in zip(a.persons, matched, strict=True) if m])[..., :2]
    kb = np.array([p.keypoints for p in b.persons])[iou.argmax(axis=1)[matched]][..., :2]
    both = (ka > 0).all(-1) & (kb > 0).all(-1)
    assert np.median(np.abs(ka - kb)[both]) < 8  # px, on a 1920 px tall image


def test_cross_stream_micro_batching_merges_calls_and_keeps_each_answer(engine, multi_frames):
    """Two streams' frames processed at the same time with batching on: their crops share pose calls,
    and each stream gets exactly the poses it gets without batching."""
    from concurrent.futures import ThreadPoolExecutor

    batched = Engine.load(settings_for_tests(batch_window_ms=40), detector=engine.detector, pose=engine.pose)
    frames = multi_frames[:6]
    alone = [[p.keypoints for p in engine.process(f, engine.defaults).persons] for f in frames]
    with ThreadPoolExecutor(2) as pool:
        both = list(pool.map(lambda f: [p.keypoints for p in batched.process(f, batched.defaults).persons],
                             frames))  # fmt: skip
    batched.close()
    assert both == alone
    assert batched.batcher is not None and batched.batcher.batched_frames >= 2
    assert batched.batcher.calls < len(frames)


def test_video_mode_frames_of_two_streams_share_calls_with_their_own_previous_poses(engine, multi_frames):
    """Video mode batches like the per-frame path: two streams' frames at the same time go through one
    video-model call (crops and previous-pose maps concatenated together), and each stream gets exactly
    the poses it gets alone, so no stream's prior leaks into another's crops."""
    from concurrent.futures import ThreadPoolExecutor

    alone = Engine.load(settings_for_tests(), detector=engine.detector, pose=engine.pose)
    batched = Engine.load(settings_for_tests(batch_window_ms=40), detector=engine.detector, pose=engine.pose,
                          video=alone.video)  # fmt: skip
    opts = alone.defaults.updated(OptionsUpdate(video_mode=True, smoothing=False))
    frames = [multi_frames[:6], multi_frames[10:16]]  # two streams, different people positions
    start = time.perf_counter() - 10.0  # fixed 30 fps arrival times: the tracker's predictions do not vary

    def run(e: Engine, clip: list[bytes]) -> list[list[list[list[float]]]]:
        state = e.new_stream()
        answers = [e.process(f, opts, state, arrived=start + i / 30) for i, f in enumerate(clip)]
        assert sum(a.video_priors for a in answers[1:]) > 0
        return [[p.keypoints for p in a.persons] for a in answers]

    expected = [run(alone, clip) for clip in frames]
    with ThreadPoolExecutor(2) as pool:
        both = list(pool.map(lambda clip: run(batched, clip), frames))
    alone.close()
    batched.close()
    assert both == expected
    assert batched.video_batcher is not None and batched.video_batcher.batched_frames >= 2
    assert batched.batcher is not None and batched.batcher.calls == 0  # every frame ran the video model


def hog_detector():  # a factory for the plugin test: the real HOG backend, named so the test can see it was used
    from okpose.detect.detectors import DetectorConfig, build_detector

    det = build_detector(DetectorConfig(kind="hog"))
    det.name = "plugin: " + det.name
    return det


def test_detector_factory_plugs_in_and_fails_loudly(val_image):
    from okpose.core.runtime import ModelLoadError

    e = Engine.load(settings_for_tests(detector_factory="tests.service.test_engine:hog_detector"))
    try:
        assert e.detector.name.startswith("plugin: ")
        assert e.process(val_image, e.defaults).persons  # HOG finds the lab's people
    finally:
        e.close()
    with pytest.raises(ModelLoadError, match="no_such_module"):
        Engine.load(settings_for_tests(detector_factory="no_such_module:make"))
    with pytest.raises(ValueError, match="detector_factory"):
        settings_for_tests(detector_factory="not a spec")
