"""``python -m trainer peers``: students and teacher models on the same val persons, same run.

Every model sees the labelled persons of an annotation file (GT boxes, no flip):
- our ONNX students through their own spec (crop padding, input size, normalisation);
- MoveNet teachers (``make teachers``) on a square crop of 1.25x the box's long side.
Reported: COCO OKS AP with a 95 % bootstrap interval (images resampled), AP per person
(``track_id``), mean OKS and PCK@0.1 (joints within 0.1 x the box's long side).
``--served`` adds the served configuration of each student: the service pipeline (shipped
detector, no flip, default thresholds) on whole frames, scored as the service scores persons.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from trainer.data import PersonRecord, load_coco
from trainer.evaluate import ImageMatches, coco_dets, coco_keypoint_stats, oks_per_person, pck

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "realpose-lab"
TEACHERS = ROOT / "models" / "teachers"

# records -> keypoints (R, K, 3) in image pixels
Predict = Callable[[list[PersonRecord]], np.ndarray]


def movenet_predictor(path: Path, threads: int = 1) -> Predict:
    """MoveNet single-pose ONNX on the labeller's square crop (``trainer.label.Teacher``), plain view only."""
    from trainer.label import Teacher

    teacher = Teacher(path, threads)
    return lambda records: np.asarray(
        [teacher.plain(cv2.imread(r.image_path), np.asarray(r.box_xyxy)) for r in records], np.float32
    )


def student_predictor(path: Path) -> Predict:
    from trainer.cli_eval import onnx_predictor
    from trainer.evaluate import predict_records

    predict, spec = onnx_predictor(str(path), threads=1)
    return lambda records: predict_records(predict, records, spec, flip_test=False)["onnx"]


def oks_ap(images: list[dict], anns: list[dict], dets: list[dict]) -> float:
    return coco_keypoint_stats(images, anns, dets)[0]


def bootstrap_ap(gt: dict, dets: list[dict], n: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of AP over images resampled with replacement (``ImageMatches``: matched once)."""
    aps = ImageMatches(gt["images"], gt["annotations"], dets).bootstrap(n, seed)
    return float(np.percentile(aps, 2.5)), float(np.percentile(aps, 97.5))


def evaluate_gt_boxes(name: str, predict: Predict, ann_file: Path, image_root: Path) -> dict:
    gt = json.loads(ann_file.read_text())
    records = load_coco(ann_file, image_root)
    kps = predict(records)
    dets = coco_dets(records, kps)
    track = {a["id"]: a.get("track_id", -1) for a in gt["annotations"]}
    per_person = {}
    for tid in sorted({track[r.ann_id] for r in records}):
        sel = [i for i, r in enumerate(records) if track[r.ann_id] == tid]
        keep_imgs = {records[i].image_id for i in sel}
        anns = [a for a in gt["annotations"] if a["image_id"] in keep_imgs and a.get("track_id", -1) == tid]
        per_person[str(tid)] = {"AP": oks_ap(gt["images"], anns, [dets[i] for i in sel]), "persons": len(sel)}
    oks = oks_per_person(records, kps)
    lo, hi = bootstrap_ap(gt, dets)
    return {
        "model": name,
        "boxes": "GT",
        "AP": oks_ap(gt["images"], gt["annotations"], dets),
        "AP_ci95": [lo, hi],
        "mean_oks": float(np.nanmean(oks)),
        "pck@0.1": pck(records, kps),
        "persons": len(records),
        "per_person": per_person,
    }


def served_dets(onnx: Path, gt: dict, image_root: Path, image_ids: set[int] | None = None) -> tuple[list[dict], str]:
    """The service's own frame path (``Pipeline.process_bytes`` on each image file's bytes, as its engine runs
    it) with the shipped defaults: detector, options, no flip. COCO detections and the detector's name."""
    from okpose.pipeline import Pipeline

    engine = Pipeline(onnx, video=False, threads=1, providers="cpu")
    dets = []
    for im in gt["images"]:
        if image_ids is not None and im["id"] not in image_ids:
            continue
        res = engine.process_bytes((image_root / im["file_name"]).read_bytes())
        for p in res.persons():
            kp = np.asarray(p["keypoints"], np.float64).reshape(-1).tolist()
            dets.append({"image_id": im["id"], "category_id": 1, "keypoints": kp, "score": p["score"]})
    return dets, engine.detector.name


def evaluate_served(onnx: Path, ann_file: Path, image_root: Path, image_ids: set[int] | None = None) -> dict:
    """Keypoint AP of what the service returns on whole frames (default detector and options, no flip)."""
    gt = json.loads(ann_file.read_text())
    if image_ids is not None:
        gt = {
            **gt,
            "images": [i for i in gt["images"] if i["id"] in image_ids],
            "annotations": [a for a in gt["annotations"] if a["image_id"] in image_ids],
        }
    dets, detector = served_dets(onnx, gt, image_root)
    lo, hi = bootstrap_ap(gt, dets)
    return {
        "model": onnx.name,
        "boxes": f"served ({detector}, no flip)",
        "images": len(gt["images"]),
        "AP": oks_ap(gt["images"], gt["annotations"], dets),
        "AP_ci95": [lo, hi],
    }


def run(onnx: list[Path], teachers: bool, served: bool, ann_file: Path, image_root: Path) -> list[dict]:
    rows = []
    for path in onnx:
        rows.append(evaluate_gt_boxes(path.name, student_predictor(path), ann_file, image_root))
    if teachers:
        for t in ("movenet-lightning", "movenet-thunder"):
            p = TEACHERS / f"{t}.onnx"
            if not p.is_file():
                raise SystemExit(f"{p} missing: run `make teachers` first")
            rows.append(evaluate_gt_boxes(t, movenet_predictor(p), ann_file, image_root))
    if served:
        rows += [evaluate_served(p, ann_file, image_root) for p in onnx]
    return rows


def markdown(rows: list[dict], ann_file: Path) -> str:
    head = (
        f"`{ann_file.name}`; COCO OKS AP, 95 % bootstrap interval over images (1000 resamples).\n\n"
        "| model | boxes | AP [95 % CI] | mean OKS | PCK@0.1 | AP of the 4 most seen people: id: AP (n) |\n"
        "|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        people = sorted(r.get("per_person", {}).items(), key=lambda kv: -kv[1]["persons"])
        pp = ", ".join(f"{k}: {v['AP']:.2f} ({v['persons']})" for k, v in people[:4] if v["persons"] >= 10)
        ci = f"[{r['AP_ci95'][0]:.3f}, {r['AP_ci95'][1]:.3f}]"
        oks, pck01 = r.get("mean_oks", float("nan")), r.get("pck@0.1", float("nan"))
        lines.append(f"| {r['model']} | {r['boxes']} | {r['AP']:.3f} {ci} | {oks:.3f} | {pck01:.3f} | {pp} |")
    return head + "\n".join(lines) + "\n"
