import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from okpose.core.oks import box_iou, oks, oks_matrix, pose_nms


def _pose(seed=0):
    rng = np.random.default_rng(seed)
    kp = np.zeros((17, 3))
    kp[:, :2] = rng.uniform(100, 300, (17, 2))
    kp[:, 2] = 1
    return kp


@given(st.integers(0, 1000))
def test_oks_with_itself_is_one(seed):
    p = _pose(seed)
    assert oks(p, p[None], 200 * 200)[0] == pytest.approx(1.0)


def test_oks_falls_as_noise_grows():
    p = _pose()
    rng = np.random.default_rng(3)
    noise = rng.normal(size=(17, 2))
    values = [oks(p, (p[:, :2] + s * noise)[None], 150 * 150)[0] for s in (0, 2, 5, 10, 20, 40)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))
    assert values[-1] < 0.3


def test_oks_counts_only_visible():
    p = _pose()
    q = p.copy()
    q[0, :2] += 500
    vis = np.ones(17, bool)
    vis[0] = False
    assert oks(p, q[None], 100.0**2, visible=vis)[0] == pytest.approx(1.0)
    assert oks(p, q[None], 100.0**2)[0] < 1.0


@pytest.mark.parametrize(
    "a,b,expected",
    [
        ([[0, 0, 10, 10]], [[0, 0, 10, 10]], [[1.0]]),
        ([[0, 0, 10, 10]], [[5, 0, 15, 10]], [[1 / 3]]),
        ([[0, 0, 10, 10]], [[20, 20, 30, 30]], [[0.0]]),
        ([[0, 0, 0, 0]], [[0, 0, 0, 0]], [[0.0]]),
    ],
)
def test_box_iou_table(a, b, expected):
    np.testing.assert_allclose(box_iou(a, b), expected)


def test_box_iou_empty():
    assert box_iou(np.zeros((0, 4)), [[0, 0, 1, 1]]).shape == (0, 1)


def test_pose_nms_suppresses_duplicates_keeps_distinct():
    a = _pose(1)
    dup = a.copy()
    dup[:, :2] += 1.0
    far = a.copy()
    far[:, :2] += 400
    kp = np.stack([dup, a, far])
    keep = pose_nms(kp, [0.8, 0.9, 0.7], [200.0**2] * 3, threshold=0.5)
    assert keep.tolist() == [1, 2]
    assert pose_nms(np.zeros((0, 17, 3)), [], []).tolist() == []


def test_oks_matrix_shape_and_diag():
    poses = np.stack([_pose(i) for i in range(3)])
    m = oks_matrix(poses, poses, [150.0**2] * 3)
    assert m.shape == (3, 3)
    np.testing.assert_allclose(np.diag(m), 1.0)
    assert (m[~np.eye(3, dtype=bool)] < 1).all()
