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
python -m trainer peers    --onnx models/X.onnx [--served]   # students vs MoveNet teachers, bootstrap CIs
python -m trainer quantize --onnx models/X.onnx --out models/X-int8.onnx [--calibration DIR] [--step N]
python -m trainer label    VIDEOS/IMAGES --out DIR [--every N] [--frames N]   # teacher labels as COCO json
python -m trainer teach    [--out data/diverse] [--every 2] [--split-only]   # people-diverse teacher ensemble
python -m trainer unseen   [--onnx models/X.onnx ...] [--root data/diverse] [--out docs/unseen]   # scene-held-out check
python -m trainer distill  [--name N] [key=value ...]   # Lightning-start student: Thunder labels + keep terms
python -m trainer export-distill --checkpoint runs/N/final.pt [--wise A] | --pretrained --out X.onnx [--flip]
python -m trainer video    --config trainer/configs/video.yaml [section.key=value ...]   # DKD-style video mode
python -m trainer export-video --checkpoint runs/X/final.pt --out models/X.onnx [--name NAME] [--version V]
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
    x.add_argument("--name", default=None, help="model name in the spec (default: the checkpoint's)")
    c = sub.add_parser("compare")
    c.add_argument("--config", required=True)
    c.add_argument("--seeds", type=int, nargs="+", default=[0])
    c.add_argument("--out", default="docs/results.md")
    c.add_argument("--variants", nargs="+", default=None)
    c.add_argument("--render-only", action="store_true", help="only read finished runs back and write the table")
    c.add_argument("overrides", nargs="*")
    k = sub.add_parser("card")
    k.add_argument("--onnx", required=True)
    k.add_argument("--out", default=None, help="card JSON (default: next to the ONNX, .card.json)")
    k.add_argument("--config", default=None)
    k.add_argument("overrides", nargs="*")
    q = sub.add_parser("peers", help="students and MoveNet teachers on the same val persons")
    q.add_argument("--onnx", nargs="*", default=[], help="student ONNX files")
    q.add_argument("--no-teachers", action="store_true")
    q.add_argument("--served", action="store_true", help="also the served configuration of each student")
    q.add_argument("--ann", default=None, help="COCO keypoints json (default: realpose-lab val)")
    q.add_argument("--images", default=None)
    q.add_argument("--out", default="docs/peers", help="writes OUT.json and OUT.md")
    qz = sub.add_parser("quantize", help="static int8 copy of an exported student (spec kept)")
    qz.add_argument("--onnx", required=True)
    qz.add_argument("--out", required=True)
    qz.add_argument(
        "--calibration",
        default=None,
        help="a COCO keypoint folder (annotations.json + images/) to calibrate on (default: realpose-lab train)",
    )
    qz.add_argument("--step", type=int, default=20, help="every step-th person of the calibration set")
    lb = sub.add_parser("label", help="teacher-label videos and images into COCO keypoints json")
    lb.add_argument("inputs", nargs="+", help="video files, image files or folders")
    lb.add_argument("--out", required=True)
    lb.add_argument("--every", type=int, default=1, help="label every n-th video frame")
    lb.add_argument("--frames", type=int, default=0, help="only each video's first N frames (0: all)")
    lb.add_argument("--max-side", type=int, default=800, help="saved frames' long side")
    th = sub.add_parser("teach", help="teacher-ensemble labels for people-diverse (cached, resumable), by scene")
    th.add_argument("--out", default="data/diverse")
    th.add_argument("--every", type=int, default=2, help="label every n-th frame of the mp4/mkv clips")
    th.add_argument("--limit", type=int, default=0, help="stop after N newly labelled images (0: all)")
    th.add_argument("--split-only", action="store_true", help="only rebuild the split files from the cache")
    un = sub.add_parser("unseen", help="students vs untouched MoveNet on the scene-held-out splits")
    un.add_argument("--onnx", nargs="*", default=[], help="student ONNX files")
    un.add_argument("--root", default="data/diverse", help="`trainer teach` output")
    un.add_argument("--out", default="docs/unseen", help="writes OUT.json and OUT.md")
    un.add_argument("--quick", action="store_true", help="AP point estimates only (screening), printed")
    sub.add_parser("teachers", help="AP of each teacher and the ensemble on coco8-pose and realpose-lab val")
    ds = sub.add_parser("distill", help="the Lightning-start student (trainer/distill.py)")
    ds.add_argument("overrides", nargs="*", help="DistillConfig fields, e.g. epochs=2 seed=1 input_wh=160,160")
    dx = sub.add_parser("export-distill", help="export a distill run's EMA weights (input -> keypoints)")
    src = dx.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a distill run's final.pt / last.pt")
    src.add_argument("--pretrained", action="store_true", help="MoveNet Lightning's own weights, no training")
    dx.add_argument("--out", required=True)
    dx.add_argument("--version", default="1")
    dx.add_argument("--flip", action="store_true", help="flip test inside the graph")
    dx.add_argument("--input-wh", help="with --pretrained: input width,height (multiples of 32; default 192,192)")
    dx.add_argument("--wise", type=float, default=1.0, help="with --checkpoint: WiSE-FT weight of the run (0..1)")
    vd = sub.add_parser("video", help="train the video mode (previous-pose kernel distillator)")
    vd.add_argument("--config", default=None)
    vd.add_argument("overrides", nargs="*")
    vx = sub.add_parser("export-video", help="export a video-mode run (two inputs) or its control (one)")
    vx.add_argument("--checkpoint", required=True)
    vx.add_argument("--out", required=True)
    vx.add_argument("--name", default=None)
    vx.add_argument("--version", default=None, help="model version in the metadata (default: the run's name)")
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

        print(json.dumps(export_onnx(args.checkpoint, args.out, args.branch, args.version, name=args.name), indent=2))
    elif args.cmd == "compare":
        from trainer.compare import compare

        compare(args.config, args.seeds, args.out, args.overrides, args.variants, args.render_only)
    elif args.cmd == "card":
        from pathlib import Path

        from trainer.card import write_card

        out = args.out or str(Path(args.onnx).with_suffix(".card.json"))
        print(json.dumps(write_card(args.onnx, out, args.config, args.overrides), indent=2))
    elif args.cmd == "peers":
        from pathlib import Path

        from trainer import peers

        ann = Path(args.ann) if args.ann else peers.DATA / "annotations" / "person_keypoints_val.json"
        images = Path(args.images) if args.images else peers.DATA / "images"
        rows = peers.run([Path(o) for o in args.onnx], not args.no_teachers, args.served, ann, images)
        Path(args.out + ".json").write_text(json.dumps(rows, indent=2))
        md = peers.markdown(rows, ann)
        Path(args.out + ".md").write_text(md)
        print(md)
    elif args.cmd == "quantize":
        from pathlib import Path

        from trainer.peers import DATA
        from trainer.quantize import quantize_student

        if args.calibration:
            ann, images = Path(args.calibration) / "annotations.json", Path(args.calibration) / "images"
        else:
            ann, images = DATA / "annotations" / "person_keypoints_train.json", DATA / "images"
        n = quantize_student(Path(args.onnx), Path(args.out), ann, images, args.step)
        print(json.dumps({"out": args.out, "calibration_crops": n}))
    elif args.cmd == "label":
        from pathlib import Path

        from trainer.label import label

        inputs = [Path(i) for i in args.inputs]
        print(json.dumps(label(inputs, Path(args.out), args.every, args.max_side, frames=args.frames), indent=2))
    elif args.cmd == "teach":
        from pathlib import Path

        from trainer.teach import teacher_pass, write_splits

        out = Path(args.out)
        if not args.split_only:
            print(json.dumps(teacher_pass(out, args.every, limit=args.limit), indent=2))
        print(json.dumps(write_splits(out), indent=2))
    elif args.cmd == "distill":
        from trainer.distill import config_from, train

        print(train(config_from(args.overrides)))
    elif args.cmd == "export-distill":
        from pathlib import Path

        from trainer.distill import export

        ckpt = None if args.pretrained else Path(args.checkpoint)
        wh = tuple(int(v) for v in args.input_wh.split(",")) if args.input_wh else None
        if wh is not None and ckpt is not None:
            raise SystemExit("--input-wh is for --pretrained (a run's checkpoint carries its own input size)")
        if args.wise != 1.0 and ckpt is None:
            raise SystemExit("--wise is for --checkpoint (it mixes a run's weights with Lightning's)")
        print(json.dumps(export(ckpt, Path(args.out), args.version, args.flip, input_wh=wh, wise=args.wise)))
    elif args.cmd == "unseen":
        from pathlib import Path

        from trainer import unseen

        if args.quick:
            print(unseen.quick([Path(o) for o in args.onnx], Path(args.root)))
            return 0
        rows = unseen.run([Path(o) for o in args.onnx], Path(args.root))
        command = "python -m trainer unseen " + " ".join(sys.argv[2:] if argv is None else argv[1:])
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(f"{args.out}.json").write_text(json.dumps(rows, indent=2) + "\n")
        md = unseen.markdown(rows, command.strip())
        Path(f"{args.out}.md").write_text(md)
        print(md)
    elif args.cmd == "teachers":
        from pathlib import Path

        from trainer.peers import DATA
        from trainer.teach import DIVERSE, teacher_table

        rows = teacher_table(DIVERSE / "coco8-pose" / "annotations_coco.json", DIVERSE / "coco8-pose" / "images")
        rows += teacher_table(DATA / "annotations" / "person_keypoints_val.json", DATA / "images")
        Path("docs/teachers.json").write_text(json.dumps(rows, indent=2) + "\n")
        for r in rows:
            lo, hi = r["AP_ci95"]
            print(f"| {r['data']} | {r['teacher']} | {r['persons']} | {r['AP']:.3f} [{lo:.3f}, {hi:.3f}] |")
    elif args.cmd == "video":
        from trainer.video import load_video_config, train_video

        print(train_video(load_video_config(args.config, args.overrides)))
    elif args.cmd == "export-video":
        from trainer.video import export_video_onnx

        print(json.dumps(export_video_onnx(args.checkpoint, args.out, args.name, args.version), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
