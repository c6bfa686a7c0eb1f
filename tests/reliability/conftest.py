"""Reliability suite: `make reliability` runs the full version (5-minute soak, thousands of fuzz cases)
and prints a summary table; CI runs the short version as part of `make test`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import multi_frames, server, val_image  # noqa: F401  (shared fixtures)

FULL = os.environ.get("RELIABILITY_FULL") == "1"
ROOT = Path(__file__).resolve().parents[2]
REPORT: dict[str, dict[str, object]] = {}


def report(name: str, **figures: object) -> None:
    """Record figures for the summary table."""
    REPORT[name] = figures


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ANN001, ARG001
    if not REPORT:
        return
    tr = terminalreporter
    tr.section(f"reliability summary ({'full' if FULL else 'short'})")
    for name, figs in REPORT.items():
        tr.write_line(f"{name:34s} " + "  ".join(f"{k}={v}" for k, v in figs.items()))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServiceProcess:
    """``python -m service`` in its own process (for signals, restarts and memory)."""

    def __init__(self, port: int | None = None, **env: str):
        self.port = port or free_port()
        self.env = {
            **os.environ,
            "POSE_THREADS": "1",
            "POSE_WORKERS": "2",
            "POSE_MAX_FPS": "1000",
            "POSE_HOST": "127.0.0.1",
            "POSE_PORT": str(self.port),
            **env,
        }
        self.proc: subprocess.Popen[str] | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream"

    def start(self) -> ServiceProcess:
        # logs go to a file: an unread pipe would fill up and stall the server
        self.log = tempfile.NamedTemporaryFile("w+", prefix="okpose-service-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service"],
            cwd=ROOT,
            env=self.env,
            text=True,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited: {Path(self.log.name).read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.http}/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("service did not become ready")

    def rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


@pytest.fixture
def service_process() -> Iterator[ServiceProcess]:
    s = ServiceProcess().start()
    yield s
    s.stop()
