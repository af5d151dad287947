"""Training loop of the registration encoder (phase 1) and shift regressor (phase 2).

Seeded, resumable (``<run>/checkpoint.pt`` with model, optimizer, step and
configuration, written atomically), tqdm progress, TensorBoard scalars in the run
folder, and a wall-clock budget (``max_minutes``) that stops with a checkpoint.
Single process by default; under ``torchrun`` (``WORLD_SIZE > 1``) each rank
draws its own samples (seed + rank) and DDP averages the gradients; rank 0
logs and writes checkpoints.
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
from .data import DataConfig, PairSampler, build_sources
from .losses import LossConfig, ncc_shift_loss, phase1_loss, regression_loss, smooth_embedding
from .models import ModelConfig, RegistrationNet, build_model

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig(RunConfig):
    run_dir: str = "runs/regembed"
    phase: int = 1
    steps: int = 2000
    batch: int = 8
    crop: int = 96
    lr: float = 2e-3
    lr_final: float = 1e-4
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    shift_radius: int = 8  # phase 2: largest |dx|, |dy| of the regression targets
    init_from: str | None = None  # start from these weights (e.g. phase 2 from a phase-1 run)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Short linear warm-up, then cosine decay from ``lr`` to ``lr_final`` (a pure function of the step)."""
    return common.cosine_lr(step, cfg.steps, cfg.lr, cfg.lr_final, warm=min(50, cfg.steps // 10))


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint written by :func:`train` (a run folder is accepted too), loaded as tensors and plain
    values only (see :func:`training.checkpoints.read_checkpoint`: any other object is refused)."""
    return read_run_checkpoint(path, MODEL_CHECKPOINT_KEYS, "registration")


def model_from_checkpoint(ckpt: dict[str, Any]) -> tuple[RegistrationNet, TrainConfig]:
    cfg = TrainConfig.from_dict(ckpt["config"])
    return restored(build_model(cfg.model), ckpt["model"]), cfg


def _guided_step_loss(
    net: torch.nn.Module, sampler: PairSampler, cfg: TrainConfig, dev: torch.device
) -> tuple[torch.Tensor, dict[str, float]]:
    """Phase 1 of the ``guided`` encoder: the engine's NCC search, both ways, must peak at the true shift
    (zero for aligned crops, sub-pixel with ``data.subpixel``)."""
    r = cfg.loss.nce_radius
    b = sampler.batch(cfg.batch, positives_only=True)
    crops = torch.from_numpy(np.concatenate([b.a, b.b])).to(dev)  # SAR crops, then optical crops
    sigma = cfg.loss.match_sigma  # the search sees the embedding as the engine will smooth it
    full = smooth_embedding(net(crops), sigma)
    centre = smooth_embedding(net(crops[..., r:-r, r:-r].contiguous()), sigma)
    n = cfg.batch
    # SAR template in the optical search area, and the optical template in the SAR search area
    templates = torch.cat([centre[:n], centre[n:]])
    searches = torch.cat([full[n:], full[:n]])
    shifts = None
    if cfg.data.subpixel > 0:  # sub-pixel positives: SAR in optical at +shift, optical in SAR at -shift
        s = torch.from_numpy(b.shift).to(dev)
        shifts = torch.cat([s, -s])
    return ncc_shift_loss(templates, searches, r, cfg.loss.temperature, shifts, cfg.loss.w_subpixel)


def _step_loss(
    net: torch.nn.Module, module: RegistrationNet, sampler: PairSampler, cfg: TrainConfig, dev: torch.device
) -> tuple[torch.Tensor, dict[str, float]]:
    if cfg.phase == 1 and cfg.model.arch == "guided":
        return _guided_step_loss(net, sampler, cfg, dev)
    if cfg.phase == 1:
        b = sampler.batch(cfg.batch)
        x = torch.from_numpy(np.concatenate([b.a, b.b])).to(dev)
        emb = net(x)
        ea, eb = emb[: cfg.batch], emb[cfg.batch :]
        return phase1_loss(ea, eb, torch.from_numpy(b.y).to(dev), torch.from_numpy(b.mask).to(dev), cfg.loss)
    b = sampler.shift_batch(cfg.batch, cfg.shift_radius)
    pred = net(torch.from_numpy(b.a).to(dev), torch.from_numpy(b.b).to(dev))
    target = torch.from_numpy(b.shift).to(dev)
    loss = regression_loss(pred, target)
    err = float((pred.detach() - target).norm(dim=1).mean())
    return loss, {"total": float(loss.detach()), "shift_error_px": err}


@dataclass(kw_only=True)
class _Run(common.TrainingRun):
    """The registration network's training state."""

    cfg: TrainConfig
    module: RegistrationNet
    trainable: torch.nn.Module  # the encoder (phase 1) or the regressor (phase 2)
    params: list[torch.nn.Parameter]
    opt: torch.optim.Optimizer

    def state(self) -> dict[str, Any]:
        """The weights, the optimizer, the step and the configuration."""
        return {"model": self.module.state_dict(), "optimizer": self.opt.state_dict(), "step": self.step,
                "config": self.cfg.to_dict()}


def _start(cfg: TrainConfig) -> _Run:
    """Processes, threads, seeds, the network and the optimizer of the phase's trainable part."""
    if cfg.phase not in (1, 2):
        raise ValueError(f"phase must be 1 (encoder) or 2 (shift regressor), got {cfg.phase}.")
    rank, world, dev = common.start_processes(cfg.seed, cfg.threads)
    module = build_model(cfg.model).to(dev)
    trainable = module.encoder if cfg.phase == 1 else module.regressor
    if cfg.phase == 2:  # the phase-1 encoder stays as it is (it is also the exported EMBED model)
        module.encoder.requires_grad_(False)
    params = [p for p in trainable.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return _Run(rank=rank, world=world, device=dev, ckpt_path=Path(cfg.run_dir) / CHECKPOINT_NAME, cfg=cfg,
                module=module, trainable=trainable, params=params, opt=opt)


def _other_run(saved: dict[str, Any], cfg: TrainConfig) -> str | None:
    """How a saved run differs from ``cfg`` in model or phase, None when it does not."""
    old = TrainConfig.from_dict(saved)
    if old.model == cfg.model and old.phase == cfg.phase:
        return None
    return f"was trained with another model/phase ({old.model}, phase {old.phase})"


def train(cfg: TrainConfig, resume: bool = True) -> Path:
    """Train (or resume) in ``cfg.run_dir``; returns the checkpoint path."""
    from tqdm import tqdm

    run = _start(cfg)
    # resume from the run folder's checkpoint (same model and phase), or start from init_from
    common.restore(run, load_checkpoint, {"model": run.module, "optimizer": run.opt}, resume=resume,
                   mismatch=lambda saved: _other_run(saved, cfg), init_from=cfg.init_from)
    real, synth, _held = build_sources(cfg.data)
    seed = cfg.seed * 1000 + run.rank + 7919 * run.step
    sampler = PairSampler(real, synth, cfg.data, cfg.crop, cfg.model.out_stride, seed=seed)
    net = common.distributed(run.trainable, run.world, run.device)
    writer = common.tensorboard_writer(cfg.run_dir, run.rank)
    bar = tqdm(total=cfg.steps, initial=run.step, disable=run.rank != 0 or not cfg.progress,
               desc=f"phase {cfg.phase}")

    def one_step() -> None:
        loss, parts = _step_loss(net, run.module, sampler, cfg, run.device)
        common.optimizer_step(run.opt, loss, run.params, lr_at(run.step, cfg), cfg.grad_clip)
        run.step += 1
        if writer is not None and (run.step % cfg.log_every == 0 or run.step == 1):
            common.log_losses(writer, run.step, parts, bar, lr=lr_at(run.step - 1, cfg))

    run.module.train()
    if cfg.phase == 2:
        run.module.encoder.eval()  # frozen statistics of the phase-1 encoder
    common.run_steps(run, cfg.steps, one_step, bar, ckpt_every=cfg.ckpt_every, max_minutes=cfg.max_minutes)
    return common.finish_run(run, writer)
