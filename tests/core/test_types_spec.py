import numpy as np
import pytest

from okpose.core.spec import DETECTOR_SPEC_KEY, SPEC_KEY, DetectorSpec, ModelSpec
from okpose.core.types import Detections, Poses, TrackedPoses


def test_spec_roundtrips_through_metadata():
    spec = ModelSpec(name="s", version="1.2", input_wh=(128, 160), mean=(1, 2, 3), std=(4, 5, 6), extra={"a": "b"})
    meta = spec.to_metadata()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    assert ModelSpec.from_metadata(meta) == spec
    assert spec.heatmap_wh == (32, 40)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input_wh": (190, 256)},
        {"color": "yuv"},
        {"limbs": ((0, 17),)},
        {"std": (1.0, 0.0, 1.0)},
    ],
)
def test_spec_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        ModelSpec(name="x", version="0", **kwargs)


def test_spec_missing_metadata_is_clear():
    with pytest.raises(ValueError, match=SPEC_KEY):
        ModelSpec.from_metadata({"name": "x"})


def test_result_objects_check_shapes():
    assert len(Detections.empty()) == 0 and len(Poses.empty(17)) == 0
    with pytest.raises(ValueError):
        Detections(np.zeros((2, 4)), np.zeros(3))
    with pytest.raises(ValueError):
        Poses(np.zeros((2, 17, 2)), np.zeros((2, 4)), np.zeros(2))
    p = Poses(np.zeros((2, 17, 3)), np.zeros((2, 4)), np.ones(2))
    assert len(p.subset([1])) == 1
    with pytest.raises(ValueError):
        TrackedPoses(p, np.array([1]))
    with pytest.raises(ValueError):
        p.keypoints[0, 0, 0] = 1.0  # frozen: arrays are read-only


def test_detector_spec_roundtrips_through_metadata():
    spec = DetectorSpec(
        name="d",
        version="1",
        input_size=416,
        class_names=("cat", "person"),
        person_class=1,
        strides=(8, 16, 32, 64),
        precision="int8",
        source="src",
        license="Apache-2.0",
    )
    meta = spec.to_metadata()
    assert DETECTOR_SPEC_KEY in meta and SPEC_KEY not in meta
    assert DetectorSpec.from_metadata(meta) == spec


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"input_size": 330}, "multiple"),
        ({"person_class": 3}, "person_class"),
        ({"color": "yuv"}, "color"),
        ({"input_format": "float-nhwc"}, "input_format"),
        ({"kind": "yolo"}, "kind"),
        ({"std": (1.0, 0.0, 1.0)}, "std"),
    ],
)
def test_detector_spec_rejects_bad_values(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        DetectorSpec(name="d", version="1", **kwargs)


def test_detector_spec_rejects_missing_and_unknown_metadata():
    with pytest.raises(ValueError, match=DETECTOR_SPEC_KEY):
        DetectorSpec.from_metadata({"name": "x"})
    meta = DetectorSpec(name="d", version="1").to_metadata()
    import json

    raw = json.loads(meta[DETECTOR_SPEC_KEY])
    raw["anchors"] = 9
    with pytest.raises(ValueError, match="unknown"):
        DetectorSpec.from_metadata({DETECTOR_SPEC_KEY: json.dumps(raw)})
