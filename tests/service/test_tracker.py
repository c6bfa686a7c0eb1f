"""Tracker scenarios (synthetic poses with known identities) and unit behaviour."""

import numpy as np
import pytest

from okpose.core.types import Poses
from okpose.track.matching import Weights, keypoint_similarity
from okpose.track.tracker import PoseFlowTracker, TrackerConfig

# a standing person in a unit box (x right, y down), COCO order
TEMPLATE = np.array(
    [
        [0.5, 0.08],
        [0.53, 0.06],
        [0.47, 0.06],
        [0.57, 0.07],
        [0.43, 0.07],
        [0.68, 0.22],
        [0.32, 0.22],
        [0.75, 0.38],
        [0.25, 0.38],
        [0.78, 0.52],
        [0.22, 0.52],
        [0.62, 0.55],
        [0.38, 0.55],
        [0.63, 0.76],
        [0.37, 0.76],
        [0.64, 0.97],
        [0.36, 0.97],
    ]
)


def person(x, y, w=80, h=200, arms_up=False, noise=0.0, rng=None):
    kp = TEMPLATE.copy()
    if arms_up:
        kp[7:11, 1] = [0.05, 0.05, -0.1, -0.1]
    xy = kp * [w, h] + [x, y]
    if noise:
        xy = xy + rng.normal(0, noise, xy.shape)
    kps = np.concatenate([xy, np.full((17, 1), 0.9)], axis=1)
    return kps, np.array([x, y, x + w, y + h], float)


def frame(*people):
    if not people:
        return Poses.empty(17)
    kps, boxes = zip(*people, strict=True)
    return Poses(np.stack(kps), np.stack(boxes), np.full(len(people), 0.9))


def ids_by_x(out):
    """Track ids ordered by the persons' x position."""
    order = np.argsort(out.poses.boxes[:, 0])
    return out.track_ids[order].tolist()


def test_steady_walk_keeps_one_id():
    t = PoseFlowTracker()
    ids = {int(t.update(frame(person(10 + 6 * i, 50)), i).track_ids[0]) for i in range(60)}
    assert ids == {1}


@pytest.mark.parametrize("speed", [4, 8, 15])
def test_two_people_crossing_keep_their_ids(speed):
    """A walks right (arms down), B (further away, arms up) walks left; their boxes pass through each other."""
    t = PoseFlowTracker()
    first = last = None
    for i in range(0, 400 // speed):
        ax, bx = 20 + speed * i, 420 - speed * i
        out = t.update(frame(person(ax, 60), person(bx, 90, w=70, h=170, arms_up=True)), i)
        a_id = out.track_ids[np.argmin(np.abs(out.poses.boxes[:, 0] - ax))]
        first = first if first is not None else a_id
        last = a_id
        assert len(set(out.track_ids.tolist())) == 2
    assert first == last
    assert sorted(tr.id for tr in t.tracks) == [1, 2]  # no extra track was opened


def test_short_occlusion_gets_the_same_id_back():
    t = PoseFlowTracker(TrackerConfig(max_age_s=1.0))
    for i in range(15):
        assert t.update(frame(person(10 + 5 * i, 50), person(400, 50)), i).track_ids.tolist() == [1, 2]
    for i in range(15, 27):  # person 1 hidden for 12 frames (< L) while still walking
        assert t.update(frame(person(400, 50)), i).track_ids.tolist() == [2]
    out = t.update(frame(person(10 + 5 * 27, 50), person(400, 50)), 27)
    assert ids_by_x(out) == [1, 2]


def test_long_absence_ends_the_track():
    t = PoseFlowTracker(TrackerConfig(max_age_s=5.5 / 30))
    t.update(frame(person(100, 50)), 0)
    for i in range(1, 8):
        t.update(frame(), i)
    assert t.update(frame(person(100, 50)), 8).track_ids.tolist() == [2]


def test_concurrent_trackers_are_independent():
    a, b = PoseFlowTracker(), PoseFlowTracker()
    a.update(frame(person(0, 0), person(200, 0), person(400, 0)), 0)
    assert b.update(frame(person(0, 0)), 0).track_ids.tolist() == [1]  # not 4: no shared counter
    assert a.update(frame(person(600, 0)), 1).track_ids.tolist() == [4]


def test_empty_frames_and_reset():
    t = PoseFlowTracker()
    assert len(t.update(frame(), 0)) == 0
    assert t.update(frame(person(0, 0)), 1).track_ids.tolist() == [1]
    assert len(t.update(frame(), 2)) == 0
    assert t.update(frame(person(2, 0)), 3).track_ids.tolist() == [1]
    t.reset()
    assert len(t) == 0 and t.update(frame(person(2, 0)), 0).track_ids.tolist() == [1]


def test_pose_nms_removes_duplicates_of_one_person():
    t = PoseFlowTracker()
    out = t.update(frame(person(100, 50), person(101, 51), person(400, 50)), 0)
    assert len(out) == 2


def test_smoothing_reduces_jitter_with_little_lag():
    rng = np.random.default_rng(0)
    smooth, raw = PoseFlowTracker(), PoseFlowTracker()
    err_s, err_r = [], []
    for i in range(90):
        x = 10 + 3 * i  # constant velocity: 3 px per frame
        truth = person(x, 50)[0][:, :2]
        f = frame(person(x, 50, noise=3.0, rng=rng))
        err_s.append(np.abs(smooth.update(f, i, smoothing=True).poses.keypoints[0, :, :2] - truth).mean())
        err_r.append(np.abs(raw.update(f, i, smoothing=False).poses.keypoints[0, :, :2] - truth).mean())
    assert np.mean(err_s[20:]) < 0.8 * np.mean(err_r[20:])  # jitter down
    assert max(err_r) == pytest.approx(np.abs(f.keypoints[0, :, :2] - truth).mean(), abs=5)  # raw is raw
    # lag: on a noise-free walk the smoothed pose trails the truth by at most one frame's motion
    t = PoseFlowTracker()
    for i in range(60):
        out = t.update(frame(person(10 + 3 * i, 50)), i, smoothing=True)
    lag = (person(10 + 3 * 59, 50)[0][:, 0] - out.poses.keypoints[0, :, 0]).mean()
    assert 0 <= lag <= 3.0


def test_keypoint_similarity_table():
    a, _ = person(0, 0)
    far, _ = person(300, 0)
    sim = keypoint_similarity(np.stack([a]), np.stack([a, far]), np.array([10.0]), 7, 0.2)
    assert sim[0, 0] == pytest.approx(1.0) and sim[0, 1] == 0.0
    low = a.copy()
    low[:, 2] = 0.0
    assert np.isnan(keypoint_similarity(np.stack([a]), np.stack([low]), np.array([10.0]), 7, 0.2)[0, 0])
    # visible-only: a partly visible person (legs hidden) that matches on what is visible scores 1, not
    # the 7-best mean padded with hidden keypoints' zeros
    upper = a.copy()
    upper[11:, 2] = 0.0
    assert keypoint_similarity(np.stack([a]), np.stack([upper]), np.array([10.0]), 17, 0.2)[0, 0] == pytest.approx(1.0)


def test_smoothing_steps_on_the_frames_timestamps():
    """The One-Euro filter's dt is the time between the frames, not a fixed 1/30 s: after a 12 px move
    one second later the output is almost where the person is; 1/30 s later it still lags."""
    out = {}
    for dt in (1.0, 1 / 30):
        t = PoseFlowTracker()
        for i in range(5):
            t.update(frame(person(100, 50)), i, timestamp=i * dt)
        out[dt] = t.update(frame(person(112, 50)), 5, timestamp=5 * dt).poses.keypoints[0, :, 0]
    target = person(112, 50)[0][:, 0]
    assert np.abs(out[1.0] - target).mean() < 2.5
    assert np.abs(out[1 / 30] - target).mean() > 4.0


def test_keypoint_threshold_decides_which_keypoints_match():
    """Faint keypoints (0.15) count with threshold 0.1 and are ignored with 0.3: a person whose box
    moves a lot between frames keeps the id only when its keypoints count."""
    ids = {}
    for thr in (0.1, 0.3):
        t = PoseFlowTracker()
        kps, box = person(100, 50)
        kps[:, 2] = 0.15
        t.update(Poses(kps[None], box[None], [0.9]), 0, kp_threshold=thr)
        kps2, box2 = kps.copy(), box + [45, 0, 45, 0]  # the box jumps (detector noise), the body moves 3 px
        kps2[:, 0] += 3
        ids[thr] = t.update(Poses(kps2[None], box2[None], [0.9]), 1, kp_threshold=thr).track_ids.tolist()
    assert ids == {0.1: [1], 0.3: [2]}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adjacent_people_with_noisy_boxes_are_told_apart_by_pose(seed):
    """Two people side by side (boxes overlap by half) stand still; the detector's boxes jitter by
    ±35 % of their width, the keypoints are accurate. Box IoU alone swaps identities; PoseFlow's
    keypoint similarity keeps them. (Removing the pose term turns this test red.)"""
    rng = np.random.default_rng(seed)

    def switches(cfg):
        t, prev, n = PoseFlowTracker(cfg), None, 0
        for i in range(120):
            people = []
            for x, arms in ((100, False), (140, True)):
                kps, box = person(x, 50, arms_up=arms, noise=1.0, rng=rng)
                people.append((kps, box + np.repeat(rng.uniform(-28, 28, 2), 2) * [1, 0, 1, 0][:4]))
            out = t.update(frame(*people), i, smoothing=False)
            ids = out.track_ids[np.argsort(out.poses.keypoints[:, 0, 0])].tolist()  # ordered by the true nose x
            n += prev is not None and ids != prev
            prev = ids
        return n

    assert switches(TrackerConfig()) == 0
    box_only = Weights(box=1.0, pose=0.0, appearance=0.0)
    assert switches(TrackerConfig(weights=box_only, lost_weights=box_only)) > 0  # the scenario needs the pose term


@pytest.mark.parametrize("stops", [True, False], ids=["stops-while-hidden", "walks-on-while-hidden"])
def test_hidden_person_keeps_the_id_whether_stopping_or_walking_on(stops):
    """Walks at 180 px/s, hidden for 1/3 s (10 frames at 30 fps), then found where it stopped or where
    it walked to: both keep the id. Without the motion model the walker comes back as someone new."""

    def run(cfg):
        t = PoseFlowTracker(cfg)
        for i in range(20):
            t.update(frame(person(100 + 6 * i, 50)), i, smoothing=False)
        for i in range(20, 30):
            t.update(frame(), i)
        x = 100 + 6 * 19 if stops else 100 + 6 * 30
        return t.update(frame(person(x, 50)), 30, smoothing=False).track_ids.tolist()

    assert run(TrackerConfig()) == [1]
    if not stops:
        assert run(TrackerConfig(motion=False)) == [2]


def _scene(people):
    """An image with each person's torso painted in its colour (the appearance cue's input)."""
    img = np.full((400, 800, 3), 90, np.uint8)
    for kps, colour in people:
        t = kps[[5, 6, 12, 11], :2]
        x1, y1 = t.min(0).astype(int)
        x2, y2 = t.max(0).astype(int)
        img[y1:y2, x1:x2] = colour
    return img


def test_reidentification_by_appearance_after_a_long_gap():
    """Two people (red and blue shirts) stand still, both are hidden for 1 s, and come back 150 px
    away, the red one equally far from where each was: nothing but the shirt colour says who is who.
    With the appearance cue both keep their ids; without it they come back as new people."""
    red, blue = (40, 40, 220), (220, 60, 40)

    def run(cfg):
        t = PoseFlowTracker(cfg)
        a, b = person(100, 50), person(400, 50)
        for i in range(10):
            t.update(frame(a, b), i, image=_scene([(a[0], red), (b[0], blue)]), smoothing=False)
        for i in range(10, 40):
            t.update(frame(), i)
        a2, b2 = person(250, 50), person(550, 50)
        out = t.update(frame(a2, b2), 40, image=_scene([(a2[0], red), (b2[0], blue)]), smoothing=False)
        return ids_by_x(out)

    assert run(TrackerConfig()) == [1, 2]
    assert run(TrackerConfig(appearance=False)) == [3, 4]


def partial(kps, box, keep=range(5, 13), rng=None):
    """An upper-body-only duplicate of a person (a detector box on part of the same body): the joints
    outside it are low-confidence guesses squeezed into the partial box, as a top-down model gives."""
    kp = kps.copy()
    xy = kp[list(keep), :2]
    lo, hi = xy.min(0), xy.max(0)
    lost = [k for k in range(17) if k not in keep]
    kp[lost, :2] = (rng or np.random.default_rng(0)).uniform(lo, hi, (len(lost), 2))
    kp[lost, 2] = 0.1
    return kp, np.array([*lo, *hi])


def test_a_partial_duplicate_of_a_tracked_person_opens_no_track():
    """A second, partial pose on a person already matched this frame is a duplicate, not a newcomer
    (``birth_nms_oks``: OKS over the joints both poses are confident in); counted and left out."""
    a = person(100, 50)
    t = PoseFlowTracker()
    t.update(frame(a), 0)
    out = t.update(frame(a, partial(*a)), 1)
    assert out.track_ids.tolist() == [1] and t.dropped["duplicate"] == 1
    off = PoseFlowTracker(TrackerConfig(birth_nms_oks=1.01))  # the rule off: the duplicate becomes a person
    off.update(frame(a), 0)
    assert sorted(off.update(frame(a, partial(*a)), 1).track_ids.tolist()) == [1, 2]


@pytest.mark.parametrize("flow_nms", [True, False])
def test_two_flows_on_one_person_are_merged_into_the_older(flow_nms):
    """Pose-flow NMS over time: a second track that converges onto a tracked person and stays on it
    for ``flow_nms_frames`` frames is merged into the older track (it ends; its pose is not reported).
    Per-frame pose NMS is off here so only the flow rule can remove the duplicate."""
    cfg = TrackerConfig(nms_oks=1.01, flow_nms_oks=0.5 if flow_nms else 1.01, appearance=False)
    t = PoseFlowTracker(cfg)
    rng = np.random.default_rng(0)
    xs = [260, 240, 220, 200, 180, 160, 140, 120, 104, 104, 104, 104, 104]  # b walks onto a and stays
    outs = [t.update(frame(person(100, 50, noise=1.0, rng=rng), person(x, 52, noise=1.0, rng=rng)), i)
            for i, x in enumerate(xs)]  # fmt: skip
    assert sorted(outs[0].track_ids.tolist()) == [1, 2]
    if flow_nms:
        assert outs[-1].track_ids.tolist() == [1] and t.dropped["merged"] == 1
    else:
        assert sorted(outs[-1].track_ids.tolist()) == [1, 2]


@pytest.mark.parametrize("fresh_first", [True, False])
def test_a_joint_optimum_cannot_trade_away_the_pose_a_track_just_followed(fresh_first):
    """Track 1 followed person a on the previous frame and a stands still; a stale, narrower track 2
    (unseen for a frame) overlaps a, and a second person appears beside a. The joint Hungarian optimum
    trades a's pose to track 2 and hands track 1 the newcomer; fresh-first matching keeps a on 1."""
    cfg = TrackerConfig(fresh_first=fresh_first, nms_oks=1.01, birth_nms_oks=1.01, flow_nms_oks=1.01,
                        appearance=False)  # fmt: skip
    t = PoseFlowTracker(cfg)
    t.update(frame(person(100, 50), person(100, 50, w=60)), 0)  # track 1: a; track 2: a narrow one
    t.update(frame(person(100, 50)), 1)  # track 2 unseen
    out = t.update(frame(person(100, 50), person(110, 50, w=70)), 2)
    left_edges = out.poses.boxes[:, 0].round().astype(int).tolist()
    ids = dict(zip(left_edges, out.track_ids.tolist(), strict=True))
    assert ids[100] == (1 if fresh_first else 2)


def test_fresh_first_assignment_keeps_best_fits_and_lets_better_stale_tracks_win():
    from okpose.track.matching import assign, assign_fresh_first

    scores = np.array([[1.0, 0.6], [0.7, 0.0]])  # row 0 fresh; the joint optimum trades it onto column 1
    assert sorted(zip(*assign(scores, 0.3), strict=True)) == [(0, 1), (1, 0)]
    assert sorted(zip(*assign_fresh_first(scores, np.array([True, False]), 0.3), strict=True)) == [(0, 0)]
    better_stale = np.array([[0.6], [0.9]])  # a stale track that fits a pose better still gets it
    assert list(zip(*assign_fresh_first(better_stale, np.array([True, False]), 0.3), strict=True)) == [(1, 0)]
