"""python -m bench.compare_tracking A.json B.json [--tracker NAME]: two ``bench.tracking`` runs side by side
(the same videos and inputs, e.g. with and without an option), per run and summed, as a markdown table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

KEYS = ("num_switches", "num_false_positives", "num_misses", "mota", "idf1")


def table(a: dict, b: dict, tracker: str, names: tuple[str, str]) -> str:
    def rows(d: dict) -> dict[tuple[str, str], dict]:
        return {(r["video"], r["input"]): r for r in d["rows"] if r["tracker"] == tracker}

    ra, rb = rows(a), rows(b)
    common = [k for k in ra if k in rb]
    if not common:
        raise SystemExit(f"no run of {tracker!r} in both files")
    head = (f"| video | input | ID switches ({names[0]} / {names[1]}) | false positives | misses | MOTA | IDF1 |\n"
            "|---|---|---|---|---|---|---|\n")  # fmt: skip
    lines = []
    for k in common:
        x, y = ra[k], rb[k]
        cells = [f"{x[m]:.0f} / {y[m]:.0f}" for m in KEYS[:3]] + [f"{x[m]:.3f} / {y[m]:.3f}" for m in KEYS[3:]]
        lines.append(f"| {k[0]} | {k[1]} | " + " | ".join(cells) + " |")
    sums = [f"{sum(ra[k][m] for k in common):.0f} / {sum(rb[k][m] for k in common):.0f}" for m in KEYS[:3]]
    lines.append("| **all** | (summed) | " + " | ".join(sums) + " | | |")
    return head + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.compare_tracking")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--tracker", default="PoseFlow (ours)")
    p.add_argument("--names", nargs=2, default=None, help="column labels (default: the file names)")
    args = p.parse_args(argv)
    names = tuple(args.names or (args.a.stem, args.b.stem))
    print(table(json.loads(args.a.read_text()), json.loads(args.b.read_text()), args.tracker, names))  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
