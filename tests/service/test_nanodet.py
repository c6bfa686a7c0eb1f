"""The shipped NanoDet person detector on real frames, its decode, and how the service picks it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from okpose.core.oks import box_iou
from okpose.detect.detectors import DetectorConfig, HogDetector, YoloOnnxDetector, build_detector
from okpose.detect.nanodet import NanoDetDetector, anchor_grid, decode_distances, input_shape
from service.settings import DEFAULT_POSE_MODEL, REPO_ROOT, Settings

MODELS = REPO_ROOT / "models"


@pytest.fixture(scope="module")
def val(data_root: Path) -> tuple[dict, dict[int, list[dict]]]:
    ann = json.loads((data_root / "annotations" / "person_keypoints_val.json").read_text())
    by_img: dict[int, list[dict]] = {}
    for a in ann["annotations"]:
        by_img.setdefault(a["image_id"], []).append(a)
    return ann, by_img


def xyxy(a: dict) -> list[float]:
    x, y, w, h = a["bbox"]
    return [x, y, x + w, y + h]


def multi_person_frames(ann: dict, by_img: dict[int, list[dict]], n: int) -> list[tuple[str, list[dict]]]:
    """``n`` val frames with at least two labelled (non-ignore) people, spread over the clip."""
    frames = [
        (im["file_name"], [a for a in by_img.get(im["id"], []) if not a["ignore"]])
        for im in sorted(ann["images"], key=lambda im: im["id"])
    ]
    frames = [f for f in frames if len(f[1]) >= 2]
    return frames[:: max(1, len(frames) // n)][:n]


@pytest.fixture(scope="module")
def int8() -> NanoDetDetector:
    return NanoDetDetector(MODELS / "nanodet-coco-int8.onnx", Settings().detector_score, threads=1)


@pytest.mark.parametrize(
    "image_hw,size,square,expected",
    [
        ((800, 453), 320, False, (320, 192)),  # portrait: short side 181 -> nearest multiple of 32
        ((1080, 1920), 320, False, (192, 320)),  # 180 -> 192
        ((800, 453), 288, False, (288, 160)),  # 163 -> 160
        ((480, 640), 320, True, (320, 320)),  # fixed-size models get a square input
        ((10, 3000), 320, False, (32, 320)),  # extreme aspect keeps one cell row
        ((500, 500), 320, False, (320, 320)),
    ],
)
def test_input_shape(image_hw, size, square, expected):
    assert input_shape(image_hw, size, 32, square) == expected


def test_anchor_grid_order_and_centres():
    centres, strides = anchor_grid((64, 96), (8, 16, 32))
    assert len(centres) == 8 * 12 + 4 * 6 + 2 * 3
    assert centres[0].tolist() == [4.0, 4.0] and centres[1].tolist() == [12.0, 4.0]  # row-major, x first
    assert centres[12].tolist() == [4.0, 12.0]
    assert strides[8 * 12] == 16 and centres[8 * 12].tolist() == [8.0, 8.0]


def test_decode_distances_is_the_expected_bin():
    logits = np.full((1, 44), -50.0, np.float32)
    for side, b in enumerate((0, 3, 10, 5)):
        logits[0, side * 11 + b] = 50.0
    assert decode_distances(logits, 10)[0].tolist() == pytest.approx([0, 3, 10, 5], abs=1e-4)
    two = np.zeros((1, 44), np.float32)  # uniform over 11 bins -> mean bin 5
    assert decode_distances(two, 10)[0].tolist() == pytest.approx([5, 5, 5, 5], abs=1e-4)


def test_finds_the_labelled_people_on_real_frames(int8, val, data_root):
    frames = multi_person_frames(*val, n=12)
    found = total = 0
    for file_name, people in frames:
        det = int8(cv2.imread(str(data_root / "images" / file_name)))
        iou = box_iou(np.array([xyxy(a) for a in people], np.float32), det.xyxy)
        found += int((iou.max(1) >= 0.5).sum())
        total += len(people)
    assert found / total >= 0.9, f"found {found} of {total} labelled people"


def test_no_person_on_a_real_frame_without_people(int8, val, data_root):
    """The widest band of a real val frame that no person (labelled or ignored) reaches."""
    ann, by_img = val
    im = next(i for i in ann["images"] if i["id"] in by_img)
    img = cv2.imread(str(data_root / "images" / im["file_name"]))
    covered = np.zeros(img.shape[1], bool)
    for a in by_img[im["id"]]:
        x1, _, x2, _ = xyxy(a)
        covered[max(0, int(x1) - 20) : int(x2) + 20] = True
    free = np.flatnonzero(~covered)
    runs = np.split(free, np.flatnonzero(np.diff(free) > 1) + 1)
    band = max(runs, key=len)
    assert len(band) >= 96, "no person-free band wide enough in this frame"
    empty = np.ascontiguousarray(img[:, band[0] : band[-1] + 1])
    assert len(int8(empty)) == 0


def test_int8_agrees_with_fp32_on_real_frames(val, data_root):
    fp32 = NanoDetDetector(MODELS / "nanodet-coco-fp32.onnx", 0.35, input_size=320, threads=1)
    q = NanoDetDetector(MODELS / "nanodet-coco-int8.onnx", 0.35, input_size=320, threads=1)
    matched = total = 0
    for file_name, _ in multi_person_frames(*val, n=10):
        img = cv2.imread(str(data_root / "images" / file_name))
        a, b = fp32(img), q(img)
        strong = a.xyxy[a.scores >= 0.5]
        total += len(strong)
        if len(strong) and len(b):
            matched += int((box_iou(strong, b.xyxy).max(1) >= 0.8).sum())
    assert total >= 10 and matched / total >= 0.9, f"{matched} of {total} confident fp32 boxes matched by int8"


def test_spec_comes_from_the_model_metadata():
    d = NanoDetDetector(MODELS / "nanodet-coco-int8.onnx", 0.35, threads=1)
    assert d.spec.class_names[d.spec.person_class] == "person" and d.spec.precision == "int8"
    assert d.size == d.spec.input_size and "Apache-2.0" in d.spec.license
    with pytest.raises(Exception, match="not a NanoDet detector"):
        NanoDetDetector(DEFAULT_POSE_MODEL, 0.35)  # a pose model has no detector spec


def test_auto_picks_by_what_the_file_is(tmp_path, caplog):
    assert isinstance(
        build_detector(DetectorConfig.from_settings(Settings(threads=1))), NanoDetDetector
    )  # the shipped default
    fixed = build_detector(DetectorConfig.from_settings(Settings(threads=1, detector_input=416)))
    assert isinstance(fixed, NanoDetDetector) and fixed.size == 416
    with caplog.at_level(logging.ERROR, logger="okpose.detect.detectors"):
        fallback = build_detector(
            DetectorConfig.from_settings(Settings(threads=1, detector_model=str(tmp_path / "missing.onnx")))
        )
    assert isinstance(fallback, HogDetector)
    assert any("HOG" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)


def test_an_onnx_without_detector_spec_is_treated_as_yolo(tmp_path):
    """A user's own export (no okpose metadata) is read as an Ultralytics YOLO graph."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    g = helper.make_graph(
        [helper.make_node("Identity", ["images"], ["output0"])],
        "yolo-like",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 320, 320])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 3, 320, 320])],
    )
    path = tmp_path / "user_yolo.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    assert isinstance(
        build_detector(DetectorConfig.from_settings(Settings(threads=1, detector_model=str(path)))), YoloOnnxDetector
    )


def test_ready_names_nanodet(server):
    ready = httpx.get(f"{server.http}/ready", timeout=10).json()
    assert ready["detector"].startswith("nanodet:nanodet-coco-int8.onnx")


def test_post_pose_returns_every_labelled_person(server, val, data_root):
    """End to end: a real three-person val frame, detector boxes only (no client boxes)."""
    ann, by_img = val
    im = max(ann["images"], key=lambda i: (sum(not a["ignore"] for a in by_img.get(i["id"], [])), -i["id"]))
    people = [a for a in by_img[im["id"]] if not a["ignore"]]
    body = (data_root / "images" / im["file_name"]).read_bytes()
    r = httpx.post(f"{server.http}/pose", files={"image": ("f.jpg", body, "image/jpeg")}, timeout=30)
    assert r.status_code == 200, r.text
    persons = r.json()["persons"]
    assert len(people) >= 2 and len(persons) >= len(people)
    iou = box_iou(np.array([xyxy(a) for a in people], np.float32), np.array([p["box"] for p in persons], np.float32))
    assert (iou.max(1) >= 0.5).all(), iou.round(2).tolist()


def test_ultralytics_backend_gives_each_worker_thread_its_own_model(tmp_path):
    """Ultralytics models are not thread-safe: each worker thread gets its own. (Ultralytics is an
    optional extra, absent here: the loader is a stand-in that records which thread uses which model
    and fails if two threads ever share one.)"""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from okpose.detect.detectors import UltralyticsDetector

    weights = tmp_path / "yolo.pt"
    weights.write_bytes(b"weights")

    class Tensor:  # what .cpu().numpy() needs
        def __init__(self, a):
            self.a = a

        def cpu(self):
            return self

        def numpy(self):
            return self.a

    class Model:
        device = "cpu"

        def __init__(self, path):
            self.owner = None

        def predict(self, image, **kw):
            me = threading.get_ident()
            assert self.owner in (None, me), "one model used by two threads"
            self.owner = me
            boxes = type(
                "Boxes",
                (),
                {"xyxy": Tensor(np.array([[1, 2, 30, 60]], np.float32)), "conf": Tensor(np.array([0.9], np.float32))},
            )
            return [type("Result", (), {"boxes": boxes})]

    det = UltralyticsDetector(str(weights), 0.3, load=Model)
    img = np.zeros((64, 64, 3), np.uint8)

    def call(_):
        assert len(det(img)) == 1
        return threading.get_ident()

    with ThreadPoolExecutor(4) as pool:
        threads = set(pool.map(call, range(64)))
    assert len(det.models) == len(threads) + 1  # one per worker thread, plus the startup check's
