"""Reliability suite: `make reliability` runs the full version (5-minute soak, thousands of fuzz cases)
and prints a summary table; CI runs the short version as part of `make test`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.live import ServiceProcess  # noqa: F401  (re-exported for the reliability tests)
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


@pytest.fixture
def service_process() -> Iterator[ServiceProcess]:
    s = ServiceProcess().start()
    yield s
    s.stop()
