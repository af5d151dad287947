"""Training loop of the keypoint network.

Seeded, resumable (``<run>/checkpoint.pt`` with model, optimizer, step and the
configuration as plain types, written atomically, loaded with ``weights_only=True``),
tqdm progress, TensorBoard scalars in the run folder, and a wall-clock budget
(``max_minutes``) that stops with a checkpoint.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..common import save_checkpoint, seed_everything
from .data import DataConfig, ViewSampler, build_sampler
from .losses import LossConfig, descriptor_loss, peakiness_loss, repeatability_loss
from .models import KeypointNet, ModelConfig, build_model

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass(frozen=True)
class TrainConfig:
    run_dir: str = "runs/keypoints"
    steps: int = 3000
    batch: int = 3  # view pairs per step
    crop: int = 96
    lr: float = 1e-3
    lr_final: float = 5e-5
    weight_decay: float = 1e-5
    grad_clip: float = 1.0
    seed: int = 0
    threads: int = 1
    log_every: int = 10
    ckpt_every: int = 50
    max_minutes: float = 0.0  # 0: no limit; else stop (with a checkpoint) after this long
    stop_at_step: int = 0  # 0: run the whole schedule; else stop (with a checkpoint) at this step
    progress: bool = True
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        if self.crop % 16 or self.crop < 32:
            raise ValueError(f"crop must be a multiple of 16 and >= 32 (got {self.crop}).")
        if self.steps < 1 or self.batch < 1:
            raise ValueError(f"steps and batch must be >= 1 (got {self.steps}, {self.batch}).")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        d["loss"] = self.loss.to_dict()
        d["data"] = self.data.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        d["model"] = ModelConfig.from_dict(d["model"])
        d["loss"] = LossConfig(**d["loss"])
        d["data"] = DataConfig.from_dict(d["data"])
        return cls(**d)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up over 5 % of the steps, then cosine decay to ``lr_final``."""
    warm = max(1, cfg.steps // 20)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    t = min(step / cfg.steps, 1.0)
    return cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1.0 + math.cos(math.pi * t))


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint written by :func:`train` (its run folder is accepted too)."""
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT_NAME
    if not p.is_file():
        raise FileNotFoundError(f"Checkpoint '{p}' does not exist; give a checkpoint.pt written by 'train'.")
    ckpt = torch.load(p, map_location="cpu", weights_only=True)
    for key in ("model", "step", "config"):
        if key not in ckpt:
            raise ValueError(f"'{p}' is not a keypoint checkpoint (no '{key}'); use one written by 'train'.")
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any]) -> tuple[KeypointNet, TrainConfig]:
    cfg = TrainConfig.from_dict(ckpt["config"])
    net = build_model(cfg.model)
    net.load_state_dict(ckpt["model"])
    net.eval()
    return net, cfg


def step_loss(
    net: KeypointNet, batch: dict[str, np.ndarray], cfg: LossConfig, rng: np.random.Generator
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss of one batch of view pairs and its parts (floats, for logging)."""
    n = batch["a"].shape[0]
    images = torch.from_numpy(np.concatenate([batch["a"], batch["b"]]))
    modality = torch.from_numpy(np.concatenate([batch["modality_a"], batch["modality_b"]]))
    feat, rep = net.features(images, modality)
    xy = torch.from_numpy(batch["xy_in_a"])
    cosim = repeatability_loss(rep[:n], rep[n:], xy, cfg.patch)
    peaky = peakiness_loss(rep, cfg.patch)
    offset = (int(rng.integers(cfg.query_stride)), int(rng.integers(cfg.query_stride)))
    desc_loss, parts = descriptor_loss(net.describe, feat[:n], feat[n:], xy, cfg, offset)
    total = cfg.w_cosim * cosim + cfg.w_peaky * peaky + desc_loss
    return total, {
        "total": float(total.detach()),
        "cosim": float(cosim.detach()),
        "peaky": float(peaky.detach()),
        "descriptor": float(desc_loss.detach()),
        **parts,
    }


def _resume(cfg: TrainConfig, net: KeypointNet, opt: torch.optim.Optimizer, ckpt_path: Path) -> int:
    state = load_checkpoint(ckpt_path)
    saved = TrainConfig.from_dict(state["config"])
    if saved.model != cfg.model:
        raise ValueError(
            f"'{ckpt_path}' holds another network ({saved.model}); use a new --run-dir or --no-resume."
        )
    net.load_state_dict(state["model"])
    if state.get("optimizer") is not None:
        opt.load_state_dict(state["optimizer"])
    logger.info("resumed %s at step %d", ckpt_path, int(state["step"]))
    return int(state["step"])


def train(cfg: TrainConfig, resume: bool = True, sampler: ViewSampler | None = None) -> Path:
    """Train (or resume) in ``cfg.run_dir``; returns the checkpoint path."""
    torch.set_num_threads(max(1, cfg.threads))
    seed_everything(cfg.seed)
    run = Path(cfg.run_dir)
    ckpt_path = run / CHECKPOINT_NAME
    net = build_model(cfg.model)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    step = _resume(cfg, net, opt, ckpt_path) if resume and ckpt_path.is_file() else 0
    # a resumed run draws a fresh, still seeded stream (seed and step decide it)
    stream = cfg.seed * 1000 + 7919 * step
    sampler = sampler or build_sampler(cfg.data, cfg.crop, seed=stream)
    rng = np.random.default_rng(stream + 1)
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    run.mkdir(parents=True, exist_ok=True)
    writer = SummaryWriter(log_dir=str(run))

    def checkpoint() -> None:
        save_checkpoint(
            ckpt_path,
            {"model": net.state_dict(), "optimizer": opt.state_dict(), "step": step, "config": cfg.to_dict()},
        )

    t0 = time.monotonic()
    bar = tqdm(total=cfg.steps, initial=step, disable=not cfg.progress, desc="keypoints")
    net.train()
    try:
        last = cfg.steps if cfg.stop_at_step <= 0 else min(cfg.steps, cfg.stop_at_step)
        while step < last:
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg)
            loss, parts = step_loss(net, sampler.batch(cfg.batch), cfg.loss, rng)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == 1:
                for k, v in parts.items():
                    writer.add_scalar(f"loss/{k}", v, step)
                writer.add_scalar("lr", lr_at(step - 1, cfg), step)
                logger.info("step %d %s", step, " ".join(f"{k}={v:.4f}" for k, v in parts.items()))
                bar.set_postfix({k: f"{v:.3f}" for k, v in parts.items()})
            if step % cfg.ckpt_every == 0:
                checkpoint()
            if cfg.max_minutes > 0 and time.monotonic() - t0 > 60 * cfg.max_minutes:
                logger.info("time budget of %.1f min reached at step %d", cfg.max_minutes, step)
                break
    finally:
        bar.close()
        writer.close()
    checkpoint()
    return ckpt_path
