"""POST /pose and the ops endpoints over a real socket with real images."""

import json

import httpx
import numpy as np
import pytest

from tests.service.conftest import noise_jpeg, png_header_only


def _check_person(p, w, h):
    assert len(p["keypoints"]) == 17 and all(len(k) == 3 for k in p["keypoints"])
    x1, y1, x2, y2 = p["box"]
    assert -1 <= x1 < x2 <= w + 1 and -1 <= y1 < y2 <= h + 1
    kp = np.asarray(p["keypoints"])
    assert (kp[:, 2] >= 0).all() and (kp[:, 2] <= 1).all()
    assert p.get("track_id") is None  # REST is stateless


def test_multipart_upload_returns_persons(server, val_image):
    r = httpx.post(f"{server.http}/pose", files={"image": ("f.jpg", val_image, "image/jpeg")}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["width"], body["height"]) == (453, 800)
    assert len(body["persons"]) >= 1
    for p in body["persons"]:
        _check_person(p, body["width"], body["height"])
    assert {"decode", "detect", "crop", "pose", "decode_heatmaps", "total"} <= set(body["timings_ms"])
    assert body["model"]["keypoints"][0] == "nose" and body["model"]["detector"]


def test_raw_body_and_client_boxes(server, val_image, data_root):
    ann = json.loads((data_root / "annotations" / "person_keypoints_val.json").read_text())
    a = next(a for a in ann["annotations"] if a["image_id"] == 611 and a["num_keypoints"] > 10)
    x, y, w, h = a["bbox"]
    boxes = json.dumps([[x, y, x + w, y + h]])
    r = httpx.post(
        f"{server.http}/pose",
        params={"boxes": boxes},
        content=val_image,
        headers={"content-type": "image/jpeg"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    persons = r.json()["persons"]
    assert len(persons) == 1  # client boxes skip the detector: one box, one pose
    kp = np.asarray(persons[0]["keypoints"])
    assert (kp[:, 0] > x - 0.3 * w).all() and (kp[:, 0] < x + 1.3 * w).all()
    # the same boxes as a multipart form field
    r2 = httpx.post(
        f"{server.http}/pose", files={"image": ("f.jpg", val_image, "image/jpeg")}, data={"boxes": boxes}, timeout=30
    )
    assert r2.status_code == 200 and len(r2.json()["persons"]) == 1


@pytest.mark.parametrize(
    "kwargs,status,needle",
    [
        ({"content": b"hello, not an image", "headers": {"content-type": "image/jpeg"}}, 400, "not a JPEG or PNG"),
        ({"content": b"", "headers": {"content-type": "image/jpeg"}}, 400, "empty"),
        ({"content": b"\xff\xd8\xff\xe0" + b"\0" * 100, "headers": {"content-type": "image/jpeg"}}, 400, "JPEG"),
        ({"content": noise_jpeg()[:200], "headers": {"content-type": "image/jpeg"}}, 400, "corrupt"),
        ({"content": png_header_only(60000, 60000), "headers": {"content-type": "image/png"}}, 400, "pixels"),
        ({"content": b"x" * 2_100_000, "headers": {"content-type": "image/jpeg"}}, 413, "limit"),
        ({"content": b"{}", "headers": {"content-type": "application/json"}}, 415, "unsupported content type"),
        ({"files": {"photo": ("f.jpg", b"abc", "image/jpeg")}}, 422, "image"),
        ({"files": {"image": ("f.jpg", b"abc", "image/jpeg")}, "data": {"boxes": "[[1,2,3]]"}}, 422, "boxes"),
        ({"files": {"image": ("f.jpg", b"abc", "image/jpeg")}, "data": {"boxes": "nope"}}, 422, "boxes"),
    ],
    ids=[
        "text",
        "empty",
        "truncated-jpeg",
        "corrupt-jpeg",
        "png-bomb",
        "oversized",
        "json",
        "wrong-field",
        "bad-box-shape",
        "bad-box-json",
    ],
)
def test_bad_inputs_get_4xx_with_reason(server, kwargs, status, needle):
    r = httpx.post(f"{server.http}/pose", timeout=30, **kwargs)
    assert r.status_code == status, r.text
    assert needle.lower() in r.json()["detail"].lower()


def test_threshold_query_validation(server, val_image):
    r = httpx.post(
        f"{server.http}/pose",
        params={"keypoint_threshold": 2},
        content=val_image,
        headers={"content-type": "image/jpeg"},
        timeout=30,
    )
    assert r.status_code == 422


def test_health_ready_metrics_openapi(server, val_image):
    assert httpx.get(f"{server.http}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{server.http}/ready").json()
    assert ready["status"] == "ready" and ready["detector"] and "CPUExecutionProvider" in ready["providers"]
    httpx.post(f"{server.http}/pose", content=val_image, headers={"content-type": "image/jpeg"}, timeout=30)
    text = httpx.get(f"{server.http}/metrics").text
    for stage in ("decode", "detect", "pose", "total"):
        line = next(
            ln for ln in text.splitlines() if ln.startswith(f'pose_stage_latency_seconds_count{{stage="{stage}"}}')
        )
        assert float(line.split()[-1]) > 0
    assert 'pose_frames_total{outcome="processed",source="rest"}' in text
    spec = httpx.get(f"{server.http}/openapi.json").json()
    assert "multipart/form-data" in spec["paths"]["/pose"]["post"]["requestBody"]["content"]
