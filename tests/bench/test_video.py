"""bench.video's metrics and verdict on constructed inputs, and the service default tied to the committed table."""

import json
from pathlib import Path

import numpy as np

from bench.video import Clip, Frame, measure, verdict
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _still_person(n_frames: int = 6):
    rng = np.random.default_rng(0)
    base = np.c_[rng.uniform(100, 200, (17, 2)), np.full(17, 2.0)]
    images, anns, frames = [], [], []
    for t in range(n_frames):
        images.append({"id": t, "file_name": f"{t}.jpg", "width": 640, "height": 480})
        a = {"id": 100 + t, "image_id": t, "category_id": 1, "iscrowd": 0, "track_id": 0, "area": 100.0 * 200.0,
             "bbox": [100.0, 100.0, 100.0, 200.0], "keypoints": base.reshape(-1).tolist(), "num_keypoints": 17}  # fmt: skip
        anns.append(a)
        frames.append(Frame(t, t, Path(f"{t}.jpg"), [a]))
    return {"images": images, "annotations": anns, "categories": [{"id": 1}]}, frames, base


def test_jitter_is_zero_for_a_steady_estimate_and_grows_with_frame_to_frame_shake():
    gt, frames, base = _still_person()
    clip = Clip("synthetic", Path("x"), Path("x"), 1, 30.0)
    steady = {100 + t: np.c_[base[:, :2] + 3.0, np.ones(17)].astype(np.float32) for t in range(6)}  # offset, still
    shaky = {100 + t: np.c_[base[:, :2] + (3.0 if t % 2 else -3.0), np.ones(17)].astype(np.float32) for t in range(6)}
    a, b = measure(steady, gt, frames, clip), measure(shaky, gt, frames, clip)
    assert a["label_jitter"] == 0.0 and a["jitter"] < 1e-6
    # |p(t+1) - 2 p(t) + p(t-1)| = 4 * 3 px * sqrt(2) on every joint, in % of sqrt(area) = 141.4 px
    assert np.isclose(b["jitter"], 12 * np.sqrt(2) / np.sqrt(100 * 200) * 100, rtol=1e-4)
    assert (
        np.isclose(a["mOKS"], b["mOKS"]) and a["persons"] == 6
    )  # same distance from the labels, only the shake differs


def _result(moks: tuple[float, float, float], jitter: tuple[float, float, float]) -> dict:
    clip = {"paired": {}, "boot": {}}
    for arm in ("video", "video+adv"):
        clip["paired"][arm] = {"mOKS": moks, "jitter": jitter}
        clip["boot"][arm] = {"mOKS": moks[1:], "jitter": jitter[1:]}
    return {"clips": [clip, json.loads(json.dumps(clip))], "cost": {"control": 4.0, "video": 5.0, "video+adv": 5.0}}


def test_verdict_turns_video_mode_on_only_when_accuracy_and_jitter_both_win_on_every_clip():
    win = _result((0.02, 0.01, 0.03), (-0.5, -0.8, -0.2))
    verdict(win)
    assert win["default_on"] is True
    for moks, jitter in [((0.02, 0.01, 0.03), (-0.5, -1.0, 0.1)), ((0.01, -0.01, 0.03), (-0.5, -0.8, -0.2))]:
        r = _result(moks, jitter)
        verdict(r)
        assert r["default_on"] is False
    mixed = _result((0.02, 0.01, 0.03), (-0.5, -0.8, -0.2))
    mixed["clips"][1]["paired"]["video"]["jitter"] = (0.1, -0.2, 0.4)  # one clip not shown better: no
    mixed["clips"][1]["paired"]["video+adv"]["jitter"] = (0.1, -0.2, 0.4)
    verdict(mixed)
    assert mixed["default_on"] is False


def test_the_service_default_follows_the_committed_comparison():
    table = json.loads((ROOT / "docs" / "video.json").read_text())
    assert Settings.model_fields["video_mode"].default is table["default_on"]
