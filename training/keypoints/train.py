"""Training loop of the keypoint network.

Seeded, resumable (``<run>/checkpoint.pt`` with model, optimizer, step and the
configuration as plain types, written atomically, loaded with ``weights_only=True``),
tqdm progress, TensorBoard scalars in the run folder, and a wall-clock budget
(``max_minutes``) that stops with a checkpoint.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import common
from ..checkpoints import CHECKPOINT_NAME, MODEL_CHECKPOINT_KEYS, read_run_checkpoint, restored
from ..config import RunConfig
from .data import DataConfig, ViewSampler, build_sampler
from .losses import LossConfig, descriptor_loss, peakiness_loss, repeatability_loss
from .models import KeypointNet, ModelConfig, build_model

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig(RunConfig):
    run_dir: str = "runs/keypoints"
    steps: int = 3000
    batch: int = 3  # view pairs per step
    crop: int = 96
    lr: float = 1e-3
    lr_final: float = 5e-5
    weight_decay: float = 1e-5
    grad_clip: float = 1.0
    stop_at_step: int = 0  # 0: run the whole schedule; else stop (with a checkpoint) at this step
    init_from: str | None = None  # start from these weights (a new run, not a resume)
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
    return common.cosine_lr(step, cfg.steps, cfg.lr, cfg.lr_final, warm=max(1, cfg.steps // 20))


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint written by :func:`train` (or its run folder): tensors and plain values only."""
    return read_run_checkpoint(path, MODEL_CHECKPOINT_KEYS, "keypoint")


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
class _Run(common.TrainingRun):
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
    rank, world, dev = common.start_processes(cfg.seed, cfg.threads)
    if world > 1:
        raise ValueError("The keypoint trainer runs in one process; start it without torchrun.")
    net = build_model(cfg.model).to(dev)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    run = _Run(rank=rank, world=world, device=dev, ckpt_path=Path(cfg.run_dir) / CHECKPOINT_NAME, cfg=cfg,
               net=net, params=params, opt=opt)
    common.restore(run, load_checkpoint, {"model": net, "optimizer": opt}, resume=resume,
                   mismatch=lambda saved: _other_network(saved, cfg), init_from=cfg.init_from)
    return run


def _other_network(saved: dict[str, Any], cfg: TrainConfig) -> str | None:
    """How a saved run's network differs from ``cfg``'s, None when it is the same."""
    model = TrainConfig.from_dict(saved).model
    return None if model == cfg.model else f"holds another network ({model})"


def train(cfg: TrainConfig, resume: bool = True, sampler: ViewSampler | None = None) -> Path:
    """Train (or resume) in ``cfg.run_dir``; returns the checkpoint path."""
    from tqdm import tqdm

    run = _start(cfg, resume)
    # a resumed run draws a fresh, still seeded stream (seed and step decide it)
    stream = cfg.seed * 1000 + 7919 * run.step
    sampler = sampler or build_sampler(cfg.data, cfg.crop, seed=stream)
    rng = np.random.default_rng(stream + 1)
    writer = common.tensorboard_writer(cfg.run_dir)
    bar = tqdm(total=cfg.steps, initial=run.step, disable=not cfg.progress, desc="keypoints")

    def one_step() -> None:
        loss, parts = step_loss(run.net, sampler.batch(cfg.batch), cfg.loss, rng, run.device)
        common.optimizer_step(run.opt, loss, run.params, lr_at(run.step, cfg), cfg.grad_clip)
        run.step += 1
        if run.step % cfg.log_every == 0 or run.step == 1:
            common.log_losses(writer, run.step, parts, bar, lr=lr_at(run.step - 1, cfg))

    run.net.train()
    common.run_steps(run, cfg.steps, one_step, bar, ckpt_every=cfg.ckpt_every, max_minutes=cfg.max_minutes,
                     stop_at=cfg.stop_at_step or None)
    return common.finish_run(run, writer)
