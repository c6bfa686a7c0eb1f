"""Model loading: providers, clear errors for missing/corrupt/undescribed models."""

import onnx
import pytest
from onnx import TensorProto, helper

from okpose.core.runtime import ModelLoadError, choose_providers, open_session
from okpose.pose import load_pose_model
from service.settings import DEFAULT_POSE_MODEL


def test_auto_providers_on_cpu_machine():
    assert choose_providers("auto")[-1] == "CPUExecutionProvider"
    with pytest.raises(ModelLoadError, match="not available"):
        choose_providers("NoSuchExecutionProvider")


def test_missing_model_names_the_file(tmp_path):
    with pytest.raises(ModelLoadError, match="nope.onnx"):
        open_session(tmp_path / "nope.onnx")


def test_corrupt_model_names_the_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(ModelLoadError, match="bad.onnx"):
        open_session(bad)


def test_model_without_spec_metadata_is_refused(tmp_path):
    node = helper.make_node("Identity", ["input"], ["heatmaps"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    path = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(ModelLoadError, match="okpose.spec"):
        load_pose_model(path)


def test_embedded_model_describes_itself():
    est = load_pose_model(DEFAULT_POSE_MODEL)
    assert est.spec.num_keypoints == 17 and est.spec.keypoint_names[0] == "nose"
    w, h = est.spec.input_wh
    shape = open_session(DEFAULT_POSE_MODEL).get_inputs()[0].shape
    assert shape[2:] == [h, w] and not isinstance(shape[0], int)  # dynamic batch


def test_cli_fails_fast_naming_the_missing_model(tmp_path):
    import subprocess
    import sys

    missing = tmp_path / "missing_student.onnx"
    r = subprocess.run(
        [sys.executable, "-m", "service", "--port", "1", "--pose-model", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1
    assert "missing_student.onnx" in r.stderr and "Traceback" not in r.stderr


def test_require_gpu_refuses_to_start_on_cpu(tmp_path):
    """POSE_REQUIRE_GPU=1 (the GPU compose service sets it): a CPU-only ONNX Runtime is refused at
    startup with the reason, instead of serving silently on the CPU."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "POSE_REQUIRE_GPU": "1", "POSE_PORT": "1"}
    r = subprocess.run([sys.executable, "-m", "service"], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 1
    assert "POSE_REQUIRE_GPU" in r.stderr and "CPUExecutionProvider" in r.stderr and "Traceback" not in r.stderr
