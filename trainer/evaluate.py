"""Evaluation with the service's own decode: COCO OKS AP (pycocotools) or MPII PCKh@0.5,
for every branch and the ensemble of a multi-branch model (or one ONNX student)."""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from okpose.core.oks import oks
from okpose.core.skeleton import flip_index, skeleton_for
from okpose.core.spec import ModelSpec
from okpose.core.topdown import merge_flip_outputs, normalize_crops, outputs_to_image, person_score, prepare_crops
from trainer.data import ImageCache, PersonRecord

if TYPE_CHECKING:
    from trainer.network import OKDHPNet

# input (N, 3, H, W) float32 -> {output name: heatmaps (N, K, h, w)}
Predictor = Callable[[np.ndarray], dict[str, np.ndarray]]


def predict_records(
    predict: Predictor, records: list[PersonRecord], spec: ModelSpec, flip_test: bool = True, batch: int = 32
) -> dict[str, np.ndarray]:
    """Keypoints (R, K, 3) in image pixels per output name, one row per record (GT or detected boxes)."""
    cache = ImageCache()
    perm = flip_index(spec.num_keypoints, spec.flip_pairs)
    results: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        crops, mats = [], []
        for r in chunk:
            c, m = prepare_crops(cache.get(r.image_path), np.asarray([r.box_xyxy]), spec)
            crops.append(c[0])
            mats.append(m[0])
        x = normalize_crops(np.stack(crops), spec)
        outs = predict(x)
        if flip_test:
            outs_f = predict(np.ascontiguousarray(x[..., ::-1]))
            outs = {k: merge_flip_outputs(v, outs_f[k], perm, spec) for k, v in outs.items()}
        for name, hm in outs.items():
            results.setdefault(name, []).append(outputs_to_image(hm, np.stack(mats), spec))
    return {k: np.concatenate(v) for k, v in results.items()}


def instance_score(kps: np.ndarray, thr: float = 0.2) -> np.ndarray:
    """Person score for COCO ranking: the service's own (``okpose.core.topdown.person_score``)."""
    return person_score(kps, thr)


def coco_dets(records: list[PersonRecord], keypoints: np.ndarray) -> list[dict]:
    """COCO keypoint results, one per record, ranked by the service's person score."""
    return [
        {"image_id": r.image_id, "category_id": 1, "keypoints": kp.reshape(-1).tolist(), "score": float(s)}
        for r, kp, s in zip(records, keypoints, instance_score(keypoints), strict=True)
    ]


def _keypoint_eval(images: list[dict], anns: list[dict], dets: list[dict], image_ids: list[int] | None = None):  # noqa: ANN202
    """pycocotools' keypoint COCOeval of ``dets`` against in-memory ``images`` / ``anns``, matched
    (``evaluate()`` done; ``image_ids``: restrict to these images). ``dets`` must not be empty."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(dets), "keypoints")
        if image_ids is not None:
            ev.params.imgIds = sorted(image_ids)
        ev.evaluate()
    return ev


def coco_keypoint_stats(
    images: list[dict], anns: list[dict], dets: list[dict], image_ids: list[int] | None = None
) -> list[float]:
    """The one COCO keypoint evaluation (pycocotools' 10 stats: AP, AP50, AP75, APm, APl, AR, ...) of ``dets``
    against in-memory ``images`` / ``anns`` (``image_ids``: restrict to these images)."""
    if not dets:
        return [0.0] * 10
    ev = _keypoint_eval(images, anns, dets, image_ids)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.accumulate()
        ev.summarize()
    return [float(v) for v in ev.stats]


class ImageMatches:
    """COCO keypoint matching done once per image, so that AP over any multiset of the images (a bootstrap
    resample) is a cheap re-accumulation instead of a full pycocotools run.

    Per image (area range "all", at most ``maxDets`` detections): the detections' scores, their match flags
    and ignore flags at the 10 OKS thresholds, and the count of non-ignored labels; ``ap(index)`` repeats
    COCOeval.accumulate's interpolated precision over the 101 recall points for the images ``index`` picks
    (with repeats). ``ap(None)`` equals ``coco_keypoint_stats(...)[0]`` (tested).
    """

    def __init__(self, images: list[dict], anns: list[dict], dets: list[dict]):
        self.rec_thrs = np.linspace(0.0, 1.0, 101)  # pycocotools' recall thresholds
        empty = (np.zeros(0), np.zeros((10, 0), bool), np.zeros((10, 0), bool), 0)
        self.per_image = [empty for _ in images]
        if not dets:  # AP 0 wherever a label counts (pycocotools ignores crowds and labels without keypoints)
            counted = Counter(a["image_id"] for a in anns if not a.get("iscrowd") and a.get("num_keypoints", 1) > 0)
            self.per_image = [(*empty[:3], counted[im["id"]]) for im in images]
            return
        ev = _keypoint_eval(images, anns, dets)
        max_det = ev.params.maxDets[-1]
        where = {im["id"]: k for k, im in enumerate(images)}
        for k, img_id in enumerate(ev.params.imgIds):  # evalImgs: categories x area ranges x images; "all" first
            e = ev.evalImgs[k]
            if e is None:
                continue
            self.per_image[where[img_id]] = (
                np.asarray(e["dtScores"][:max_det], np.float64),
                np.asarray(e["dtMatches"][:, :max_det] > 0),
                np.asarray(e["dtIgnore"][:, :max_det], bool),
                int(np.count_nonzero(np.asarray(e["gtIgnore"]) == 0)),
            )

    def ap(self, index: np.ndarray | None = None) -> float:
        picked = self.per_image if index is None else [self.per_image[i] for i in index]
        npig = sum(p[3] for p in picked)
        if npig == 0:
            return -1.0
        scores = np.concatenate([p[0] for p in picked])
        order = np.argsort(-scores, kind="mergesort")
        dtm = np.concatenate([p[1] for p in picked], axis=1)[:, order]
        dtig = np.concatenate([p[2] for p in picked], axis=1)[:, order]
        tp = np.cumsum(dtm & ~dtig, axis=1, dtype=np.float64)
        fp = np.cumsum(~dtm & ~dtig, axis=1, dtype=np.float64)
        precision = np.zeros((tp.shape[0], len(self.rec_thrs)))
        for t in range(tp.shape[0]):
            if not tp.shape[1]:
                continue
            rc = tp[t] / npig
            pr = tp[t] / (tp[t] + fp[t] + np.spacing(1))
            pr = np.maximum.accumulate(pr[::-1])[::-1]  # precision envelope (monotone from the right)
            at = np.searchsorted(rc, self.rec_thrs, side="left")
            ok = at < len(pr)
            precision[t, ok] = pr[at[ok]]
        return float(precision.mean())

    def bootstrap(self, n: int = 1000, seed: int = 0) -> np.ndarray:
        """AP over ``n`` resamples of the images with replacement (the same draws for the same ``seed``: two
        models' ``bootstrap`` with one seed form a paired bootstrap)."""
        rng = np.random.default_rng(seed)
        m = len(self.per_image)
        return np.array([self.ap(rng.integers(0, m, m)) for _ in range(n)])


def coco_ap(ann_file: str, records: list[PersonRecord], keypoints: np.ndarray) -> dict[str, float]:
    """COCO keypoint AP/AP50/AP75/AR for predictions (one per record) against ``ann_file``."""
    d = json.loads(Path(ann_file).read_text())
    s = coco_keypoint_stats(d["images"], d["annotations"], coco_dets(records, keypoints), [r.image_id for r in records])
    return {"AP": s[0], "AP50": s[1], "AP75": s[2], "AR": s[5]}


def per_keypoint_error(records: list[PersonRecord], keypoints: np.ndarray) -> dict[str, float]:
    """Mean error per joint over labelled joints, as a percentage of the box's sqrt(area)."""
    try:
        names = skeleton_for(keypoints.shape[1]).keypoints
    except ValueError:
        names = tuple(f"j{i}" for i in range(keypoints.shape[1]))
    errs: list[list[float]] = [[] for _ in names]
    for r, kp in zip(records, keypoints, strict=True):
        x1, y1, x2, y2 = r.box_xyxy
        norm = max(np.sqrt((x2 - x1) * (y2 - y1)), 1.0)
        for k in range(len(names)):
            if r.keypoints[k, 2] > 0:
                errs[k].append(float(np.linalg.norm(kp[k, :2] - r.keypoints[k, :2]) / norm * 100))
    return {n: float(np.mean(e)) if e else float("nan") for n, e in zip(names, errs, strict=True)}


def oks_per_person(records: list[PersonRecord], kps: np.ndarray) -> np.ndarray:
    """OKS of each prediction against its own record (area from the box, as COCO does for boxes)."""
    out = []
    for r, k in zip(records, kps, strict=True):
        vis = r.keypoints[:, 2] > 0
        x1, y1, x2, y2 = r.box_xyxy
        area = max((x2 - x1) * (y2 - y1), 1.0)
        out.append(float(oks(r.keypoints, k[None], area, visible=vis)[0]) if vis.any() else np.nan)
    return np.asarray(out)


def pck(records: list[PersonRecord], kps: np.ndarray, thr: float = 0.1) -> float:
    hits = total = 0
    for r, k in zip(records, kps, strict=True):
        vis = r.keypoints[:, 2] > 0
        x1, y1, x2, y2 = r.box_xyxy
        d = np.linalg.norm(k[vis, :2] - r.keypoints[vis, :2], axis=1)
        hits += int((d <= thr * max(x2 - x1, y2 - y1)).sum())
        total += int(vis.sum())
    return hits / max(total, 1)


def pckh(records: list[PersonRecord], keypoints: np.ndarray, thr: float = 0.5) -> float:
    """MPII PCKh@thr: fraction of labelled joints within thr * head size (records need head_size)."""
    hits, total = 0, 0
    for r, kp in zip(records, keypoints, strict=True):
        if r.head_size <= 0:
            continue
        vis = r.keypoints[:, 2] > 0
        d = np.linalg.norm(kp[vis, :2] - r.keypoints[vis, :2], axis=1)
        hits += int((d <= thr * r.head_size).sum())
        total += int(vis.sum())
    return hits / total if total else float("nan")


def evaluate(
    predict: Predictor,
    records: list[PersonRecord],
    spec: ModelSpec,
    ann_file: str,
    fmt: str = "coco",
    flip_test: bool = True,
) -> dict[str, dict[str, float]]:
    """Metrics per output name (``b0``, ``b1``, …, ``ensemble``)."""
    preds = predict_records(predict, records, spec, flip_test)
    out: dict[str, dict[str, float]] = {}
    for name, kps in preds.items():
        if fmt == "mpii":
            out[name] = {"PCKh@0.5": pckh(records, kps)}
        else:
            out[name] = coco_ap(ann_file, records, kps)
            out[name]["mean_err_pct"] = float(np.nanmean(list(per_keypoint_error(records, kps).values())))
            out[name]["mean_oks"] = float(np.nanmean(oks_per_person(records, kps)))
            out[name]["pck@0.1"] = pck(records, kps)
    return out


def make_predictor(model: OKDHPNet, device: str) -> Predictor:
    """A trained module as a ``Predictor``: every branch's and the ensemble's heatmaps."""
    import torch

    def predict(x: np.ndarray) -> dict[str, np.ndarray]:
        with torch.no_grad():
            out = model.heatmaps(torch.from_numpy(x).to(device))
        return {k: v.float().cpu().numpy() for k, v in out.items()}

    return predict
