"""POST /pose and the ops endpoints over a real socket with real images."""

import json

import httpx
import numpy as np
import pytest

from tests.live import noise_jpeg, png_header_only


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
    kp = kp[kp[:, 2] > 0]  # keypoints at or below keypoint_threshold come back as [0, 0, 0]
    assert len(kp) >= 8 and (kp[:, 0] > x - 0.3 * w).all() and (kp[:, 0] < x + 1.3 * w).all()
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


def _post(server, image, **params):
    return httpx.post(
        f"{server.http}/pose", params=params, content=image, headers={"content-type": "image/jpeg"}, timeout=30
    )


def test_client_boxes_outside_the_image_are_refused_or_clipped(server, val_image):
    r = _post(server, val_image, boxes=json.dumps([[900, 900, 1000, 1000]]))  # the image is 453 x 800
    assert r.status_code == 422 and "outside" in r.json()["detail"]
    r = _post(server, val_image, boxes=json.dumps([[300, 200, 600, 700]]), pose_score_threshold=0)  # half outside
    assert r.status_code == 200, r.text
    (p,) = r.json()["persons"]
    assert p["box"] == [300.0, 200.0, 453.0, 700.0]  # clipped to the image
    assert all(v is not None for k in p["keypoints"] for v in k)


def test_client_boxes_honour_the_pose_score_threshold(server, val_image, data_root):
    ann = json.loads((data_root / "annotations" / "person_keypoints_val.json").read_text())
    a = next(a for a in ann["annotations"] if a["image_id"] == 611 and a["num_keypoints"] > 10)
    x, y, w, h = a["bbox"]
    boxes = json.dumps([[x, y, x + w, y + h], [5, 5, 45, 45]])  # a person and a patch of background
    scores = [p["score"] for p in _post(server, val_image, boxes=boxes, pose_score_threshold=0).json()["persons"]]
    assert len(scores) == 2
    cut = (max(scores) + min(scores)) / 2
    kept = _post(server, val_image, boxes=boxes, pose_score_threshold=cut).json()["persons"]
    assert [p["score"] for p in kept] == [max(scores)]


def test_keypoint_threshold_filters_returned_keypoints(server, val_image):
    kps = {}
    for thr in (0.0, 0.6):
        body = _post(server, val_image, keypoint_threshold=thr, pose_score_threshold=0).json()
        kps[thr] = np.concatenate([np.asarray(p["keypoints"]) for p in body["persons"]])
    raw, filtered = kps[0.0], kps[0.6]
    faint = raw[:, 2] <= 0.6
    assert faint.any() and (~faint).any()
    assert (filtered[faint] == 0).all()  # [0, 0, 0]: not returned
    assert np.allclose(filtered[~faint], raw[~faint], atol=0.02)


def _chunked_upload_until_answered(port: int, multipart: bool, total: int, chunk: int = 256 * 1024):
    """Send a body of ``total`` bytes chunked (no Content-Length), a chunk at a time, stopping as soon
    as the server answers. Returns (status line, bytes sent before the answer)."""
    import select
    import socket

    boundary = "okposeboundary"
    ctype = f"multipart/form-data; boundary={boundary}" if multipart else "image/jpeg"
    head = (
        f"POST /pose HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    part = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="big.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        if multipart
        else b""
    )
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        payload = part + b"\xff\xd8" + b"\0" * chunk
        while sent < total:
            data = payload if sent == 0 else b"\0" * chunk
            try:
                sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(data)
            if select.select([sock], [], [], 0.01)[0]:
                break
        reply = sock.recv(65536)
        sock.settimeout(2)
        while b"\r\n\r\n" not in reply or len(reply.split(b"\r\n\r\n", 1)[1]) == 0:
            more = sock.recv(65536)
            if not more:
                break
            reply += more
    reply = reply.decode(errors="replace")  # type: ignore[assignment]
    return reply.split("\r\n", 1)[0], sent, reply


@pytest.mark.parametrize("multipart", [True, False], ids=["multipart", "raw"])
def test_chunked_upload_is_refused_as_soon_as_it_crosses_the_limit(server, multipart):
    """No Content-Length (chunked): the server counts the bytes as they come and answers 413 once past
    the 2 MB limit: it neither reads nor buffers the remaining 38 MB."""
    status, sent, reply = _chunked_upload_until_answered(server.port, multipart, total=40_000_000)
    assert " 413 " in status, reply
    assert sent < 4_000_000
    assert "limit" in reply


def test_openapi_describes_the_wire(server, val_image):
    spec = httpx.get(f"{server.http}/openapi.json").json()
    post = spec["paths"]["/pose"]["post"]
    err = {"$ref": "#/components/schemas/ErrorResponse"}
    # every error status, validation included, is {"detail": str} on the wire and in the schema
    for code in ("400", "401", "413", "415", "422", "429"):
        assert post["responses"][code]["content"]["application/json"]["schema"] == err, code
    wire_422 = httpx.post(
        f"{server.http}/pose", params={"max_persons": 0}, content=val_image, headers={"content-type": "image/jpeg"}
    ).json()
    assert isinstance(wire_422["detail"], str) and "max_persons" in wire_422["detail"]
    assert set(post["requestBody"]["content"]) == {
        "multipart/form-data",
        "image/jpeg",
        "image/png",
        "application/octet-stream",
    }
    assert "X-API-Key" in json.dumps(spec["components"]["securitySchemes"])  # the Authorize button
    assert post["security"]
    ready = spec["paths"]["/ready"]["get"]["responses"]
    assert "503" in ready
    metrics = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    assert httpx.get(f"{server.http}/metrics").headers["content-type"].startswith("text/plain")
    person = spec["components"]["schemas"]["Person"]["properties"]["keypoints"]
    assert person["items"]["maxItems"] == 3 and person["items"]["minItems"] == 3


def test_docs_page_works_offline(server):
    """/docs loads Swagger UI from the service itself (an offline LAN has no CDN)."""
    import re

    html = httpx.get(f"{server.http}/docs").text
    urls = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", html)
    assert urls and not [u for u in urls if u.startswith(("http:", "https:", "//"))], urls
    for u in urls:
        r = httpx.get(f"{server.http}{u}")
        assert r.status_code == 200 and len(r.content) > 100, u
