"""``okpose``: the pipeline from the command line.

    okpose track clip.mp4 --out annotated.mp4 --json tracks.jsonl --csv tracks.csv
    okpose track rtsp://cam/1 --latest --json tracks.jsonl          # a live camera, newest frame first
    okpose image photos/ --out drawn/ --json poses.jsonl --coco results.json
    okpose serve --port 8000                                        # the web service (needs okpose[serve])

SOURCE: a video or image file, a folder, a glob (quoted), a webcam index, an rtsp:// or http(s):// URL.
Exit status: 0 done, 1 a model could not be loaded, 2 a bad source or argument.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def _models(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pose-model", help="student ONNX (default: the embedded model)")
    p.add_argument("--detector-model", help="detector ONNX (NanoDet spec or YOLO export) or .pt")
    p.add_argument("--providers", default="auto", help="auto | cpu | a comma list of ONNX Runtime providers")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0 = ORT's default)")
    p.add_argument("--keypoint-threshold", type=float, default=0.2)
    p.add_argument("--pose-score-threshold", type=float, default=0.3)
    p.add_argument("--max-persons", type=int, default=20)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="okpose", description="Real-time multi-person pose estimation and tracking.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("track", help="track the persons of a video, camera, stream, folder or glob")
    t.add_argument("source")
    t.add_argument("--out", help="annotated MP4")
    t.add_argument("--json", help="per-frame JSON lines (persons with track ids)")
    t.add_argument("--csv", help="one row per person per frame")
    t.add_argument("--coco", help="COCO keypoint results (image_id = frame index)")
    t.add_argument("--frames", type=int, default=0, help="stop after N frames")
    t.add_argument("--every", type=int, default=1, help="use every N-th frame of the source")
    t.add_argument("--latest", action="store_true", help="live sources: always the newest frame (drops the rest)")
    t.add_argument("--reconnect", type=int, default=5, help="streams: reconnect attempts in a row before giving up")
    t.add_argument("--timeout", type=float, default=10.0, help="streams: open / read timeout in seconds")
    t.add_argument("--detect-interval", type=int, default=3, help="run the detector every k-th frame")
    t.add_argument("--no-smoothing", action="store_true")
    t.add_argument("--video-mode", action="store_true", help="the video model (reads each person's last pose)")
    _models(t)
    i = sub.add_parser("image", help="poses of single images (a file, folder or glob), no tracking")
    i.add_argument("source")
    i.add_argument("--out", help="folder for the annotated images (same file names)")
    i.add_argument("--json", help="one JSON line per image")
    i.add_argument("--coco", help="COCO keypoint results (image_id = position in the sorted list)")
    _models(i)
    s = sub.add_parser("serve", help="the web service (REST, websocket, metrics): python -m service")
    s.add_argument("args", nargs="*", help="passed to python -m service: --host H --port P --pose-model X.onnx ...")
    return p


def _pipeline(a: argparse.Namespace, **options: Any) -> Any:
    from okpose.pipeline import Pipeline, PipelineOptions

    opts = PipelineOptions(
        keypoint_threshold=a.keypoint_threshold,
        pose_score_threshold=a.pose_score_threshold,
        max_persons=a.max_persons,
        **options,
    )
    video = None if getattr(a, "video_mode", False) else False  # the embedded video model only when asked for
    return Pipeline(a.pose_model, a.detector_model, video=video, providers=a.providers, threads=a.threads,
                    options=opts)  # fmt: skip


def _writers(a: argparse.Namespace) -> list[Any]:
    from okpose.export import CocoResults, JsonLines, TrackCsv

    out: list[Any] = []
    if a.json:
        out.append(JsonLines(a.json))
    if getattr(a, "csv", None):
        out.append(TrackCsv(a.csv))
    if a.coco:
        out.append(CocoResults(a.coco))
    return out


def _bar(total: int | None, quiet: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", dynamic_ncols=True, disable=quiet, file=sys.stderr)


def track(a: argparse.Namespace) -> int:
    from okpose.draw import draw
    from okpose.export import VideoOut
    from okpose.sources import open_source

    opts: dict[str, Any] = {"detect_interval": a.detect_interval, "smoothing": not a.no_smoothing,
                            "video_mode": a.video_mode}  # fmt: skip
    src = open_source(a.source, every=a.every, max_frames=a.frames, latest=a.latest, reconnect=a.reconnect,
                      timeout_s=a.timeout)  # fmt: skip
    pipe = _pipeline(a, **opts)
    writers = _writers(a)
    total = src.frame_count
    if total is not None:
        total = -(-total // a.every)
        total = min(total, a.frames) if a.frames else total
    video = VideoOut(a.out, (src.fps or 30.0) / a.every) if a.out else None
    bar = _bar(total, a.quiet)
    ids, persons, ms = set[int](), 0, list[float]()
    t0 = time.perf_counter()
    try:
        for f, res in pipe.track_frames(src):
            ms.append(res.timings_ms["total"])
            persons += len(res)
            if res.track_ids is not None:
                ids.update(res.track_ids.tolist())
            for w in writers:
                w.write(res, f.time_s, f.name)
            if video is not None:
                video.write(draw(f.image.copy(), res))
            bar.update(1)
    finally:
        bar.close()
        for w in writers:
            w.close()
        if video is not None:
            video.close()
        src.close()
    wall = time.perf_counter() - t0
    n = len(ms)
    line = (f"{src.name}: {n} frames, {persons} persons, {len(ids)} tracks, "
            f"{np.mean(ms) if ms else 0:.1f} ms/frame in the pipeline (p50 {np.median(ms) if ms else 0:.1f}), "
            f"{n / wall if wall > 0 else 0:.1f} frames/s overall")  # fmt: skip
    if src.dropped or src.reconnects:
        line += f", {src.dropped} live frames skipped, {src.reconnects} reconnects"
    print(line)
    for path in (a.out, a.json, getattr(a, "csv", None), a.coco):
        if path:
            print(f"wrote {path}")
    return 0


def image(a: argparse.Namespace) -> int:
    import cv2

    from okpose.draw import draw
    from okpose.sources import open_source

    src = open_source(a.source)
    pipe = _pipeline(a)
    writers = _writers(a)
    out = Path(a.out) if a.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    bar = _bar(src.frame_count, a.quiet)
    n, persons = 0, 0
    try:
        for f in src.frames():
            res = pipe(f.image)
            name = f.name or f"{f.index:06d}.jpg"
            for w in writers:
                w.write(res, None, name)
            if out is not None and not cv2.imwrite(str(out / name), draw(f.image.copy(), res)):
                raise OSError(f"{out / name}: could not be written")
            n, persons = n + 1, persons + len(res)
            bar.update(1)
    finally:
        bar.close()
        for w in writers:
            w.close()
    print(f"{src.name}: {n} images, {persons} persons")
    return 0


def _serve(argv: list[str]) -> int:
    # the one dispatch into the web layer, loaded only here: `import okpose` never imports it
    try:
        from service.__main__ import main as serve
    except ImportError as e:
        print(f"error: okpose serve needs the web extras (pip install 'okpose[serve]'): {e}", file=sys.stderr)
        return 2
    return serve(argv)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["serve"]:
        return _serve(args[1:])
    a = _parser().parse_args(args)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from okpose.core.runtime import ModelLoadError
    from okpose.sources import SourceError

    try:
        return track(a) if a.command == "track" else image(a)
    except SourceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (ModelLoadError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
