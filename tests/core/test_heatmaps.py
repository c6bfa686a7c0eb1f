import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from okpose.core.heatmaps import decode, encode_gaussian, flip_heatmaps, heatmap_to_input, input_to_heatmap, merge_flip
from okpose.core.skeleton import COCO_FLIP_PAIRS, flip_index

W, H, S = 192, 256, 4
HW = (W // S, H // S)


@given(st.floats(5 * S, W - 5 * S), st.floats(5 * S, H - 5 * S), st.sampled_from(["dark", "quarter"]))
def test_decode_encode_within_quarter_pixel(x, y, refine):
    hm, w = encode_gaussian([[x, y, 2]], HW, S, sigma=2.0)
    coords, scores = decode(hm[None], refine=refine)
    err = np.abs(coords[0, 0] - input_to_heatmap([x, y], S))
    # dark is near-exact on Gaussians; quarter-offset is within a quarter pixel + half step
    assert err.max() <= (0.25 if refine == "dark" else 0.5)
    assert w[0] == 1 and scores[0, 0] > 0.5


def test_dark_beats_plain_argmax():
    rng = np.random.default_rng(1)
    errs = {"dark": [], "none": []}
    for _ in range(50):
        x, y = rng.uniform(30, 160), rng.uniform(30, 220)
        hm, _ = encode_gaussian([[x, y, 2]], HW, S)
        for mode in errs:
            c, _ = decode(hm[None], refine=mode)
            errs[mode].append(np.abs(c[0, 0] - input_to_heatmap([x, y], S)).max())
    assert np.mean(errs["dark"]) < 0.1 < np.mean(errs["none"])


@given(st.floats(-50, 300), st.floats(-50, 300))
def test_heatmap_coordinate_roundtrip(x, y):
    np.testing.assert_allclose(heatmap_to_input(input_to_heatmap([x, y], S), S), [x, y], atol=1e-9)


def test_unlabelled_and_far_outside_get_zero_weight():
    hm, w = encode_gaussian([[50, 50, 0], [-500, 40, 2], [60, 60, 2]], HW, S)
    np.testing.assert_array_equal(w, [0, 0, 1])
    assert hm[0].max() == 0 and hm[1].max() == 0 and hm[2].max() == pytest.approx(1, abs=0.2)


@given(st.integers(0, 2**31 - 1))
def test_flip_twice_is_identity(seed):
    hm = np.random.default_rng(seed).random((2, 17, 8, 6)).astype(np.float32)
    perm = flip_index(17, COCO_FLIP_PAIRS)
    np.testing.assert_array_equal(flip_heatmaps(flip_heatmaps(hm, perm), perm), hm)


def test_flip_of_mirrored_input_is_exact():
    """A keypoint mirrored in the input decodes back to the same place after un-flipping."""
    perm = flip_index(17, COCO_FLIP_PAIRS)
    kp = np.zeros((17, 3))
    kp[:, 2] = 2
    kp[:, 0] = np.linspace(30, 150, 17)
    kp[:, 1] = np.linspace(40, 200, 17)
    mirrored = kp.copy()
    mirrored[:, 0] = W - 1 - kp[:, 0]
    mirrored = mirrored[perm]
    hm, _ = encode_gaussian(kp, HW, S)
    hm_f, _ = encode_gaussian(mirrored, HW, S)
    merged = merge_flip(hm[None], hm_f[None], perm)
    np.testing.assert_allclose(merged[0], hm, atol=1e-5)


@pytest.mark.parametrize("shape", [(0, 17, 64, 48), (3, 0, 64, 48)])
def test_decode_empty(shape):
    c, s = decode(np.zeros(shape, np.float32))
    assert c.shape == (*shape[:2], 2) and s.shape == shape[:2]


def test_decode_rejects_wrong_rank():
    with pytest.raises(ValueError):
        decode(np.zeros((17, 64, 48)))
