"""``python -m trainer teach``: teacher-ensemble labels for ``people-diverse``, cached, resumable, split by scene.

Two stages, so that the ensemble rule can change without rerunning the teachers:

1. **Teacher pass** (slow: ~80 ms per person on one thread, cached). Every photo and every ``--every``-th video
   frame of ``../shared/data/people-diverse`` is visited once. Persons: the human-drawn box where the source has
   one (Stanford 40, coco8-*), plus every other NanoDet detection (fp32 @416, score >= ``det_score``) that does
   not overlap a human box (IoU < 0.5). Each person goes through every teacher (MoveNet Thunder 256, MoveNet
   Lightning 192: ``make teachers``) on a square crop of 1.25x the box, as is and mirrored: (views, 17, 3) raw
   predictions in image pixels. One JSON line per image is appended to ``<out>/cache/<set>.jsonl`` and flushed,
   so a killed run resumes where it stopped. Video frames are saved under ``<out>/images``; photos are read in
   place through a symlink (Stanford 40 may not be redistributed: nothing from it leaves ``data/``).
2. **Ensemble** (fast): per keypoint, the score-weighted mean of the confident Thunder views (Lightning's
   views only vote: averaging its positions in costs AP, measured by ``python -m trainer teachers``); labelled (v = 2)
   only where at least ``min_agree`` views are confident and within ``agree`` x the box's long side of that
   mean, and its target weight is the mean score of those views. Persons with fewer than ``min_keypoints``
   labelled joints become ignore regions. Output: COCO keypoint files per scene split,
   ``<out>/<split>/annotations.json`` + ``images`` (what ``data.extra_train`` reads).

Scene splits (the unseen check never sees a training scene): Stanford 40 by action (every 5th action in
alphabetical order held out), the Intel clips by clip family (``one-by-one`` mp4 + its gif, every 5th ASL clip,
the classroom and store-aisle previews held out). ``coco8-pose`` (human keypoints) is evaluation only.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from okpose.core.oks import box_iou
from okpose.core.skeleton import COCO17
from okpose.sources import SourceError, open_source

log = logging.getLogger("trainer.teach")
ROOT = Path(__file__).resolve().parents[1]
DIVERSE = ROOT.parent / "shared" / "data" / "people-diverse"
TEACHERS = ROOT / "models" / "teachers"
K = COCO17.num_keypoints
TEACHER_NAMES = ("movenet-thunder", "movenet-lightning")
VIEW_NAMES = tuple(f"{t}{v}" for t in TEACHER_NAMES for v in ("", "-flip"))
HELD_OUT_PREVIEWS = ("classroom", "store-aisle-detection", "one-by-one-person-detection")


def stanford_action(file_name: str) -> str:
    return Path(file_name).stem.rsplit("_", 1)[0]


def held_out_actions(actions: list[str]) -> set[str]:
    """Every 5th action in alphabetical order (8 of Stanford 40's 40)."""
    return {a for i, a in enumerate(sorted(set(actions))) if i % 5 == 4}


def clip_split(path: Path) -> str:
    """Scene split of an Intel clip: ``train`` or the name of its unseen split."""
    if path.stem.startswith("one-by-one"):
        return "unseen-one-by-one"
    if path.parent.name == "asl_gestures":
        names = sorted(p.stem for p in path.parent.glob("*.mkv"))
        return "unseen-asl" if names.index(path.stem) % 5 == 4 else "train"
    if path.parent.name == "preview" and path.stem in HELD_OUT_PREVIEWS:
        return "unseen-preview"
    return "train"


@dataclass(frozen=True)
class Item:
    """One image to label: its cache key, the set it belongs to, its split, where to read it and human boxes."""

    key: str
    set: str
    split: str
    file_name: str  # relative to <out>/images
    boxes: tuple[tuple[float, float, float, float], ...]  # human person boxes, xyxy
    video: str = ""
    frame: int = -1


def stanford_items() -> list[Item]:
    d = json.loads((DIVERSE / "stanford40" / "person_boxes.json").read_text())
    by_img: dict[int, list[tuple[float, float, float, float]]] = {}
    for a in d["annotations"]:
        x, y, w, h = a["bbox"]
        by_img.setdefault(a["image_id"], []).append((x, y, x + w, y + h))
    held = held_out_actions([stanford_action(im["file_name"]) for im in d["images"]])
    return [
        Item(
            key=f"stanford40/{im['file_name']}",
            set="stanford40",
            split="unseen-stanford40" if stanford_action(im["file_name"]) in held else "train",
            file_name=f"stanford40/{im['file_name']}",
            boxes=tuple(by_img.get(im["id"], [])),
        )
        for im in d["images"]
    ]


def coco_items(name: str) -> list[Item]:
    d = json.loads((DIVERSE / name / "annotations_coco.json").read_text())
    by_img: dict[int, list[tuple[float, float, float, float]]] = {}
    for a in d["annotations"]:
        x, y, w, h = a["bbox"]
        by_img.setdefault(a["image_id"], []).append((x, y, x + w, y + h))
    split = f"eval-{name}"  # human labels: evaluation only
    return [
        Item(f"{name}/{im['file_name']}", name, split, f"{name}/{im['file_name']}", tuple(by_img.get(im["id"], [])))
        for im in d["images"]
    ]


def clip_paths() -> list[Path]:
    base = DIVERSE / "intel-sample-videos"
    return [base / "one-by-one-person-detection.mp4", *sorted((base / "asl_gestures").glob("*.mkv"))] + sorted(
        (base / "preview").glob("*.gif")
    )


def read_frames(path: Path, every: int):  # noqa: ANN201 - generator of (index, frame)
    try:
        src = open_source(path, every=every)
    except SourceError as e:
        raise SystemExit(str(e)) from None
    for f in src.frames():
        yield f.index, f.image


class Views:
    """Every teacher, plain and mirrored, on one person: (views, K, 3) x, y, score in image pixels."""

    def __init__(self, threads: int = 1, paths: list[Path] | None = None):
        from trainer.label import Teacher

        paths = paths or [TEACHERS / f"{t}.onnx" for t in TEACHER_NAMES]
        self.teachers = [Teacher(p, threads) for p in paths]

    def __call__(self, image_bgr: np.ndarray, box_xyxy: np.ndarray) -> np.ndarray:
        out = []
        for t in self.teachers:
            out += list(t(image_bgr, box_xyxy))
        return np.stack(out).astype(np.float32)


def _persons(human: list[tuple[float, float, float, float]], det_boxes: np.ndarray, det_scores: np.ndarray) -> list:
    """[(box xyxy, source, detector score)]: human boxes first, then detections that overlap none of them."""
    persons: list = [(list(b), "human", 1.0) for b in human]
    if len(det_boxes):
        if human:
            keep = box_iou(det_boxes, np.asarray(human, np.float64)).max(1) < 0.5
        else:
            keep = np.ones(len(det_boxes), bool)
        persons += [
            (list(map(float, b)), "detector", float(s)) for b, s in zip(det_boxes[keep], det_scores[keep], strict=True)
        ]
    return persons


def teacher_pass(
    out: Path, every: int = 2, det_score: float = 0.4, limit: int = 0, threads: int = 1, views: Views | None = None
) -> dict:
    """Stage 1: raw teacher views for every person of every image, appended to ``<out>/cache/*.jsonl``."""
    from okpose.detect.nanodet import NanoDetDetector

    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    for name in ("stanford40", "coco8-pose", "coco8-human"):  # photos are read in place
        link = images / name
        if not link.exists():
            link.symlink_to((DIVERSE / name / "images").resolve())
    cache = out / "cache"
    cache.mkdir(exist_ok=True)
    det = NanoDetDetector(ROOT / "models" / "nanodet-coco-fp32.onnx", det_score, input_size=416, threads=threads)
    views = views or Views(threads)
    jobs: list[tuple[str, object]] = [("stanford40", stanford_items), ("coco8-pose", lambda: coco_items("coco8-pose"))]
    jobs += [("coco8-human", lambda: coco_items("coco8-human")), ("intel", None)]
    counts = {"images": 0, "persons": 0, "new_images": 0}
    t0 = time.time()
    total = expected_images(jobs, every)
    for set_name, make in jobs:
        path = cache / f"{set_name}.jsonl"
        done: set[str] = set()
        if path.exists():  # resume: keep the complete lines (a kill can cut the last one), skip their images
            good = [ln for ln in path.read_text().splitlines() if _valid(ln)]
            path.write_text("".join(ln + "\n" for ln in good))
            done = {json.loads(ln)["key"] for ln in good}
        with path.open("a") as f:
            for item, img in _iterate(set_name, make, every, images, done):
                counts["images"] += 1
                if item is None:
                    continue
                if limit and counts["new_images"] >= limit:
                    break
                d = det(img)
                persons = _persons(list(item.boxes), d.xyxy, d.scores)
                rows = []
                for box, src, score in persons:
                    v = views(img, np.asarray(box, np.float64))
                    rows.append(
                        {
                            "box": [round(c, 2) for c in box],
                            "source": src,
                            "det_score": round(score, 4),
                            "views": v.round(2).tolist(),
                        }
                    )
                rec = {
                    "key": item.key,
                    "set": item.set,
                    "split": item.split,
                    "file_name": item.file_name,
                    "width": int(img.shape[1]),
                    "height": int(img.shape[0]),
                    "video": item.video,
                    "frame": item.frame,
                    "persons": rows,
                }
                f.write(json.dumps(rec) + "\n")
                f.flush()
                counts["new_images"] += 1
                counts["persons"] += len(rows)
                _progress(counts["images"], total, t0, counts["new_images"])
            if limit and counts["new_images"] >= limit:
                break
    sys.stderr.write("\n")
    counts["seconds"] = round(time.time() - t0, 1)
    return counts


def _valid(line: str) -> bool:
    try:
        json.loads(line)
        return True
    except json.JSONDecodeError:
        return False


def clip_step(clip: Path, every: int) -> int:
    """Every how many frames a clip is labelled: ``every``, but every frame of the GIF previews (they are short)."""
    return 1 if clip.suffix == ".gif" else every


def expected_images(jobs: list[tuple[str, object]], every: int, clips: list[Path] | None = None) -> int:
    """How many images the teacher pass will see (the progress bar's total): the photo sets' items and each clip's
    frames at its step, from the container's frame count (a clip that does not state one counts 0)."""
    n = sum(len(list(make())) for _, make in jobs if callable(make))
    for clip in clip_paths() if clips is None else clips:
        src = open_source(clip)
        try:
            n += math.ceil((src.frame_count or 0) / clip_step(clip, every))
        finally:
            src.close()
    return max(n, 1)


def _progress(i: int, total: int, t0: float, new: int) -> None:
    if i % 20 and i != total:
        return
    rate = new / max(time.time() - t0, 1e-6)
    left = max(total - i, 0) / max(rate, 1e-6)
    bar = "#" * int(30 * min(i / total, 1.0))
    sys.stderr.write(f"\rteacher pass [{bar:<30}] {i}/{total} images, {rate:.1f}/s, ~{left / 60:.0f} min left ")
    sys.stderr.flush()


def _iterate(set_name: str, make, every: int, images: Path, done: set[str]):  # noqa: ANN001, ANN202
    """(item, image) for every not yet cached image of a set; (None, None) for cached ones (counted only)."""
    if set_name != "intel":
        for item in make():
            if item.key in done:
                yield None, None
                continue
            img = cv2.imread(str(images / item.file_name))
            if img is None:
                raise SystemExit(f"cannot read {images / item.file_name}")
            yield item, img
        return
    for clip in clip_paths():
        split = clip_split(clip)
        folder = images / "intel"
        folder.mkdir(exist_ok=True)
        for idx, img in read_frames(clip, clip_step(clip, every)):
            name = f"intel/{clip.parent.name}_{clip.stem}_f{idx:05d}.jpg"
            key = name
            if key in done:
                yield None, None
                continue
            if not (images / name).exists():
                cv2.imwrite(str(images / name), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
            yield Item(key, "intel", split, name, (), video=f"{clip.parent.name}/{clip.name}", frame=idx), img


# --- stage 2: ensemble ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class EnsembleRule:
    min_score: float = 0.3
    agree: float = 0.05  # x the box's long side
    min_agree: int = 3  # of the 4 views
    min_keypoints: int = 6
    thunder_weight: float = 2.0
    lightning_weight: float = (
        0.0  # 0: Lightning's views vote on agreement only (docs/teachers.md: its positions cost AP)
    )
    views: tuple[str, ...] = VIEW_NAMES  # which views take part (single-teacher rules for the teacher table)


def ensemble(views: np.ndarray, box_xyxy: np.ndarray, rule: EnsembleRule) -> tuple[np.ndarray, np.ndarray]:
    """(V, K, 3) views -> keypoints (K, 3) x, y, score and labelled mask (K,).

    The score of an unlabelled keypoint is kept (used by AP scoring of the ensemble as a predictor)."""
    sel = [VIEW_NAMES.index(v) for v in rule.views]
    v = views[sel]
    w_teacher = np.array([rule.thunder_weight if "thunder" in VIEW_NAMES[i] else rule.lightning_weight for i in sel])
    if not w_teacher.any():  # a Lightning-only rule
        w_teacher = np.ones_like(w_teacher)
    w_teacher = w_teacher[:, None]
    size = max(box_xyxy[2] - box_xyxy[0], box_xyxy[3] - box_xyxy[1], 1.0)
    conf = v[:, :, 2] >= rule.min_score  # (V, K)
    w = w_teacher * v[:, :, 2] * np.where(conf, 1.0, 1e-3)
    mean = (w[:, :, None] * v[:, :, :2]).sum(0) / w.sum(0)[:, None]
    close = np.linalg.norm(v[:, :, :2] - mean[None], axis=2) <= rule.agree * size
    agreeing = conf & close
    n = agreeing.sum(0)
    need = min(rule.min_agree, len(sel))
    labelled = n >= need
    score = np.where(n > 0, (v[:, :, 2] * agreeing).sum(0) / np.maximum(n, 1), v[:, :, 2].mean(0))
    score = score * np.minimum(n / max(need, 1), 1.0)
    return np.concatenate([mean, score[:, None]], 1).astype(np.float32), labelled


def records_of(cache: Path) -> list[dict]:
    out = []
    for path in sorted(cache.glob("*.jsonl")):
        out += [json.loads(ln) for ln in path.read_text().splitlines() if _valid(ln)]
    return out


def write_splits(out: Path, rule: EnsembleRule | None = None) -> dict[str, dict[str, int]]:
    """Stage 2: COCO keypoint files per split from the cached views."""
    rule = rule or EnsembleRule()
    recs = records_of(out / "cache")
    by_split: dict[str, list[dict]] = {}
    for r in recs:
        by_split.setdefault(r["split"], []).append(r)
    summary = {}
    for split, rs in sorted(by_split.items()):
        images, anns = [], []
        counts = {"images": 0, "persons": 0, "labelled": 0, "ignored": 0, "keypoints": 0}
        for r in rs:
            image_id = len(images) + 1
            images.append(
                {
                    "id": image_id,
                    "file_name": r["file_name"],
                    "width": r["width"],
                    "height": r["height"],
                    "set": r["set"],
                    "video": r["video"],
                    "frame_index": r["frame"],
                }
            )
            counts["images"] += 1
            for p in r["persons"]:
                box = np.asarray(p["box"], np.float64)
                kp, lab = ensemble(np.asarray(p["views"], np.float32), box, rule)
                n = int(lab.sum())
                ok = n >= rule.min_keypoints
                counts["persons"] += 1
                counts["labelled" if ok else "ignored"] += 1
                counts["keypoints"] += n if ok else 0
                k = np.zeros((K, 3), np.float32)
                k[lab, :2] = kp[lab, :2]
                k[lab, 2] = 2
                x1, y1, x2, y2 = box
                anns.append(
                    {
                        "id": len(anns) + 1,
                        "image_id": image_id,
                        "category_id": 1,
                        "iscrowd": 0,
                        "ignore": int(not ok),
                        "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "area": (x2 - x1) * (y2 - y1),
                        "num_keypoints": n if ok else 0,
                        "keypoints": (k if ok else np.zeros_like(k)).reshape(-1).round(2).tolist(),
                        "target_weights": (np.where(lab, kp[:, 2], 0.0) if ok else np.zeros(K)).round(3).tolist(),
                        "box_source": p["source"],
                        "track_id": -1,
                    }
                )
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        link = folder / "images"
        if not link.exists():
            link.symlink_to(os.path.relpath(out / "images", folder))
        coco = {
            "images": images,
            "annotations": anns,
            "categories": [
                {
                    "id": 1,
                    "name": "person",
                    "keypoints": list(COCO17.keypoints),
                    "skeleton": [[a + 1, b + 1] for a, b in COCO17.limbs],
                }
            ],
            "info": {
                "labeller": "trainer.teach",
                "teachers": list(VIEW_NAMES),
                "rule": rule.__dict__,
                "counts": counts,
            },
        }
        (folder / "annotations.json").write_text(json.dumps(coco))
        summary[split] = counts
    return summary


# --- which teachers: measured on the human / lab labels there are --------------------------------------------------
TEACHER_RULES = {
    "movenet-lightning": EnsembleRule(views=("movenet-lightning",), min_agree=1),
    "movenet-lightning + flip": EnsembleRule(views=("movenet-lightning", "movenet-lightning-flip"), min_agree=2),
    "movenet-thunder": EnsembleRule(views=("movenet-thunder",), min_agree=1),
    "movenet-thunder + flip": EnsembleRule(views=("movenet-thunder", "movenet-thunder-flip"), min_agree=2),
    "ensemble, Lightning positions averaged in": EnsembleRule(lightning_weight=1.0),
    "ensemble, Thunder positions, 4-view votes (labels)": EnsembleRule(),
}


def teacher_table(ann_file: Path, image_root: Path) -> list[dict]:
    """COCO OKS AP [95 % bootstrap interval] of every teacher rule on the labelled persons of ``ann_file``
    (their own boxes). A rule's keypoint score is its agreement-weighted score (0-ish where views disagree)."""
    from trainer.data import load_coco
    from trainer.evaluate import instance_score
    from trainer.peers import bootstrap_ap, oks_ap

    gt = json.loads(ann_file.read_text())
    records = load_coco(ann_file, image_root)
    views = Views()
    all_views = [views(cv2.imread(r.image_path), np.asarray(r.box_xyxy)) for r in records]
    rows = []
    for name, rule in TEACHER_RULES.items():
        kps = np.stack([ensemble(v, np.asarray(r.box_xyxy), rule)[0] for v, r in zip(all_views, records, strict=True)])
        dets = [
            {"image_id": r.image_id, "category_id": 1, "keypoints": k.reshape(-1).tolist(), "score": float(s)}
            for r, k, s in zip(records, kps, instance_score(kps), strict=True)
        ]
        lo, hi = bootstrap_ap(gt, dets)
        rows.append(
            {
                "teacher": name,
                "AP": oks_ap(gt["images"], gt["annotations"], dets),
                "AP_ci95": [lo, hi],
                "persons": len(records),
                "data": ann_file.parent.name + "/" + ann_file.name,
            }
        )
    return rows
