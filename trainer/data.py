"""Datasets: COCO keypoint json (+ images) and MPII json, as per-person records, and the torch
Dataset that turns a record into (input, heatmap target, joint weights)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from okpose.core.heatmaps import encode_gaussian
from okpose.core.skeleton import skeleton_for
from okpose.core.spec import ModelSpec
from okpose.core.topdown import normalize_crops
from trainer.augment import AugmentConfig, augment_sample

if TYPE_CHECKING:
    from trainer.config import ExperimentConfig


@dataclass(frozen=True)
class PersonRecord:
    image_path: str
    image_id: int
    box_xyxy: tuple[float, float, float, float]
    keypoints: np.ndarray  # (K, 3) pixels, v > 0 labelled
    ann_id: int = -1
    head_size: float = 0.0  # MPII PCKh normaliser (0 = unknown)


def load_coco(ann_file: str | Path, image_root: str | Path, min_keypoints: int = 1) -> list[PersonRecord]:
    """One record per non-ignored, non-crowd person with at least ``min_keypoints`` labelled joints."""
    d = json.loads(Path(ann_file).read_text())
    images = {im["id"]: im for im in d["images"]}
    out = []
    for a in d["annotations"]:
        if a.get("iscrowd", 0) or a.get("ignore", 0) or a.get("num_keypoints", 0) < min_keypoints:
            continue
        x, y, w, h = a["bbox"]
        if w <= 1 or h <= 1:
            continue
        im = images[a["image_id"]]
        out.append(
            PersonRecord(
                image_path=str(Path(image_root) / im["file_name"]),
                image_id=int(a["image_id"]),
                box_xyxy=(float(x), float(y), float(x + w), float(y + h)),
                keypoints=np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3),
                ann_id=int(a["id"]),
            )
        )
    return out


def load_mpii(ann_file: str | Path, image_root: str | Path) -> list[PersonRecord]:
    """MPII in the usual json form: [{image, center, scale, joints (16, 2), joints_vis (16,)}].

    MPII's ``scale`` is the person height / 200 px; the box is a square of 200 * scale around
    ``center`` (the usual +15 px centre shift and 1.25 enlargement are applied by the padding).
    """
    items = json.loads(Path(ann_file).read_text())
    out = []
    for i, it in enumerate(items):
        c = np.asarray(it["center"], dtype=np.float64)
        half = 100.0 * float(it["scale"])
        joints = np.asarray(it["joints"], dtype=np.float64).reshape(-1, 2)
        vis = np.asarray(it.get("joints_vis", np.ones(len(joints))), dtype=np.float64).reshape(-1, 1)
        out.append(
            PersonRecord(
                image_path=str(Path(image_root) / it["image"]),
                image_id=i,
                box_xyxy=(c[0] - half, c[1] - half, c[0] + half, c[1] + half),
                keypoints=np.concatenate([joints, vis * 2], axis=1),
                ann_id=i,
                head_size=float(it.get("head_size", 0.0)),
            )
        )
    return out


class ImageCache:
    """Decoded images kept in memory (the real dataset is a few hundred frames)."""

    def __init__(self) -> None:
        self._images: dict[str, np.ndarray] = {}

    def get(self, path: str) -> np.ndarray:
        img = self._images.get(path)
        if img is None:
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            if img is None:
                raise FileNotFoundError(f"cannot read image {path}")
            self._images[path] = img
        return img


def background_images(folder: str) -> list[str]:
    """Image files of a background folder (sorted); empty when ``folder`` is empty."""
    if not folder:
        return []
    paths = sorted(str(p) for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not paths:
        raise ValueError(f"augment.backgrounds: no images in {folder}")
    return paths


class TopDownDataset(Dataset):
    """Record -> (input (3, H, W), target (K, h, w), weights (K,), index)."""

    def __init__(
        self,
        records: list[PersonRecord],
        spec: ModelSpec,
        augment: AugmentConfig,
        sigma: float,
        seed: int = 0,
        train: bool = True,
    ):
        self.records, self.spec, self.aug, self.sigma, self.seed, self.train = (
            records,
            spec,
            augment,
            sigma,
            seed,
            train,
        )
        self.skeleton = skeleton_for(spec.keypoint_names)
        self.cache = ImageCache()
        self.epoch = 0
        self.image_paths = sorted({r.image_path for r in records})
        self.backgrounds = background_images(augment.backgrounds)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        rec = self.records[i]
        rng = np.random.default_rng((self.seed, self.epoch, i))
        img = self.cache.get(rec.image_path)
        other = None
        if self.train and self.aug.enabled and self.backgrounds and rng.random() < self.aug.backgrounds_share:
            other = self.cache.get(self.backgrounds[int(rng.integers(len(self.backgrounds)))])
        elif self.train and self.aug.enabled and len(self.image_paths) > 1:
            other = self.cache.get(self.image_paths[int(rng.integers(len(self.image_paths)))])
        aug = self.aug if self.train else AugmentConfig(enabled=False)
        crop, kps, _ = augment_sample(
            rng,
            img,
            np.asarray(rec.box_xyxy),
            rec.keypoints,
            aug,
            self.spec.input_wh,
            self.spec.padding,
            self.skeleton,
            other,
        )
        target, weights = encode_gaussian(kps, self.spec.heatmap_wh, self.spec.heatmap_stride, self.sigma)
        x = normalize_crops(crop[None], self.spec)[0]
        return torch.from_numpy(x), torch.from_numpy(target), torch.from_numpy(weights), i


def ann_path(cfg: ExperimentConfig, split: str) -> str:
    """The annotation file of ``split`` (train | val)."""
    d = cfg.data
    if split != "train" and d.val_folder:
        return str(Path(d.val_folder) / "annotations.json")
    return str(Path(d.root) / (d.train_ann if split == "train" else d.val_ann))


def load_records(cfg: ExperimentConfig, split: str) -> list[PersonRecord]:
    """The split's person records per the config (+ teacher-labelled extra folders for train)."""
    d = cfg.data
    ann = ann_path(cfg, split)
    if d.format == "mpii":
        recs = load_mpii(ann, Path(d.root) / d.images)
    else:
        images = Path(d.val_folder) / "images" if split != "train" and d.val_folder else Path(d.root) / d.images
        recs = load_coco(ann, images, d.min_keypoints if split == "train" else 1)
    if split == "train":  # teacher-labelled folders from `python -m trainer label` (annotations.json + images/)
        for folder in d.extra_train:
            recs += load_coco(Path(folder) / "annotations.json", Path(folder) / "images", d.min_keypoints)
    limit = d.max_train if split == "train" else d.max_val
    return recs[:limit] if limit else recs
