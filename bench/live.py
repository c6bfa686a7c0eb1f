"""The real service in its own process for benchmarks and tests: ``python -m service`` (or another entry
module) with ``POSE_*`` settings, on a loopback port, for signals, restarts, CPU time and memory. It starts
the service as a user would; nothing here imports the web package.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Loopback:
    """The service's base URLs on 127.0.0.1:``port``."""

    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream"


class ServiceProcess(_Loopback):
    """``python -m MODULE ARGS`` with ``POSE_*`` settings from ``env`` (port chosen here); logs go to a
    file (an unread pipe would fill up and stall the server)."""

    def __init__(self, *args: str, module: str = "service", port: int | None = None, **env: str):
        self.port = port or free_port()
        self.cmd = [sys.executable, "-m", module, *args]
        self.env = {**os.environ, "OMP_NUM_THREADS": "1", "POSE_THREADS": "1", "POSE_WORKERS": "2",
                    "POSE_MAX_FPS": "1000", "POSE_HOST": "127.0.0.1", "POSE_PORT": str(self.port), **env}  # fmt: skip
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 120) -> ServiceProcess:
        self.log = tempfile.NamedTemporaryFile("w+", prefix="okpose-service-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(self.cmd, cwd=REPO_ROOT, env=self.env, text=True, stdout=self.log,
                                     stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited: {Path(self.log.name).read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.http}/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("service did not become ready")

    def _proc_file(self, name: str) -> str:
        assert self.proc is not None
        return Path(f"/proc/{self.proc.pid}/{name}").read_text()

    def rss_mb(self) -> float:
        for line in self._proc_file("status").splitlines():
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        fields = self._proc_file("stat").rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
