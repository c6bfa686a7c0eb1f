"""python -m trainer {train,evaluate,export,compare} — see README "Training"."""

from __future__ import annotations

import argparse
import json
import logging
import sys

USAGE = """\
python -m trainer train    --config trainer/configs/X.yaml [section.key=value ...]
python -m trainer evaluate (--checkpoint runs/X/final.pt | --onnx model.onnx [--config X.yaml]) [--no-flip]
python -m trainer export   --checkpoint runs/X/final.pt --out models/X.onnx [--branch N|best]
python -m trainer compare  --config trainer/configs/X.yaml --seeds 0 1 [--out docs/results.md] [key=value ...]
python -m trainer card     --onnx models/X.onnx [--out models/X.card.json]   # held-out metrics + latency
"""


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(prog="python -m trainer", usage=USAGE)
    sub = p.add_subparsers(dest="cmd")
    t = sub.add_parser("train")
    t.add_argument("--config", default=None)
    t.add_argument("overrides", nargs="*")
    e = sub.add_parser("evaluate")
    e.add_argument("--checkpoint")
    e.add_argument("--onnx")
    e.add_argument("--config", default=None)
    e.add_argument("--no-flip", action="store_true")
    e.add_argument("--json", default=None, help="write metrics here")
    e.add_argument("overrides", nargs="*")
    x = sub.add_parser("export")
    x.add_argument("--checkpoint", required=True)
    x.add_argument("--out", required=True)
    x.add_argument("--branch", default="0")
    x.add_argument("--version", default=None)
    c = sub.add_parser("compare")
    c.add_argument("--config", required=True)
    c.add_argument("--seeds", type=int, nargs="+", default=[0])
    c.add_argument("--out", default="docs/results.md")
    c.add_argument("--variants", nargs="+", default=None)
    c.add_argument("overrides", nargs="*")
    k = sub.add_parser("card")
    k.add_argument("--onnx", required=True)
    k.add_argument("--out", default=None, help="card JSON (default: next to the ONNX, .card.json)")
    k.add_argument("--config", default=None)
    k.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)
    if args.cmd is None:
        print(USAGE, file=sys.stderr)
        return 2

    from trainer.config import load_config

    if args.cmd == "train":
        from trainer.loop import train

        run = train(load_config(args.config, args.overrides))
        print(run)
    elif args.cmd == "evaluate":
        from trainer.cli_eval import run_evaluate

        metrics = run_evaluate(args.checkpoint, args.onnx, args.config, args.overrides, not args.no_flip)
        text = json.dumps(metrics, indent=2)
        print(text)
        if args.json:
            with open(args.json, "w") as f:
                f.write(text)
    elif args.cmd == "export":
        from trainer.export import export_onnx

        print(json.dumps(export_onnx(args.checkpoint, args.out, args.branch, args.version), indent=2))
    elif args.cmd == "compare":
        from trainer.compare import compare

        compare(args.config, args.seeds, args.out, args.overrides, args.variants)
    elif args.cmd == "card":
        from pathlib import Path

        from trainer.card import write_card

        out = args.out or str(Path(args.onnx).with_suffix(".card.json"))
        print(json.dumps(write_card(args.onnx, out, args.config, args.overrides), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
