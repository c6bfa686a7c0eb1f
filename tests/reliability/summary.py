"""The reliability suite's figures: tests ``report`` them, conftest prints the summary table."""

from __future__ import annotations

import os

FULL = os.environ.get("RELIABILITY_FULL") == "1"
REPORT: dict[str, dict[str, object]] = {}


def report(name: str, **figures: object) -> None:
    """Record figures for the summary table."""
    REPORT[name] = figures
