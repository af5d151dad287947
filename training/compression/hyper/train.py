"""Training of the hyperprior on cached latents: seeded, resumable, TensorBoard + tqdm.

The transform is frozen, so the loss is the rate alone: bits of ``y`` under the hyperprior's
Gaussians plus the bits of ``z``, per pixel (256 px per latent position). Batches are random
latent crops from the cache (:mod:`training.compression.hyper.cache`); a fraction
``edge_fraction`` of the batches are shorter and narrower than 16 x 16 so that the networks'
zero padding at strip and image edges is seen as the engine's strip coding sees it. The last
``ste_fraction`` of the steps replace the additive noise by rounding with straight-through
gradients (what the coder sees).

A checkpoint (``<run>/checkpoint.pt``, atomic) holds the model, optimizer, step, configuration
and random states; training again resumes it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...checkpoints import CHECKPOINT_NAME, MODEL_CHECKPOINT_KEYS, read_run_checkpoint, restored
from ...common import (
    TrainingRun,
    cosine_lr,
    finish_run,
    log_losses,
    optimizer_step,
    restore,
    run_steps,
    start_processes,
    tensorboard_writer,
)
from ...config import ConfigDict
from .cache import load_cache
from .model import HyperConfig, HyperPrior

logger = logging.getLogger(__name__)

PIXELS_PER_LATENT = 256  # the shipped transforms' stride 16


@dataclass(frozen=True)
class HyperTrainConfig(ConfigDict):
    run_dir: str = "runs/hyper/h2"
    latents: str = "runs/hyper/latents-r1.npz"
    steps: int = 1500
    batch: int = 16
    lr: float = 1e-3
    lr_final: float = 5e-5
    grad_clip: float = 1.0
    seed: int = 0
    threads: int = 1
    log_every: int = 50
    ckpt_every: int = 100
    max_minutes: float = 0.0
    edge_fraction: float = 0.2
    ste_fraction: float = 0.2
    holdout: int = 128  # cached crops kept aside for the validation figure (not trained on)
    model: HyperConfig = field(default_factory=HyperConfig)


def lr_at(step: int, cfg: HyperTrainConfig) -> float:
    """Cosine decay from ``lr`` to ``lr_final`` over ``steps`` (no warm-up)."""
    return cosine_lr(step, cfg.steps, cfg.lr, cfg.lr_final, 0)


def load_hyper_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by :func:`train_hyper` (file or run folder)."""
    return read_run_checkpoint(path, MODEL_CHECKPOINT_KEYS, "hyperprior")


def hyper_from_checkpoint(ckpt: dict[str, Any]) -> tuple[HyperPrior, HyperTrainConfig]:
    cfg = HyperTrainConfig.from_dict(ckpt["config"])
    return restored(HyperPrior(cfg.model), ckpt["model"]), cfg


def sample_batch(y: np.ndarray, rng: np.random.Generator, cfg: HyperTrainConfig) -> torch.Tensor:
    """``[batch, C, h, w]`` float32 ``u = y / latent_step``: full crops or (``edge_fraction``) smaller."""
    idx = rng.integers(0, y.shape[0], cfg.batch)
    h, w = y.shape[-2:]
    if rng.random() < cfg.edge_fraction:
        ch, cw = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
        r0, c0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    else:
        ch, cw, r0, c0 = h, w, 0, 0
    crop = y[idx, :, r0:r0 + ch, c0:c0 + cw].astype(np.float32) / np.float32(cfg.model.latent_step)
    return torch.from_numpy(np.ascontiguousarray(crop))


def bpp_of(model: HyperPrior, u: torch.Tensor, noise: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(latent bpp, side-information bpp) of ``u``."""
    terms = model(u, noise=noise)
    pixels = u.shape[0] * u.shape[2] * u.shape[3] * PIXELS_PER_LATENT
    return terms.bits_y / pixels, terms.bits_z / pixels


@torch.no_grad()
def validation_bpp(model: HyperPrior, y: np.ndarray, latent_step: float) -> float:
    """Rounded-symbol bpp (y + z) of held-aside cached crops (eval mode)."""
    if y.shape[0] == 0:
        return float("nan")
    was = model.training
    model.eval()
    u = torch.from_numpy(y.astype(np.float32) / np.float32(latent_step))
    by, bz = bpp_of(model, u, noise=False)
    model.train(was)
    return float(by + bz)


@dataclass(kw_only=True)
class _Run(TrainingRun):
    cfg: HyperTrainConfig
    model: HyperPrior
    opt: torch.optim.Optimizer
    rng: np.random.Generator

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(), "optimizer": self.opt.state_dict(), "step": self.step,
            "config": self.cfg.to_dict(), "rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
        }


def _start(cfg: HyperTrainConfig, resume: bool) -> _Run:
    rank, world, device = start_processes(cfg.seed, cfg.threads)
    if world > 1:
        raise ValueError("Hyperprior training is single-process (it is small); run it without torchrun.")
    model = HyperPrior(cfg.model)
    run = _Run(rank=rank, world=world, device=device, ckpt_path=Path(cfg.run_dir) / CHECKPOINT_NAME,
               cfg=cfg, model=model, opt=torch.optim.Adam(model.parameters(), lr=cfg.lr),
               rng=np.random.default_rng(cfg.seed))
    def mismatch(saved: dict[str, Any]) -> str | None:
        same = saved["model"] == cfg.model.to_dict() and saved["latents"] == cfg.latents
        return None if same else "was trained with another model or latent cache"

    restore(run, load_hyper_checkpoint, {"model": model, "optimizer": run.opt}, resume=resume,
            mismatch=mismatch, rng=run.rng)
    return run


def _step(run: _Run, y: np.ndarray) -> tuple[float, float]:
    cfg = run.cfg
    noise = run.step < cfg.steps * (1.0 - cfg.ste_fraction)
    by, bz = bpp_of(run.model, sample_batch(y, run.rng, cfg), noise=noise)
    optimizer_step(run.opt, by + bz, list(run.model.parameters()), lr_at(run.step, cfg), cfg.grad_clip)
    run.step += 1
    return by.item(), bz.item()


def train_hyper(cfg: HyperTrainConfig, resume: bool = True, progress: bool = True,
                stop_at: int | None = None) -> Path:
    """Train (or resume) on the latent cache ``cfg.latents``; returns the checkpoint path."""
    from tqdm import tqdm

    cache = load_cache(Path(cfg.latents))
    if cache.channels != cfg.model.channels:
        raise ValueError(f"The cache holds {cache.channels} latent channels, the model expects "
                         f"{cfg.model.channels}; set --channels.")
    held, y = cache.y[: cfg.holdout], cache.y[cfg.holdout:]
    if y.shape[0] < 1:
        raise ValueError(f"The cache holds {cache.y.shape[0]} crops, not more than --holdout {cfg.holdout}.")
    run = _start(cfg, resume)
    writer = tensorboard_writer(str(Path(cfg.run_dir) / "tb"))
    bar = tqdm(total=cfg.steps, initial=run.step, disable=not progress, desc="hyper", mininterval=5)
    logger.info("training the hyperprior of %s (step %g) on %d cached crops", cache.model_id,
                cfg.model.latent_step, y.shape[0])

    def one_step() -> None:
        by, bz = _step(run, y)
        if run.step % cfg.log_every == 0:
            val = validation_bpp(run.model, held, cfg.model.latent_step)
            log_losses(writer, run.step, {"bpp_y": by, "bpp_z": bz, "held_aside_bpp": val}, bar,
                       lr_at(run.step, cfg))

    run.model.train()
    run_steps(run, cfg.steps, one_step, bar, ckpt_every=cfg.ckpt_every, max_minutes=cfg.max_minutes,
              stop_at=stop_at)
    return finish_run(run, writer)


def config_summary(cfg: HyperTrainConfig) -> dict[str, Any]:
    """Plain-value summary for model cards and logs."""
    return asdict(cfg)
