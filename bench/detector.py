"""python -m bench.detector: person-detector accuracy and latency, every backend in one run.

Accuracy: person box AP and AP50 (pycocotools, bbox) on the realpose-lab *val* split (a camera
never used for training or calibration), plus recall / precision at each detector's operating
score threshold (IoU 0.5). Ignore regions (people the labeller could not label) are passed to
COCOeval as crowd regions: finding them is neither rewarded nor penalised.
Latency: per frame, in process (letterbox + inference + decode + NMS), ONNX Runtime with
``--threads`` threads, on the val frames (453x800) and on full-HD frames of the same camera.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from okpose.core.oks import box_iou
from okpose.core.types import Detections
from okpose.detect.detectors import HogDetector
from okpose.detect.nanodet import NanoDetDetector
from okpose.detect.tiles import TiledDetector
from okpose.pipeline import PipelineOptions
from okpose.sources import open_source

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "realpose-lab"
DIVERSE = ROOT.parent / "shared" / "data" / "people-diverse"
SMALL_PX = 96  # a "small" person: human box shorter than this (in the photo's own pixels)
DARK_LUMA = 70  # a "dark" photo: mean luma (0-255) below this
MODELS = ROOT / "models"
DEFAULT_TILES = PipelineOptions.tiles
AP_SCORE_FLOOR = 0.05
# ../shared/README.md: "in pose2sim_multi_cam03 frames ~40-95 the subject seen from behind, overlapping
# the avatar, is often unlabelled" -> a detector that finds him is charged a false positive there
LABEL_GAP = (
    "pose2sim_multi_cam03.mp4",
    range(40, 96),
)  # AP needs the low-score tail; recall/precision use the operating threshold


@dataclass(frozen=True)
class Variant:
    name: str
    build: Callable[[float], Callable[[np.ndarray], Detections]]
    operating_score: float


def is_dark(img: np.ndarray) -> bool:
    """A dark photo: mean luma below ``DARK_LUMA``."""
    return float(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).mean()) < DARK_LUMA


class LowLight:
    """Pre-processing for dark frames (mean luma < ``DARK_LUMA``), measured before it is kept (#30): CLAHE on the
    L channel (clip 2, 8x8 tiles) or a gamma curve (0.5); brighter frames go to the detector untouched."""

    def __init__(self, det: Callable[[np.ndarray], Detections], kind: str):
        self.det, self.kind = det, kind
        self.clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
        self.lut = (255 * (np.arange(256) / 255) ** 0.5).astype(np.uint8)

    def __call__(self, img: np.ndarray) -> Detections:
        if not is_dark(img):
            return self.det(img)
        if self.kind == "gamma":
            return self.det(cv2.LUT(img, self.lut))
        lab = cv2.cvtColor(img, cv2.COLOR_BGR2LAB)
        lab[..., 0] = self.clahe.apply(lab[..., 0])
        return self.det(cv2.cvtColor(lab, cv2.COLOR_LAB2BGR))


def variants(threads: int, score: float) -> list[Variant]:
    def nano(file: str, size: int) -> Callable[[float], Callable[[np.ndarray], Detections]]:
        return lambda s: NanoDetDetector(
            MODELS / file, s, input_size=size, providers="CPUExecutionProvider", threads=threads
        )

    default = nano("nanodet-coco-int8.onnx", 416)

    def tiled(grid: int) -> Variant:
        name = f"NanoDet int8 @416 + {grid}x{grid} tiles" + (" (default)" if grid == DEFAULT_TILES else "")
        return Variant(name, lambda s: TiledDetector(default(s), grid), score)

    out = [
        tiled(DEFAULT_TILES),
        Variant("NanoDet int8 @416, whole frame (streams' detector frames)", default, score),
        *(tiled(g) for g in (2, 3, 4) if g != DEFAULT_TILES),
        Variant("NanoDet int8 @320 (previous default)", nano("nanodet-coco-int8.onnx", 320), score),
        Variant("NanoDet int8 @512", nano("nanodet-coco-int8.onnx", 512), score),
        Variant("NanoDet int8 @640", nano("nanodet-coco-int8.onnx", 640), score),
    ]
    if (MODELS / "nanodet-coco-fp32.onnx").is_file():
        out.append(Variant("NanoDet fp32 @416", nano("nanodet-coco-fp32.onnx", 416), score))
    for kind in ("clahe", "gamma"):
        out.append(Variant(f"NanoDet int8 @416 + {kind} on dark frames", lambda s, k=kind: LowLight(default(s), k),
                           score))  # fmt: skip
    out.append(Variant("HOG (last-resort fallback)", lambda s: HogDetector(score=s), 0.3))
    return out


def load_val(split: str = "val") -> tuple[dict, list[tuple[int, np.ndarray]]]:
    ann = json.loads((DATA / "annotations" / f"person_keypoints_{split}.json").read_text())
    for a in ann["annotations"]:  # ignore regions -> crowd, so COCOeval ignores matches to them
        a["iscrowd"] = int(a.get("ignore", 0) or a.get("iscrowd", 0))
    images = [(im["id"], cv2.imread(str(DATA / "images" / im["file_name"]))) for im in ann["images"]]
    return ann, images


def box_ap(gt: dict, dets: list[dict]) -> tuple[float, float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        if not dets:
            return 0.0, 0.0
        ev = COCOeval(coco, coco.loadRes(dets), "bbox")
        ev.params.catIds = [1]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0]), float(ev.stats[1])


def recall_precision(gt: dict, per_image: dict[int, Detections], thr: float) -> dict[str, float]:
    """Greedy one-to-one matching at IoU 0.5 of detections above ``thr``; crowd-matched ones are free."""
    tp = fp = n_gt = 0
    by_img: dict[int, list[dict]] = {}
    for a in gt["annotations"]:
        by_img.setdefault(a["image_id"], []).append(a)
    for img_id, det in per_image.items():
        keep = det.scores >= thr
        boxes = det.xyxy[keep][np.argsort(-det.scores[keep])]
        anns = by_img.get(img_id, [])
        g = np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], np.float32).reshape(-1, 4)
        crowd = np.array([a["iscrowd"] for a in anns], bool)
        n_gt += int((~crowd).sum())
        taken = np.zeros(len(g), bool)
        ious = box_iou(boxes, g)
        for i in range(len(boxes)):
            cand = np.where(~taken & ~crowd & (ious[i] >= 0.5))[0]
            if len(cand):
                taken[cand[np.argmax(ious[i, cand])]] = True
                tp += 1
            elif not (crowd & (ious[i] >= 0.5)).any():
                fp += 1
    return {"recall": tp / max(n_gt, 1), "precision": tp / max(tp + fp, 1), "persons": n_gt}


def fullhd_frames(n: int) -> list[np.ndarray]:
    frames = list(open_source(DATA / "videos" / "pose2sim_multi_cam03.mp4", max_frames=n))
    return frames[:: max(1, len(frames) // n)][:n] if frames else []


def latency_ms(det: Callable[[np.ndarray], Detections], frames: list[np.ndarray], repeats: int) -> dict[str, float]:
    for f in frames[:3]:
        det(f)
    t = []
    for _ in range(repeats):
        for f in frames:
            t0 = time.perf_counter()
            det(f)
            t.append((time.perf_counter() - t0) * 1000)
    return {"p50": float(np.percentile(t, 50)), "p95": float(np.percentile(t, 95))}


def evaluate(v: Variant, gt: dict, images: list[tuple[int, np.ndarray]], hd: list[np.ndarray], repeats: int) -> dict:
    det = v.build(min(AP_SCORE_FLOOR, v.operating_score))
    per_image = {img_id: det(img) for img_id, img in images}
    coco_dets = [
        {
            "image_id": i,
            "category_id": 1,
            "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
            "score": float(s),
        }
        for i, d in per_image.items()
        for (x1, y1, x2, y2), s in zip(d.xyxy, d.scores, strict=True)
    ]
    ap, ap50 = box_ap(gt, coco_dets)
    complete = {
        im["id"] for im in gt["images"] if not (im["video"] == LABEL_GAP[0] and im["frame_index"] in LABEL_GAP[1])
    }
    gt_c = {
        **gt,
        "images": [im for im in gt["images"] if im["id"] in complete],
        "annotations": [a for a in gt["annotations"] if a["image_id"] in complete],
    }
    ap_c, ap50_c = box_ap(gt_c, [d for d in coco_dets if d["image_id"] in complete])
    op = v.build(v.operating_score)
    rp_c = recall_precision(gt_c, {i: d for i, d in per_image.items() if i in complete}, v.operating_score)
    return {
        "detector": v.name,
        "AP": ap,
        "AP50": ap50,
        "AP_complete_labels": ap_c,
        "AP50_complete_labels": ap50_c,
        "images_complete_labels": len(complete),
        "operating_score": v.operating_score,
        **recall_precision(gt, per_image, v.operating_score),
        "recall_complete_labels": rp_c["recall"],
        "precision_complete_labels": rp_c["precision"],
        "latency_val_ms": latency_ms(op, [im for _, im in images], repeats),
        "latency_1080p_ms": latency_ms(op, hd, repeats) if hd else None,
    }


def markdown(rows: list[dict], meta: dict) -> str:
    head = (
        f"Measured {meta['date']} on {meta['cpu']}, ONNX Runtime {meta['threads']} threads; realpose-lab val "
        f"({meta['images']} frames, {rows[0]['persons']} labelled persons). Command: `{meta['command']}`.\n\n"
        "| detector | box AP | AP50 | AP / AP50, frames with complete labels | recall @ op. score | precision @ op. score "
        "| recall / precision, frames with complete labels | op. score | ms p50 / p95 (453x800) "
        "| ms p50 / p95 (1088x1920) |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    fmt = lambda d: f"{d['p50']:.1f} / {d['p95']:.1f}" if d else "-"  # noqa: E731
    return head + "".join(
        f"| {r['detector']} | {r['AP']:.3f} | {r['AP50']:.3f} | {r['AP_complete_labels']:.3f} / "
        f"{r['AP50_complete_labels']:.3f} ({r['images_complete_labels']} frames) | {r['recall']:.3f} | {r['precision']:.3f} | "
        f"{r['recall_complete_labels']:.3f} / {r['precision_complete_labels']:.3f} | {r['operating_score']:.2f} | {fmt(r['latency_val_ms'])} | {fmt(r['latency_1080p_ms'])} |\n"
        for r in rows
    )


def diverse_sets(step: int) -> list[tuple[str, dict, Path, bool]]:
    """(name, COCO boxes, image folder, labels complete?) of people-diverse's human-boxed sets; Stanford 40 boxes
    only the performer (recall only: the other people are unlabelled), coco8-human every COCO person."""
    st = json.loads((DIVERSE / "stanford40" / "person_boxes.json").read_text())
    st = {**st, "images": st["images"][::step]}
    keep = {im["id"] for im in st["images"]}
    st["annotations"] = [a for a in st["annotations"] if a["image_id"] in keep]
    c8 = json.loads((DIVERSE / "coco8-human" / "annotations_coco.json").read_text())
    return [("stanford40", st, DIVERSE / "stanford40" / "images", False),
            ("coco8-human", c8, DIVERSE / "coco8-human" / "images", True)]  # fmt: skip


def diverse_recall(
    v: Variant, sets: list[tuple[str, dict, Path, bool]], extra: dict[str, tuple[dict, dict[int, np.ndarray], bool]]
) -> dict[str, dict[str, float]]:
    """Recall (and precision where labels are complete) at the operating score, IoU 0.5; Stanford 40 also on its
    small-person and dark-photo subsets; ``extra``: full-size frame sets (``lab_fullsize``, ``mosaics``) with
    whether their labels are complete."""
    det = v.build(v.operating_score)
    out: dict[str, dict[str, float]] = {}
    for name, (gt, images, complete) in extra.items():  # full-size frames: where tiles run
        rp = recall_precision(gt, {i: det(img) for i, img in images.items()}, v.operating_score)
        out[name] = rp if complete else {"recall": rp["recall"], "persons": rp["persons"]}
    for name, gt, folder, complete in sets:
        for a in gt["annotations"]:
            a.setdefault("iscrowd", 0)
        images = {im["id"]: cv2.imread(str(folder / im["file_name"])) for im in gt["images"]}
        per_image = {i: det(img) for i, img in images.items()}
        rp = recall_precision(gt, per_image, v.operating_score)
        out[name] = rp if complete else {"recall": rp["recall"], "persons": rp["persons"]}
        if name != "stanford40":
            continue
        small = {a["image_id"] for a in gt["annotations"] if a["bbox"][3] < SMALL_PX}
        dark = {i for i, img in images.items() if is_dark(img)}
        for sub, ids in (("stanford40-small", small), ("stanford40-dark", dark)):
            g = {**gt, "annotations": [a for a in gt["annotations"] if a["image_id"] in ids]}
            rp = recall_precision(g, {i: per_image[i] for i in ids}, v.operating_score)
            out[sub] = {"recall": rp["recall"], "persons": rp["persons"]}
    return out


def lab_fullsize(gt: dict) -> tuple[dict, dict[int, np.ndarray]]:
    """The val split's frames with complete labels at the camera's own size (1088x1920, decoded from the video;
    the labelled JPEGs are 0.42x copies), boxes scaled to match: where tiles run, so where they could add false
    persons."""
    ims = [im for im in gt["images"] if not (im["video"] == LABEL_GAP[0] and im["frame_index"] in LABEL_GAP[1])]
    by_index = {im["frame_index"]: im for im in ims}
    images: dict[int, np.ndarray] = {}
    with open_source(DATA / "videos" / ims[0]["video"]) as src:
        for f in src.frames():
            if f.index in by_index:
                images[by_index[f.index]["id"]] = f.image
            if len(images) == len(by_index):
                break
    scale = {im["id"]: im["scale"] for im in ims}
    anns = [
        {**a, "bbox": [c / scale[a["image_id"]] for c in a["bbox"]]}
        for a in gt["annotations"]
        if a["image_id"] in images
    ]
    return {**gt, "images": [im for im in ims if im["id"] in images], "annotations": anns}, images


def mosaics(step: int, seed: int = 0) -> tuple[dict, dict[int, np.ndarray]]:
    """Small people in full-HD frames, from human-boxed photos: Stanford 40 photos (every ``step``-th) each scaled so
    its labelled person is 30-150 px tall (log-uniform, ``seed``; the street-crowd range) and laid out 8 x 5 on
    grey 1920x1080 canvases (one photo per 240x216 cell, cropped round the person where larger). Recall only: the
    photos' other people are unlabelled. Returns COCO boxes and the canvases by image id."""
    st = json.loads((DIVERSE / "stanford40" / "person_boxes.json").read_text())
    box = {a["image_id"]: a["bbox"] for a in st["annotations"]}
    photos = [im for im in st["images"][::step] if im["id"] in box]
    rng = np.random.default_rng(seed)
    cols, rows, cw, ch = 8, 5, 240, 216
    images: dict[int, np.ndarray] = {}
    anns: list[dict] = []
    for m in range(0, len(photos), cols * rows):
        canvas = np.full((rows * ch, cols * cw, 3), 114, np.uint8)
        for k, im in enumerate(photos[m : m + cols * rows]):
            bx, by, bw, bh = box[im["id"]]
            s = float(np.exp(rng.uniform(np.log(30), np.log(150)))) / bh
            img = cv2.imread(str(DIVERSE / "stanford40" / "images" / im["file_name"]))
            img = cv2.resize(img, (max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s))),
                             interpolation=cv2.INTER_AREA)  # fmt: skip
            # crop a cell-sized window round the person's centre (the whole photo where it fits)
            cx, cy = (bx + bw / 2) * s, (by + bh / 2) * s
            x0 = int(np.clip(round(cx - cw / 2), 0, max(0, img.shape[1] - cw)))
            y0 = int(np.clip(round(cy - ch / 2), 0, max(0, img.shape[0] - ch)))
            part = img[y0 : y0 + ch, x0 : x0 + cw]
            ox = (k % cols) * cw + (cw - part.shape[1]) // 2
            oy = (k // cols) * ch + (ch - part.shape[0]) // 2
            canvas[oy : oy + part.shape[0], ox : ox + part.shape[1]] = part
            x1, y1 = max(bx * s - x0, 0) + ox, max(by * s - y0, 0) + oy
            x2 = min((bx + bw) * s - x0, part.shape[1]) + ox
            y2 = min((by + bh) * s - y0, part.shape[0]) + oy
            anns.append({"id": len(anns) + 1, "image_id": m + 1, "category_id": 1, "iscrowd": 0,
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1)})  # fmt: skip
        images[m + 1] = canvas
    gt = {"images": [{"id": i, "width": 1920, "height": 1080} for i in images], "annotations": anns,
          "categories": [{"id": 1, "name": "person"}]}  # fmt: skip
    return gt, images


def size_latency(v: Variant, frame: np.ndarray, repeats: int) -> dict[str, dict[str, float]]:
    """ms per frame at the usual camera sizes (a lab frame resized: the cost depends on the size, not the scene)."""
    det = v.build(v.operating_score)
    sizes = {"640x480": (640, 480), "1280x720": (1280, 720), "1920x1080": (1920, 1080)}
    return {k: latency_ms(det, [cv2.resize(frame, wh)] * 10, repeats) for k, wh in sizes.items()}


def diverse_markdown(rows: list[dict]) -> str:
    sets = list(rows[0]["diverse"])
    head = (
        "\n\nPeople-diverse human boxes and full-size frames (`../shared/data/people-diverse`, never trained on by the"
        " detector), recall at the operating score, IoU 0.5 (persons), and ms per frame at camera sizes. Lab val"
        " 1088x1920: the val frames with complete labels decoded at the camera's own size (precision too: where tiles"
        " could add false persons); small people on 1920x1080: Stanford 40 photos scaled so the labelled person is"
        " 30-150 px tall, 40 to a full-HD canvas (`mosaics`; recall only); Stanford 40: one box per photo, recall"
        f" only; small: box < {SMALL_PX} px tall; dark: mean luma < {DARK_LUMA}. Tiles run on frames with a long side"
        " >= 1280 only (the lab and canvas frames and the 1280x720 / 1920x1080 timings; not the photos):\n\n"
        "| detector | " + " | ".join(sets) + " | ms p50 640x480 | 1280x720 | 1920x1080 |\n"
        "|---|" + "---|" * (len(sets) + 3) + "\n"
    )

    def cell(d: dict[str, float]) -> str:
        p = f", P {d['precision']:.3f}" if "precision" in d else ""
        return f"{d['recall']:.3f}{p} ({d['persons']})"

    return head + "".join(
        f"| {r['detector']} | "
        + " | ".join(cell(r["diverse"][s]) for s in sets)
        + " | "
        + " | ".join(f"{r['sizes_ms'][k]['p50']:.1f}" for k in ("640x480", "1280x720", "1920x1080"))
        + " |\n"
        for r in rows
    )


def main(argv: list[str] | None = None) -> int:
    from okpose.detect import DetectorConfig

    p = argparse.ArgumentParser(prog="python -m bench.detector", description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="20 frames, 1 repeat (smoke test)")
    p.add_argument("--out", default="docs/detector", help="writes OUT.json and OUT.md")
    p.add_argument("--no-diverse", action="store_true", help="only the realpose-lab val split")
    p.add_argument("--only", default="", help="only the detectors whose name contains this (e.g. 'dark frames')")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    gt, images = load_val()
    if a.quick:
        keep = {i for i, _ in images[::5]}
        images = [x for x in images if x[0] in keep]
        gt = {
            **gt,
            "images": [im for im in gt["images"] if im["id"] in keep],
            "annotations": [x for x in gt["annotations"] if x["image_id"] in keep],
        }
    hd = fullhd_frames(5 if a.quick else 20)
    vs = [v for v in variants(a.threads, DetectorConfig.score) if a.only in v.name or "(default)" in v.name]
    rows = [evaluate(v, gt, images, hd, 1 if a.quick else a.repeats) for v in vs]
    if not a.no_diverse:
        sets = diverse_sets(50 if a.quick else 1)
        extra = {"lab val 1088x1920, complete labels": (*lab_fullsize(gt), True),
                 "small people on 1920x1080": (*mosaics(40 if a.quick else 4), False)}  # fmt: skip
        for v, r in zip(vs, rows, strict=True):
            if v.name.startswith("HOG"):
                continue
            r["diverse"] = diverse_recall(v, sets, extra)
            r["sizes_ms"] = size_latency(v, hd[0], 1 if a.quick else a.repeats)
            print(r["detector"], r["diverse"], flush=True)
    from bench.__main__ import cpu_model

    command = " ".join(["python -m bench.detector", *(sys.argv[1:] if argv is None else argv)])
    meta = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu_model(), "threads": a.threads, "images": len(images),
            "command": command}  # fmt: skip
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out + ".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    md = markdown(rows, meta)
    if any("diverse" in r for r in rows):
        md += diverse_markdown([r for r in rows if "diverse" in r])
    Path(a.out + ".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
