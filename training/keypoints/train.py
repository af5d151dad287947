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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoints import CHECKPOINT_NAME, read_run_checkpoint, restored
from ..common import TrainingRun, finish_run, run_steps, start_processes
from ..config import ConfigDict
from .data import DataConfig, ViewSampler, build_sampler
from .losses import LossConfig, descriptor_loss, peakiness_loss, repeatability_loss
from .models import KeypointNet, ModelConfig, build_model

logger = logging.getLogger(__name__)

CHECKPOINT_KEYS = ("model", "step", "config")


@dataclass(frozen=True)
class TrainConfig(ConfigDict):
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
    init_from: str | None = None  # start from these weights (a new run, not a resume)
    progress: bool = True
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        if self.crop % 16 or self.crop < 32:
            raise ValueError(f"crop must be a multiple of 16 and >= 32 (got {self.crop}).")
        if self.steps < 1 or self.batch < 1:
            raise ValueError(f"steps and batch must be >= 1 (got {self.steps}, {self.batch}).")


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up over 5 % of the steps, then cosine decay to ``lr_final``."""
    warm = max(1, cfg.steps // 20)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    t = min(step / cfg.steps, 1.0)
    return cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1.0 + math.cos(math.pi * t))


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint written by :func:`train` (or its run folder): tensors and plain values only."""
    return read_run_checkpoint(path, CHECKPOINT_KEYS, "keypoint")


def model_from_checkpoint(ckpt: dict[str, Any]) -> tuple[KeypointNet, TrainConfig]:
    cfg = TrainConfig.from_dict(ckpt["config"])
    return restored(build_model(cfg.model), ckpt["model"]), cfg


def step_loss(
    net: KeypointNet, batch: dict[str, np.ndarray], cfg: LossConfig, rng: np.random.Generator,
    device: torch.device | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss of one batch of view pairs and its parts (floats, for logging)."""
    n = batch["a"].shape[0]
    images = torch.from_numpy(np.concatenate([batch["a"], batch["b"]])).to(device)
    modality = torch.from_numpy(np.concatenate([batch["modality_a"], batch["modality_b"]])).to(device)
    feat, rep = net.features(images, modality)
    xy = torch.from_numpy(batch["xy_in_a"]).to(device)
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


@dataclass(kw_only=True)
class _Run(TrainingRun):
    """The keypoint network's training state."""

    cfg: TrainConfig
    net: KeypointNet
    params: list[torch.nn.Parameter]
    opt: torch.optim.Optimizer

    def state(self) -> dict[str, Any]:
        """The weights, the optimizer, the step and the configuration (plain values)."""
        return {"model": self.net.state_dict(), "optimizer": self.opt.state_dict(), "step": self.step,
                "config": self.cfg.to_dict()}


def _start(cfg: TrainConfig, resume: bool) -> _Run:
    """Threads, seeds, the network and its optimizer; resumed from the run folder or ``init_from``."""
    rank, world, dev = start_processes(cfg.seed, cfg.threads)
    if world > 1:
        raise ValueError("The keypoint trainer runs in one process; start it without torchrun.")
    net = build_model(cfg.model).to(dev)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    run = _Run(rank=rank, world=world, device=dev, ckpt_path=Path(cfg.run_dir) / CHECKPOINT_NAME, cfg=cfg,
               net=net, params=params, opt=opt)
    if resume and run.ckpt_path.is_file():
        state = load_checkpoint(run.ckpt_path)
        saved = TrainConfig.from_dict(state["config"])
        if saved.model != cfg.model:
            raise ValueError(
                f"'{run.ckpt_path}' holds another network ({saved.model}); use a new --run-dir or "
                "--no-resume."
            )
        net.load_state_dict(state["model"])
        if state.get("optimizer") is not None:
            opt.load_state_dict(state["optimizer"])
        run.step = int(state["step"])
        logger.info("resumed %s at step %d", run.ckpt_path, run.step)
    elif cfg.init_from:
        net.load_state_dict(load_checkpoint(cfg.init_from)["model"])
        logger.info("initialised weights from %s", cfg.init_from)
    return run


def train(cfg: TrainConfig, resume: bool = True, sampler: ViewSampler | None = None) -> Path:
    """Train (or resume) in ``cfg.run_dir``; returns the checkpoint path."""
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    run = _start(cfg, resume)
    # a resumed run draws a fresh, still seeded stream (seed and step decide it)
    stream = cfg.seed * 1000 + 7919 * run.step
    sampler = sampler or build_sampler(cfg.data, cfg.crop, seed=stream)
    rng = np.random.default_rng(stream + 1)
    Path(cfg.run_dir).mkdir(parents=True, exist_ok=True)
    writer = SummaryWriter(log_dir=cfg.run_dir)
    bar = tqdm(total=cfg.steps, initial=run.step, disable=not cfg.progress, desc="keypoints")

    def one_step() -> None:
        for g in run.opt.param_groups:
            g["lr"] = lr_at(run.step, cfg)
        loss, parts = step_loss(run.net, sampler.batch(cfg.batch), cfg.loss, rng, run.device)
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(run.params, cfg.grad_clip)
        run.opt.step()
        run.step += 1
        if run.step % cfg.log_every == 0 or run.step == 1:
            for k, v in parts.items():
                writer.add_scalar(f"loss/{k}", v, run.step)
            writer.add_scalar("lr", lr_at(run.step - 1, cfg), run.step)
            logger.info("step %d %s", run.step, " ".join(f"{k}={v:.4f}" for k, v in parts.items()))
            bar.set_postfix({k: f"{v:.3f}" for k, v in parts.items()})

    run.net.train()
    run_steps(run, cfg.steps, one_step, bar, ckpt_every=cfg.ckpt_every, max_minutes=cfg.max_minutes,
              stop_at=cfg.stop_at_step or None)
    return finish_run(run, writer)
