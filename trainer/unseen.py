"""``python -m trainer unseen``: the unseen-scene check, every student beside the untouched MoveNet
Lightning and Thunder in the same run.

Splits: the scene-held-out folders ``python -m trainer teach`` writes (``unseen-*``: people-diverse actions and
clips no training run sees; ``eval-coco8-*``: coco8's photos, never trained on) and ``human-coco8-pose``, the same
coco8-pose photos with their human COCO labels. Given boxes (the label's), no flip. The teach folders' labels come
from the teacher ensemble (MoveNet Thunder, plain and mirrored), which favours a student distilled from those
teachers; the human labels say whether that matters.

Per model and split: COCO OKS AP with a 95 % bootstrap interval over images, and two box-free error rates with
95 % bootstrap intervals over persons:
- **left/right swaps**: of the labelled left/right joint pairs lying apart (> 10 % of the box's long side), the
  share whose prediction fits the mirrored labels better than the labels;
- **unseen-joint placements**: persons cut by the image border (box within 2 % of an edge) — the share of joints
  the label leaves out (out of view, or hidden) that the model still reports at score >= 0.3 (the service's
  drawing threshold is lower, so this under-counts what users see).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from okpose.core.skeleton import COCO17
from trainer.data import PersonRecord, load_coco
from trainer.evaluate import ImageMatches, coco_dets
from trainer.peers import (
    TEACHERS,
    Predict,
    movenet_predictor,
    oks_ap,
    student_predictor,
)
from trainer.teach import DIVERSE

BOOTSTRAP = 1000  # resamples of the images for every AP interval
SCORE = 0.3  # a joint "reported" for the unseen-joint rate
EDGE = 0.02  # a box within this share of the image side from an edge: the person is cut by the border


def swap_counts(records: list[PersonRecord], kps: np.ndarray) -> np.ndarray:
    """(R, 2): per person, swapped pairs and counted pairs (both joints labelled and apart)."""
    out = np.zeros((len(records), 2), np.int64)
    for i, (r, k) in enumerate(zip(records, kps, strict=True)):
        gt = r.keypoints
        long_side = max(r.box_xyxy[2] - r.box_xyxy[0], r.box_xyxy[3] - r.box_xyxy[1], 1.0)
        for a, b in COCO17.flip_pairs[2:]:  # shoulders .. ankles (eyes and ears sit too close to tell)
            if gt[a, 2] <= 0 or gt[b, 2] <= 0 or np.linalg.norm(gt[a, :2] - gt[b, :2]) <= 0.1 * long_side:
                continue
            straight = np.linalg.norm(k[a, :2] - gt[a, :2]) + np.linalg.norm(k[b, :2] - gt[b, :2])
            crossed = np.linalg.norm(k[a, :2] - gt[b, :2]) + np.linalg.norm(k[b, :2] - gt[a, :2])
            out[i] += (int(crossed < straight), 1)
    return out


def unseen_joint_counts(records: list[PersonRecord], kps: np.ndarray, sizes: list[tuple[int, int]]) -> np.ndarray:
    """(R, 2): per border-cut person, unlabelled joints reported at >= SCORE and unlabelled joints."""
    out = np.zeros((len(records), 2), np.int64)
    for i, (r, k, (w, h)) in enumerate(zip(records, kps, sizes, strict=True)):
        x1, y1, x2, y2 = r.box_xyxy
        cut = x1 <= EDGE * w or y1 <= EDGE * h or x2 >= (1 - EDGE) * w or y2 >= (1 - EDGE) * h
        missing = r.keypoints[:, 2] <= 0
        if cut and missing.any():
            out[i] = (int((k[missing, 2] >= SCORE).sum()), int(missing.sum()))
    return out


def rate_ci(counts: np.ndarray, n: int = 1000, seed: int = 0) -> tuple[float, float, float, int]:
    """Pooled rate sum(hit) / sum(total), its 95 % bootstrap interval over persons, and the persons counted."""
    c = counts[counts[:, 1] > 0]
    if not len(c):
        return float("nan"), float("nan"), float("nan"), 0
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(c), (n, len(c)))
    boot = c[idx, 0].sum(1) / np.maximum(c[idx, 1].sum(1), 1)
    return (
        float(c[:, 0].sum() / c[:, 1].sum()),
        float(np.percentile(boot, 2.5)),
        float(np.percentile(boot, 97.5)),
        len(c),
    )


def evaluate_split(name: str, predict: Predict, split: Split) -> dict:
    gt = json.loads(split.ann.read_text())
    records = load_coco(split.ann, split.images)
    sizes_by = {im["id"]: (im["width"], im["height"]) for im in gt["images"]}
    kps = predict(records)
    matches = ImageMatches(gt["images"], gt["annotations"], coco_dets(records, kps))
    boot = matches.bootstrap(BOOTSTRAP)  # one seed for every model: the same draws, so deltas are paired
    swaps = rate_ci(swap_counts(records, kps))
    unseen = rate_ci(unseen_joint_counts(records, kps, [sizes_by[r.image_id] for r in records]))
    return {
        "model": name,
        "split": split.name,
        "persons": len(records),
        "images": len({r.image_id for r in records}),
        "AP": matches.ap(),
        "AP_ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
        "swap_rate": swaps[0],
        "swap_ci95": [swaps[1], swaps[2]],
        "swap_persons": swaps[3],
        "unseen_joint_rate": unseen[0],
        "unseen_joint_ci95": [unseen[1], unseen[2]],
        "cut_persons": unseen[3],
        "_boot": boot,
    }


def delta_ci(boot_a: np.ndarray, boot_b: np.ndarray) -> tuple[float, float]:
    """95 % interval of AP(a) - AP(b) from two bootstraps drawn with the same seed (paired)."""
    deltas = boot_a - boot_b
    return float(np.percentile(deltas, 2.5)), float(np.percentile(deltas, 97.5))


def paired_delta_ci(gt: dict, a: list[dict], b: list[dict], n: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """95 % interval of AP(a) - AP(b) with the same images resampled for both (paired bootstrap)."""
    im, anns = gt["images"], gt["annotations"]
    return delta_ci(ImageMatches(im, anns, a).bootstrap(n, seed), ImageMatches(im, anns, b).bootstrap(n, seed))


@dataclass(frozen=True)
class Split:
    name: str
    ann: Path
    images: Path


def splits(root: Path) -> list[Split]:
    """The teach splits under ``root`` (``unseen-*``, ``eval-*``) and coco8-pose's human labels."""
    found = sorted(
        p for p in root.iterdir() if p.name.startswith(("unseen-", "eval-")) and (p / "annotations.json").is_file()
    )
    if not found:
        raise SystemExit(f"no unseen-*/eval-* splits under {root}: run `python -m trainer teach --out {root}` first")
    out = [Split(p.name, p / "annotations.json", p / "images") for p in found]
    human = DIVERSE / "coco8-pose"
    if (human / "annotations_coco.json").is_file():
        out.append(Split("human-coco8-pose", human / "annotations_coco.json", human / "images"))
    return out


def run(students: list[Path], root: Path) -> list[dict]:
    models: list[tuple[str, Predict]] = [(p.name, student_predictor(p)) for p in students]
    for t in ("movenet-lightning", "movenet-thunder"):
        p = TEACHERS / f"{t}.onnx"
        if not p.is_file():
            raise SystemExit(f"{p} missing: run `make teachers` first")
        models.append((f"{t} (untouched)", movenet_predictor(p)))
    cv2.setNumThreads(1)
    rows = []
    for split in splits(root):
        here = [evaluate_split(name, predict, split) for name, predict in models]
        lightning = here[len(students)]
        for r in here[: len(students)]:  # each student against the untouched Lightning, same images resampled
            r["vs_lightning"] = r["AP"] - lightning["AP"]
            r["vs_lightning_ci95"] = list(delta_ci(r["_boot"], lightning["_boot"]))
        rows += here
    for r in rows:
        del r["_boot"]
    return rows


def quick(students: list[Path], root: Path) -> str:
    """AP per split for each student beside the untouched Lightning, point estimates only (no bootstrap: the
    full check's intervals take ~2 min per model and split on 2 cores). For screening, not for claims."""
    models = [(p.name, student_predictor(p)) for p in students]
    models.append(("movenet-lightning (untouched)", movenet_predictor(TEACHERS / "movenet-lightning.onnx")))
    cv2.setNumThreads(1)
    lines = ["| split | persons | " + " | ".join(n for n, _ in models) + " |", "|---|---|" + "---|" * len(models)]
    for split in splits(root):
        gt = json.loads(split.ann.read_text())
        records = load_coco(split.ann, split.images)
        aps = [oks_ap(gt["images"], gt["annotations"], coco_dets(records, predict(records))) for _, predict in models]
        lines.append(f"| {split.name} | {len(records)} | " + " | ".join(f"{a:.3f}" for a in aps) + " |")
    return "\n".join(lines) + "\n"


def markdown(rows: list[dict], command: str) -> str:
    head = (
        f"Command: `{command}`\n\n"
        "Given boxes, no flip. AP: COCO OKS AP [95 % bootstrap interval over images, 1000 resamples]. "
        "L/R swaps and unseen-joint placements: pooled rates [95 % bootstrap interval over persons] (lower is "
        "better; definitions in `trainer/unseen.py`). `unseen-*` labels: the teacher ensemble (MoveNet Thunder "
        "plain + mirrored, agreement-filtered), which favours students distilled from it; `eval-coco8-*`: the "
        "same teacher labels on coco8's photos (never trained on); `human-coco8-pose`: coco8-pose's human COCO "
        "labels (CC BY 4.0) on the same photos.\n\n"
        "| split | persons (images) | model | AP [95 % CI] | L/R swaps [95 % CI] (persons) | "
        "unseen joints reported [95 % CI] (cut persons) |\n|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        ap = f"{r['AP']:.3f} [{r['AP_ci95'][0]:.3f}, {r['AP_ci95'][1]:.3f}]"
        sw = f"{r['swap_rate']:.3f} [{r['swap_ci95'][0]:.3f}, {r['swap_ci95'][1]:.3f}] ({r['swap_persons']})"
        un = (
            f"{r['unseen_joint_rate']:.3f} [{r['unseen_joint_ci95'][0]:.3f}, {r['unseen_joint_ci95'][1]:.3f}] "
            f"({r['cut_persons']})"
            if r["cut_persons"]
            else "– (0)"
        )
        lines.append(f"| {r['split']} | {r['persons']} ({r['images']}) | {r['model']} | {ap} | {sw} | {un} |")
    return (
        head
        + "\n".join(lines)
        + "\n\nEach student against the untouched Lightning on the same persons:\n\n"
        + "\n".join(verdict(rows))
        + "\n"
    )


def verdict(rows: list[dict]) -> list[str]:
    """Per student and split: AP minus the untouched Lightning's, with its paired interval, in words."""
    out = []
    for r in rows:
        if "vs_lightning" not in r:
            continue
        lo, hi = r["vs_lightning_ci95"]
        word = "above Lightning" if lo > 0 else "below Lightning" if hi < 0 else "no difference shown"
        sign = "≥" if r["vs_lightning"] >= 0 else "<"
        out.append(
            f"- {r['split']}: {r['model']} {sign} Lightning by {r['vs_lightning']:+.3f} AP "
            f"[paired 95 % CI {lo:+.3f}, {hi:+.3f}]: {word}"
        )
    return out
