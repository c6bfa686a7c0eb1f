"""okpose.core.prior: the previous-pose input of video models, shared by trainer, service and benchmark."""

import numpy as np

from okpose.core.geometry import affine_matrix
from okpose.core.heatmaps import decode, heatmap_to_input
from okpose.core.prior import VideoPrior, flip_prior, prior_from_image, render_prior
from okpose.core.skeleton import flip_index
from okpose.core.spec import ModelSpec

SPEC = ModelSpec(name="t", version="1", input_wh=(128, 192), extra=VideoPrior(sigma=2.0, threshold=0.3).to_extra())


def test_peaks_sit_at_the_keypoints_with_their_scores():
    rng = np.random.default_rng(0)
    xy = rng.uniform([24, 24], [104, 168], (2, 17, 2))  # away from the edges (DARK pads them)
    scores = rng.uniform(0.3, 1.0, (2, 17))
    scores[1, 5] = 0.0  # not drawn
    p = render_prior(xy, scores, SPEC.heatmap_wh, SPEC.heatmap_stride, 2.0)
    assert p.shape == (2, 17, 48, 32)
    coords, peak = decode(p)
    back = heatmap_to_input(coords, SPEC.heatmap_stride)
    drawn = scores > 0
    assert np.abs(back - xy)[drawn].max() < 1.0
    assert np.abs(peak - scores)[drawn].max() < 0.05
    assert p[1, 5].max() == 0.0


def test_image_poses_are_mapped_into_the_current_crop_and_thresholded():
    mat = affine_matrix(np.array([300.0, 200.0]), np.array([200.0, 300.0]), SPEC.input_wh, 0.0)
    kp = np.zeros((1, 17, 3))
    kp[0, :, :2] = [300.0, 200.0]  # the crop centre
    kp[0, :, 2] = 0.9
    kp[0, 3, 2] = 0.1  # below the spec's threshold
    p = prior_from_image(kp, mat[None], SPEC, VideoPrior.from_spec(SPEC))
    coords, peak = decode(p)
    xy = heatmap_to_input(coords, SPEC.heatmap_stride)
    assert np.abs(xy[0, 0] - [63.5, 95.5]).max() < 1.0  # pixel centres of a 128 x 192 crop
    assert p[0, 3].max() == 0.0 and peak[0, 0] > 0.85
    empty = prior_from_image(np.zeros((1, 17, 3)), mat[None], SPEC, VideoPrior.from_spec(SPEC))
    assert not empty.any()  # no previous pose: the first-frame input


def test_flipped_prior_is_the_prior_of_the_mirrored_pose():
    rng = np.random.default_rng(1)
    xy = rng.uniform([10, 10], [118, 182], (1, 17, 2))
    s = np.ones((1, 17))
    perm = flip_index(17, SPEC.flip_pairs)
    mirrored = xy[:, perm].copy()
    mirrored[..., 0] = 127 - mirrored[..., 0]
    a = flip_prior(render_prior(xy, s, SPEC.heatmap_wh, 4, 2.0), perm)
    b = render_prior(mirrored, s, SPEC.heatmap_wh, 4, 2.0)
    assert np.abs(a - b).max() < 1e-5


def test_per_frame_specs_have_no_prior():
    assert VideoPrior.from_spec(ModelSpec(name="t", version="1")) is None
    assert VideoPrior.from_spec(SPEC) == VideoPrior(sigma=2.0, threshold=0.3)
