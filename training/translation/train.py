"""Pix2pix training loop: seeded, resumable, TensorBoard scalars and image grids, optional DDP.

``<run>/checkpoint.pt`` holds both networks, both optimizers, the step and the
configuration as plain types (loaded with ``weights_only=True``), written atomically
every ``ckpt_every`` steps and at the end (or when the ``max_minutes`` budget is spent).
Under ``torchrun`` (``WORLD_SIZE`` set) each rank draws its own crops (seed + rank) and
DDP averages the gradients; rank 0 logs and writes checkpoints.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..common import init_distributed, save_checkpoint, seed_everything
from .data import DataConfig, PairSampler, build_sources, sar_to_network
from .losses import LossConfig, discriminator_loss, generator_loss
from .models import ModelConfig, UNetGenerator, build_models

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass(frozen=True)
class TrainConfig:
    run_dir: str = "runs/translation"
    steps: int = 2000
    batch: int = 4
    crop: int = 256
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    seed: int = 0
    threads: int = 1
    log_every: int = 10
    image_every: int = 100
    ckpt_every: int = 50
    max_minutes: float = 0.0  # 0: no limit
    progress: bool = True
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["data"] = self.data.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        d["model"] = ModelConfig.from_dict(d["model"])
        d["loss"] = LossConfig(**d["loss"])
        d["data"] = DataConfig.from_dict(d["data"])
        return cls(**d)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint written by :func:`train` (its run folder is accepted too)."""
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT_NAME
    if not p.is_file():
        raise FileNotFoundError(f"Checkpoint '{p}' does not exist; give a checkpoint.pt written by 'train'.")
    ckpt = torch.load(p, map_location="cpu", weights_only=True)
    for key in ("generator", "step", "config"):
        if key not in ckpt:
            raise ValueError(
                f"'{p}' is not a translation checkpoint (no '{key}'); use one written by 'train'."
            )
    return ckpt


def generator_from_checkpoint(ckpt: dict[str, Any]) -> tuple[UNetGenerator, TrainConfig]:
    """The generator in eval mode and the configuration it was trained with."""
    cfg = TrainConfig.from_dict(ckpt["config"])
    gen = UNetGenerator(cfg.model)
    gen.load_state_dict(ckpt["generator"])
    gen.eval()
    return gen, cfg


def _device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


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


def _resume(
    ckpt_path: Path,
    cfg: TrainConfig,
    gen: torch.nn.Module,
    disc: torch.nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
) -> int:
    state = load_checkpoint(ckpt_path)
    saved = TrainConfig.from_dict(state["config"])
    if saved.model != cfg.model:
        raise ValueError(
            f"'{ckpt_path}' was trained with another model ({saved.model}); use a new --run-dir "
            "or --no-resume."
        )
    gen.load_state_dict(state["generator"])
    disc.load_state_dict(state["discriminator"])
    opt_g.load_state_dict(state["opt_g"])
    opt_d.load_state_dict(state["opt_d"])
    logger.info("resumed %s at step %d", ckpt_path, int(state["step"]))
    return int(state["step"])


def _train_step(
    gen: torch.nn.Module,
    disc: torch.nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: TrainConfig,
) -> tuple[dict[str, float], torch.Tensor]:
    fake = gen(x)
    d_loss = discriminator_loss(disc(x, y), disc(x, fake.detach()))
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    g_loss, parts = generator_loss(disc(x, fake), fake, y, cfg.loss)
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    parts["d"] = float(d_loss.detach())
    return parts, fake.detach()


def train(cfg: TrainConfig, resume: bool = True) -> Path:
    """Train (or resume) in ``cfg.run_dir``; returns the checkpoint path."""
    if cfg.crop % cfg.model.multiple:
        raise ValueError(f"--crop {cfg.crop} must be a multiple of 2**n_down = {cfg.model.multiple}.")
    rank, world = init_distributed()
    torch.set_num_threads(max(1, cfg.threads))
    seed_everything(cfg.seed + rank)
    dev = _device()
    run = Path(cfg.run_dir)
    ckpt_path = run / CHECKPOINT_NAME
    gen_m, disc_m = build_models(cfg.model)
    gen_m, disc_m = gen_m.to(dev), disc_m.to(dev)
    betas = (cfg.beta1, cfg.beta2)
    opt_g = torch.optim.Adam(gen_m.parameters(), lr=cfg.lr, betas=betas)
    opt_d = torch.optim.Adam(disc_m.parameters(), lr=cfg.lr, betas=betas)
    step = _resume(ckpt_path, cfg, gen_m, disc_m, opt_g, opt_d) if resume and ckpt_path.is_file() else 0

    real, synth, held = build_sources(cfg.data, cfg.crop)
    sampler = PairSampler(real, synth, cfg.data, cfg.crop, seed=cfg.seed * 1000 + rank + 7919 * step)
    gen: torch.nn.Module = gen_m
    disc: torch.nn.Module = disc_m
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ids = [dev.index] if dev.type == "cuda" else None
        gen = DistributedDataParallel(gen_m, device_ids=ids)
        disc = DistributedDataParallel(disc_m, device_ids=ids)

    writer = None
    grid_x, grid_y = _fixed_batch(held, sampler, cfg.crop)
    if rank == 0:
        from torch.utils.tensorboard import SummaryWriter

        run.mkdir(parents=True, exist_ok=True)
        writer = SummaryWriter(log_dir=str(run))

    def checkpoint() -> None:
        if rank == 0:
            save_checkpoint(
                ckpt_path,
                {
                    "generator": gen_m.state_dict(),
                    "discriminator": disc_m.state_dict(),
                    "opt_g": opt_g.state_dict(),
                    "opt_d": opt_d.state_dict(),
                    "step": step,
                    "config": cfg.to_dict(),
                },
            )

    from tqdm import tqdm

    t0 = time.monotonic()
    bar = tqdm(total=cfg.steps, initial=step, disable=rank != 0 or not cfg.progress, desc="translation")
    try:
        while step < cfg.steps:
            gen.train()
            disc.train()
            xb, yb = sampler.batch(cfg.batch)
            parts, _ = _train_step(
                gen, disc, opt_g, opt_d, torch.from_numpy(xb).to(dev), torch.from_numpy(yb).to(dev), cfg
            )
            step += 1
            bar.update(1)
            if writer is not None and (step % cfg.log_every == 0 or step == 1):
                for k, v in parts.items():
                    writer.add_scalar(f"loss/{k}", v, step)
                logger.info("step %d %s", step, " ".join(f"{k}={v:.4f}" for k, v in parts.items()))
                bar.set_postfix({k: f"{v:.3f}" for k, v in parts.items()})
            if writer is not None and (step % cfg.image_every == 0 or step == 1):
                gen_m.eval()
                with torch.no_grad():
                    fake = gen_m(grid_x.to(dev)).cpu()
                writer.add_image("samples/sar_translation_optical", image_grid(grid_x, fake, grid_y), step)
            if step % cfg.ckpt_every == 0:
                checkpoint()
            if cfg.max_minutes > 0 and time.monotonic() - t0 > 60 * cfg.max_minutes:
                logger.info("time budget of %.1f min reached at step %d", cfg.max_minutes, step)
                break
    finally:
        bar.close()
    checkpoint()
    if writer is not None:
        writer.close()
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
    return ckpt_path
