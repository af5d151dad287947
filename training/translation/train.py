"""Pix2pix training loop: seeded, resumable, TensorBoard scalars and image grids, optional DDP.

``<run>/checkpoint.pt`` holds both networks, both optimizers, the step and the
configuration as plain types (loaded with ``weights_only=True``), written atomically
every ``ckpt_every`` steps and at the end (or when the ``max_minutes`` budget is spent).
A new run can start from another run's weights (``init_from``: fine-tuning, fresh
optimizers, step 0). At the end, ``bn_recalibration`` batches of training crops (the real
sources when there are any) recompute the generator's batch-norm running statistics
(:func:`training.translation.calibration.recalibrate_batchnorm`), which are what the
exported model uses.
Under ``torchrun`` (``WORLD_SIZE`` set) each rank draws its own crops (seed + rank) and
DDP averages the gradients; rank 0 logs and writes checkpoints.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import common
from ..checkpoints import CHECKPOINT_NAME, read_run_checkpoint, restored
from ..config import RunConfig, documented
from .calibration import recalibrate_batchnorm
from .data import DataConfig, Pair, PairSampler, build_sources, sar_to_network
from .losses import LossConfig, discriminator_loss, generator_loss
from .models import ModelConfig, PatchDiscriminator, build_generator, build_models

logger = logging.getLogger(__name__)

CHECKPOINT_KEYS = ("generator", "discriminator", "opt_g", "opt_d", "step", "config")


@dataclass(frozen=True)
class TrainConfig(RunConfig):
    run_dir: str = "runs/translation"
    steps: int = 2000
    batch: int = 4
    crop: int = 256
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    image_every: int = documented(100, "TensorBoard image grid period")
    init_from: str | None = None  # checkpoint (or run folder) whose weights a new run starts from
    bn_recalibration: int = documented(
        0, "batches of (real) training crops that recompute the batch-norm statistics at the end"
    )
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint written by :func:`train` (its run folder is accepted too), loaded as tensors and plain
    values only (:func:`training.checkpoints.read_checkpoint`)."""
    return read_run_checkpoint(path, CHECKPOINT_KEYS, "translation")


def generator_from_checkpoint(ckpt: dict[str, Any]) -> tuple[torch.nn.Module, TrainConfig]:
    """The generator in eval mode and the configuration it was trained with."""
    cfg = TrainConfig.from_dict(ckpt["config"])
    return restored(build_generator(cfg.model), ckpt["generator"]), cfg


def image_grid(x: torch.Tensor, fake: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Rows of (SAR, translation, optical) in ``[0, 1]``, ``(3, rows * h, 3 * w)``."""
    sar = x.expand(-1, 3, -1, -1)
    rows = [
        torch.cat([s, (f + 1) / 2, (t + 1) / 2], dim=2) for s, f, t in zip(sar, fake, target, strict=True)
    ]
    return torch.cat(rows, dim=1).clamp(0, 1)


def _fixed_batch(held: list[Any], sampler: PairSampler, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to 4 held-out pairs (centre crops), else training crops, for the TensorBoard grid."""
    if held:
        xs, ys = [], []
        for p in held[:4]:
            h, w = p.shape
            r, c = (h - size) // 2, (w - size) // 2
            xs.append(sar_to_network(p.sar_db[r : r + size, c : c + size])[np.newaxis])
            ys.append(p.rgb[:, r : r + size, c : c + size] * 2 - 1)
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys).astype(np.float32))
    x, y = sampler.batch(4)
    return torch.from_numpy(x), torch.from_numpy(y)


@dataclass(kw_only=True)
class _Run(common.TrainingRun):
    """Both networks, both optimizers, the configuration."""

    cfg: TrainConfig
    gen: torch.nn.Module
    disc: PatchDiscriminator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer

    def state(self) -> dict[str, Any]:
        return {
            "generator": self.gen.state_dict(),
            "discriminator": self.disc.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "step": self.step,
            "config": self.cfg.to_dict(),
        }


def _other_network(saved: dict[str, Any], cfg: TrainConfig) -> str | None:
    """How a saved run's networks differ from ``cfg``'s, None when they are the same."""
    model = TrainConfig.from_dict(saved).model
    return None if model == cfg.model else f"holds other networks ({model})"


def _init_from(run: _Run, path: str) -> None:
    """Both networks' weights from another run's checkpoint (same architecture); fresh optimizers, step 0."""
    state = load_checkpoint(path)
    problem = _other_network(state["config"], run.cfg)
    if problem:
        raise ValueError(f"--init-from '{path}' {problem}; give the same --ngf/--ndf/--n-down.")
    run.gen.load_state_dict(state["generator"])
    run.disc.load_state_dict(state["discriminator"])
    logger.info("started from the weights of %s (fresh optimizers, step 0)", path)


def _start(cfg: TrainConfig, resume: bool) -> _Run:
    """Processes, seeds, both networks and optimizers; resumed from the run folder's checkpoint if any,
    else started from ``cfg.init_from``'s weights if given."""
    if cfg.crop % cfg.model.multiple:
        rule = cfg.model.multiple_rule
        raise ValueError(f"--crop {cfg.crop} must be a multiple of {rule} = {cfg.model.multiple}.")
    if cfg.init_from and not Path(cfg.init_from).exists():
        raise ValueError(
            f"--init-from '{cfg.init_from}' does not exist; give a checkpoint.pt or its run folder."
        )
    rank, world, dev = common.start_processes(cfg.seed, cfg.threads)
    gen, disc = build_models(cfg.model)
    gen, disc = gen.to(dev), disc.to(dev)
    betas = (cfg.beta1, cfg.beta2)
    run = _Run(
        rank=rank,
        world=world,
        device=dev,
        ckpt_path=Path(cfg.run_dir) / CHECKPOINT_NAME,
        cfg=cfg,
        gen=gen,
        disc=disc,
        opt_g=torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=betas),
        opt_d=torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=betas),
    )
    parts = {"generator": gen, "discriminator": disc, "opt_g": run.opt_g, "opt_d": run.opt_d}
    common.restore(run, load_checkpoint, parts, resume=resume,
                   mismatch=lambda saved: _other_network(saved, cfg))
    if cfg.init_from and not (resume and run.ckpt_path.is_file()):
        _init_from(run, cfg.init_from)
    return run


def _train_step(
    gen: torch.nn.Module,
    disc: torch.nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: TrainConfig,
) -> tuple[dict[str, float], torch.Tensor]:
    """One discriminator step (skipped when the GAN weight is 0) and one generator step."""
    fake = gen(x)
    use_gan = cfg.loss.gan_weight > 0
    d_value = None
    if use_gan:
        d_loss = discriminator_loss(disc(x, y), disc(x, fake.detach()))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        d_value = float(d_loss.detach())
    g_loss, parts = generator_loss(disc(x, fake) if use_gan else None, fake, y, cfg.loss)
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    if d_value is not None:
        parts["d"] = d_value
    return parts, fake.detach()


def _recalibrate(run: _Run, real: list[Any], synth: list[Pair]) -> None:
    """Recompute the generator's batch-norm statistics on ``bn_recalibration`` batches of training crops
    (real sources only when there are any: the domain the model is used on)."""
    cfg = run.cfg
    data = dataclasses.replace(cfg.data, p_synthetic=0.0) if real else cfg.data
    sampler = PairSampler(real, synth, data, cfg.crop, seed=cfg.seed * 1000 + 104729)
    batches = (
        torch.from_numpy(sampler.batch(cfg.batch)[0]).to(run.device) for _ in range(cfg.bn_recalibration)
    )
    n = recalibrate_batchnorm(run.gen, batches)
    logger.info("batch-norm statistics of %d layers recomputed on %d batches", n, cfg.bn_recalibration)


def train(cfg: TrainConfig, resume: bool = True) -> Path:
    """Train (or resume) in ``cfg.run_dir``; returns the checkpoint path."""
    from tqdm import tqdm

    run = _start(cfg, resume)
    real, synth, held = build_sources(cfg.data, cfg.crop)
    sampler = PairSampler(real, synth, cfg.data, cfg.crop, seed=cfg.seed * 1000 + run.rank + 7919 * run.step)
    gen = common.distributed(run.gen, run.world, run.device)
    disc = common.distributed(run.disc, run.world, run.device)
    grid_x, grid_y = _fixed_batch(held, sampler, cfg.crop)
    writer = common.tensorboard_writer(cfg.run_dir, run.rank)
    bar = tqdm(
        total=cfg.steps, initial=run.step, disable=run.rank != 0 or not cfg.progress, desc="translation"
    )

    def one_step() -> None:
        gen.train()
        disc.train()
        xb, yb = sampler.batch(cfg.batch)
        parts, _ = _train_step(
            gen,
            disc,
            run.opt_g,
            run.opt_d,
            torch.from_numpy(xb).to(run.device),
            torch.from_numpy(yb).to(run.device),
            cfg,
        )
        run.step += 1
        if writer is not None and (run.step % cfg.log_every == 0 or run.step == 1):
            common.log_losses(writer, run.step, parts, bar)
        if writer is not None and (run.step % cfg.image_every == 0 or run.step == 1):
            run.gen.eval()
            with torch.no_grad():
                fake = run.gen(grid_x.to(run.device)).cpu()
            writer.add_image("samples/sar_translation_optical", image_grid(grid_x, fake, grid_y), run.step)

    common.run_steps(run, cfg.steps, one_step, bar, ckpt_every=cfg.ckpt_every, max_minutes=cfg.max_minutes)
    if cfg.bn_recalibration > 0 and run.step >= cfg.steps and run.rank == 0:
        _recalibrate(run, real, synth)
        run.checkpoint()
    return common.finish_run(run, writer)
