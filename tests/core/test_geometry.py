import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from okpose.core.geometry import (
    affine_matrix,
    apply_affine,
    box_to_center_size,
    center_size_to_box,
    clip_boxes,
    crop_batch,
    invert_affine,
    keypoints_to_box,
)

coord = st.floats(-500, 1500, allow_nan=False)
size = st.floats(4, 800, allow_nan=False)


@given(coord, coord, size, size, st.floats(-180, 180), st.sampled_from([(192, 256), (64, 64), (128, 96)]))
def test_warp_then_inverse_is_identity(cx, cy, w, h, rot, out_wh):
    m = affine_matrix((cx, cy), (w, h), out_wh, rot)
    pts = np.array([[cx, cy], [cx + w / 3, cy - h / 4], [cx - 10, cy + 7]])
    back = apply_affine(apply_affine(pts, m), invert_affine(m))
    np.testing.assert_allclose(back, pts, atol=1e-6 * max(1.0, abs(cx), abs(cy), w, h))


@given(coord, coord, size, size)
def test_center_maps_to_crop_centre(cx, cy, w, h):
    m = affine_matrix((cx, cy), (w, h), (192, 256))
    np.testing.assert_allclose(apply_affine([cx, cy], m), [96, 128], atol=1e-6)


@given(coord, coord, size, size)
def test_box_center_size_roundtrip_exact(x1, y1, w, h):
    box = np.array([[x1, y1, x1 + w, y1 + h]])
    c, s = box_to_center_size(box)
    np.testing.assert_allclose(center_size_to_box(c, s), box, rtol=0, atol=1e-9 * max(1, abs(x1), abs(y1), w, h))


@given(size, size, st.floats(0.3, 3.0), st.floats(1.0, 1.5))
def test_aspect_fix_keeps_box_and_hits_aspect(w, h, aspect, pad):
    c, s = box_to_center_size([[0, 0, w, h]], aspect_wh=aspect, padding=pad)
    assert s[0, 0] == pytest.approx(aspect * s[0, 1], rel=1e-9)
    assert s[0, 0] >= w * pad - 1e-9 and s[0, 1] >= h * pad - 1e-9
    np.testing.assert_allclose(c[0], [w / 2, h / 2])


def test_crop_batch_shapes_and_content():
    img = np.zeros((100, 200, 3), np.uint8)
    img[40:60, 90:110] = 255
    crops, mats = crop_batch(img, [[100, 50], [0, 0]], [[40, 40], [40, 40]], (32, 32))
    assert crops.shape == (2, 32, 32, 3) and mats.shape == (2, 2, 3)
    assert crops[0, 16, 16].min() == 255 and crops[0, 0, 0].max() == 0
    # a region half outside the frame (centred on the corner) is zero-padded, not an error
    assert crops[1, :10, :10].max() == 0


@pytest.mark.parametrize(
    "centers,sizes,n",
    [
        (np.zeros((0, 2)), np.zeros((0, 2)), 0),  # zero boxes
        ([[0, 0]], [[50, 50]], 1),  # box touching the corner
        ([[-100, -100]], [[20, 20]], 1),  # box fully outside the frame
        ([[199, 99]], [[300, 300]], 1),  # box larger than the frame
    ],
)
def test_crop_batch_edge_cases(centers, sizes, n):
    img = np.full((100, 200, 3), 7, np.uint8)
    crops, mats = crop_batch(img, centers, sizes, (48, 64))
    assert crops.shape == (n, 64, 48, 3) and mats.shape == (n, 2, 3)
    if n and np.asarray(centers)[0, 0] < -50:
        assert crops.max() == 0


def test_apply_affine_batched_matches_loop():
    rng = np.random.default_rng(0)
    mats = np.stack(
        [
            affine_matrix(rng.uniform(0, 100, 2), rng.uniform(10, 50, 2), (48, 64), rng.uniform(-30, 30))
            for _ in range(3)
        ]
    )
    pts = rng.uniform(0, 100, (3, 17, 2))
    batched = apply_affine(pts, mats)
    for i in range(3):
        np.testing.assert_allclose(batched[i], apply_affine(pts[i], mats[i]))


@pytest.mark.parametrize(
    "box,expected",
    [
        ([[-10, -10, 50, 50]], [[0, 0, 50, 50]]),
        ([[150, 80, 250, 120]], [[150, 80, 200, 100]]),
        ([[300, 300, 400, 400]], [[200, 100, 200, 100]]),
        (np.zeros((0, 4)), np.zeros((0, 4))),
    ],
)
def test_clip_boxes(box, expected):
    np.testing.assert_allclose(clip_boxes(box, (200, 100)), expected)


def test_keypoints_to_box_ignores_low_scores_and_handles_empty():
    kp = np.array([[[10, 20, 0.9], [30, 5, 0.8], [999, 999, 0.0]]])
    np.testing.assert_allclose(keypoints_to_box(kp, 0.1), [[10, 5, 30, 20]])
    assert np.isnan(keypoints_to_box(np.zeros((1, 3, 3)), 0.1)).all()
    assert keypoints_to_box(np.zeros((0, 17, 3))).shape == (0, 4)


@pytest.mark.parametrize("color", ["rgb", "bgr"])
def test_normalize_crops_matches_the_formula_per_channel(color):
    from okpose.core.spec import ModelSpec
    from okpose.core.topdown import normalize_crops

    spec = ModelSpec(name="s", version="1", input_wh=(24, 32), mean=(10, 120, 200), std=(50, 60, 70), color=color)
    crops = np.random.default_rng(0).integers(0, 256, (3, 32, 24, 3), dtype=np.uint8)
    x = normalize_crops(crops, spec)
    ordered = crops[..., ::-1] if color == "rgb" else crops  # channel c of the input is this image channel
    want = (ordered.astype(np.float64) - np.array(spec.mean)) / np.array(spec.std)
    assert x.shape == (3, 3, 32, 24) and x.dtype == np.float32 and x.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(x, want.transpose(0, 3, 1, 2), rtol=1e-5, atol=1e-5)
