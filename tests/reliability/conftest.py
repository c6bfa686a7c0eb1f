"""Reliability suite: `make reliability` runs the full version (5-minute soak, thousands of fuzz cases)
and prints a summary table; CI runs the short version as part of `make test`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.live import ServiceProcess
from tests.reliability.summary import FULL, REPORT


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
