"""The training loop, readable top to bottom. Works on CPU, one GPU, or ``torchrun`` (DDP, gloo on CPU)."""

from __future__ import annotations

import csv
import json
import logging
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from trainer.checkpoint import load_checkpoint, save_checkpoint, upgrade
from trainer.config import ExperimentConfig, OptimConfig, spec_from_config, to_dict
from trainer.data import TopDownDataset, ann_path, load_records
from trainer.evaluate import evaluate, make_predictor
from trainer.losses import distill_loss
from trainer.network import OKDHPNet

log = logging.getLogger("trainer")


def lr_at(step: int, total_steps: int, cfg: OptimConfig) -> float:
    """Linear warm-up, then step decay by ``gamma`` at each milestone (fractions of training)."""
    lr = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup_iters))
    for m in cfg.milestones:
        if step >= m * total_steps:
            lr *= cfg.gamma
    return lr


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _dist_info() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo" if not torch.cuda.is_available() else "nccl")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def train(cfg: ExperimentConfig) -> Path:
    """Train per ``cfg``; returns the run directory (final.pt, metrics.json, log.csv)."""
    rank, world = _dist_info()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    seed_everything(cfg.train.seed + rank)
    run_dir = Path(cfg.train.out_dir) / cfg.train.name
    device = cfg.train.device
    spec = spec_from_config(cfg, version=cfg.train.name)

    # 1. data
    train_recs, val_recs = load_records(cfg, "train"), load_records(cfg, "val")
    ds = TopDownDataset(train_recs, spec, cfg.augment, cfg.data.sigma, cfg.train.seed, train=True)
    sampler = DistributedSampler(ds, world, rank, seed=cfg.train.seed) if world > 1 else None
    gen = torch.Generator().manual_seed(cfg.train.seed)
    batch = min(cfg.optim.batch_size, len(ds))
    loader = DataLoader(
        ds,
        batch_size=batch,
        shuffle=sampler is None,
        sampler=sampler,
        generator=gen,
        num_workers=cfg.train.workers,
        drop_last=True,
        persistent_workers=cfg.train.workers > 0,
    )

    # 2. model, optimizer, resume
    model = OKDHPNet(cfg.model, cfg.train.mode).to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]  # pcl's mean teacher learns by EMA only
    opt = torch.optim.Adam(trainable, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    # the starting weights L2-SP pulls toward, taken before a resume loads later ones (the same seeded
    # initialisation, pretrained parts included, whether the run starts or resumes)
    anchor = [p.detach().clone() for p in trainable] if cfg.optim.l2sp else []
    start_epoch, step = 0, 0
    if cfg.train.resume:
        state = load_checkpoint(cfg.train.resume)
        model.load_state_dict(upgrade(state["config"], state["model"])[1])
        opt.load_state_dict(state["optimizer"])
        start_epoch, step = state["epoch"] + 1, state["step"]
    ddp = DistributedDataParallel(model) if world > 1 else model
    total_steps = cfg.optim.epochs * len(loader)

    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(to_dict(cfg), indent=2))
        log.info("run %s: %d train persons, %d val, %d steps", run_dir, len(ds), len(val_recs), total_steps)
    csv_file = open(run_dir / "log.csv", "a", newline="") if rank == 0 else None  # noqa: SIM115
    writer = None
    tb = _tensorboard(run_dir) if rank == 0 else None
    t_start, cpu_start = time.time(), time.process_time()
    metrics: dict[str, dict[str, float]] = {}
    epoch = start_epoch - 1

    def checkpoint(path: Path, epoch: int, step: int, metrics: dict[str, dict[str, float]]) -> None:
        """Self-describing: config + spec + progress + weights + optimizer (resumable, exportable)."""
        save_checkpoint(path, config=to_dict(cfg), spec=spec.to_metadata(), epoch=epoch, step=step,
                        model=model.state_dict(), optimizer=opt.state_dict(), metrics=metrics)  # fmt: skip

    # 3. epochs
    for epoch in range(start_epoch, cfg.optim.epochs):
        ds.set_epoch(epoch)
        if sampler is not None:
            sampler.set_epoch(epoch)
        model.train()
        sums: dict[str, float] = {}
        seen, t_epoch = 0, time.time()
        bar = _progress(loader, f"epoch {epoch + 1}/{cfg.optim.epochs}", rank == 0)
        for x, target, weights, _ in bar:
            x, target, weights = x.to(device), target.to(device), weights.to(device)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total_steps, cfg.optim)
            out = ddp(x)
            loss, terms = distill_loss(cfg.train.mode, out, target, weights, cfg.loss, step / max(1, total_steps))
            if anchor:
                drift = sum(((p - a) ** 2).sum() for p, a in zip(trainable, anchor, strict=True))
                loss = loss + cfg.optim.l2sp * drift
                terms["l2sp_drift"] = float(drift)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            model.update_mean_teacher(cfg.loss.ema_decay, step)
            step += 1
            seen += len(x)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v * len(x)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{terms['total']:.2e}", ips=f"{seen / (time.time() - t_epoch):.0f}")
        row = {
            "epoch": epoch,
            "step": step,
            "lr": lr_at(step, total_steps, cfg.optim),
            "seconds": time.time() - t_start,
        }
        row.update({k: v / max(seen, 1) for k, v in sums.items()})
        timed_out = cfg.train.max_minutes and (time.time() - t_start) / 60 > cfg.train.max_minutes
        last = epoch == cfg.optim.epochs - 1 or timed_out
        if rank == 0 and ((cfg.train.eval_every and (epoch + 1) % cfg.train.eval_every == 0) or last):
            model.eval()
            metrics = evaluate(
                make_predictor(model, device),
                val_recs,
                spec,
                ann_path(cfg, "val"),
                cfg.data.format,
                cfg.train.flip_test,
            )
            row.update({f"{k}_{m}": v for k, d in metrics.items() for m, v in d.items()})
            log.info(
                "epoch %d: %s", epoch, {k: round(d.get("AP", d.get("PCKh@0.5", 0)), 4) for k, d in metrics.items()}
            )
        if csv_file is not None:
            if writer is None:
                writer = csv.DictWriter(csv_file, fieldnames=list(row), extrasaction="ignore")
                if csv_file.tell() == 0:
                    writer.writeheader()
            writer.writerow(row)
            csv_file.flush()
            if tb is not None:
                for k, v in row.items():
                    if k not in ("epoch", "step"):
                        tb.add_scalar(k, v, step)
            checkpoint(run_dir / "last.pt", epoch, step, metrics)
        if timed_out:
            log.warning("stopping after %.1f min (train.max_minutes)", (time.time() - t_start) / 60)
            break

    # 4. final artefacts
    if rank == 0:
        minutes = (time.time() - t_start) / 60
        checkpoint(run_dir / "final.pt", epoch, step, metrics)
        # CPU time of this process: what a run costs whatever else shares the machine (wall-clock is not,
        # when two runs share two cores unevenly); with train.threads=1 it is the run's time on one free core
        cpu_minutes = (time.process_time() - cpu_start) / 60
        (run_dir / "metrics.json").write_text(
            json.dumps({"metrics": metrics, "train_minutes": minutes, "train_cpu_minutes": cpu_minutes}, indent=2)
        )
    if csv_file is not None:
        csv_file.close()
    if tb is not None:
        tb.close()
    if world > 1:
        dist.destroy_process_group()
    return run_dir


def _tensorboard(run_dir: Path):
    """A TensorBoard writer when the ``tensorboard`` package is installed (optional), else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run_dir / "tb"))


def _progress(it, desc: str, enabled: bool):
    if not enabled:
        return it
    try:
        from tqdm import tqdm
    except ImportError:
        return it
    return tqdm(it, desc=desc, leave=False, dynamic_ncols=True, mininterval=2.0)
