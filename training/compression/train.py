"""Training loop of the SAR codec: seeded, resumable, TensorBoard + tqdm, optional DDP.

Single process by default; under ``torchrun`` (``WORLD_SIZE > 1``) every rank
draws its own patches (seed + rank) and gradients are averaged with DDP
(``nccl`` on GPUs, ``gloo`` on CPU). Rank 0 logs and writes checkpoints.

A checkpoint (``<run>/checkpoint.pt``, written atomically) holds the model and
prior state, the optimizer, the step, the training/model/data configuration
and the preprocessing parameters (``db_min``, ``db_max``, noise floor).
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

from ..common import init_distributed, save_checkpoint, seed_everything
from .data import DataConfig, Preprocessing, build_sampler, heldout_scenes, make_batch
from .entropy import bits_per_pixel
from .losses import LossWeights, rate_distortion
from .models import ModelConfig, SarCodec

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass(frozen=True)
class TrainConfig:
    run_dir: str = "runs/sarcodec"
    steps: int = 1500
    batch: int = 8
    crop: int = 96
    lr: float = 5e-4
    lr_final: float = 5e-5
    prior_lr_scale: float = 1.0  # the entropy model's learning rate = lr x this (fast prior adaptation)
    grad_clip: float = 1.0
    seed: int = 0
    threads: int = 2
    log_every: int = 25
    eval_every: int = 500
    ckpt_every: int = 100
    max_minutes: float = 0.0  # 0: no wall-clock limit; else stop (with a checkpoint) after this long
    init_from: str | None = None  # fine-tune: start from these weights (not the optimizer/step)
    loss: LossWeights = field(default_factory=LossWeights)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    pre: Preprocessing = field(default_factory=Preprocessing)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        d["data"] = self.data.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        d["loss"] = LossWeights(**d.get("loss", {}))
        d["model"] = ModelConfig.from_dict(d.get("model", {}))
        data = dict(d.get("data", {}))
        data["geotiff_dirs"] = tuple(data.get("geotiff_dirs", ()))
        d["data"] = DataConfig(**data)
        d["pre"] = Preprocessing(**d.get("pre", {}))
        return cls(**d)


# ------------------------------------------------------------ utilities
def param_groups(codec: SarCodec, prior_lr_scale: float) -> list[dict[str, Any]]:
    """Optimizer groups: one for everything, or transform + prior when the prior learns faster.

    A prior that starts far wider than the latents (variant D's DCT coefficients) makes the rate
    term follow the prior's slow adaptation rather than lambda; a larger prior learning rate fixes it.
    With scale 1 the optimizer keeps one group, so checkpoints of earlier runs still resume.
    """
    if prior_lr_scale == 1.0:
        return [{"params": list(codec.parameters()), "lr_scale": 1.0}]
    prior = {id(p) for p in codec.prior.parameters()}
    return [
        {"params": [p for p in codec.parameters() if id(p) not in prior], "lr_scale": 1.0},
        {"params": list(codec.prior.parameters()), "lr_scale": prior_lr_scale},
    ]


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Cosine decay from ``lr`` to ``lr_final`` over ``steps`` (a pure function of the step)."""
    t = min(step / max(cfg.steps, 1), 1.0)
    return cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1.0 + math.cos(math.pi * t))



def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"Checkpoint '{p}' does not exist; give a checkpoint.pt written by 'train'.")
    ckpt = torch.load(p, map_location="cpu", weights_only=False)
    for key in ("model", "step", "config", "preprocessing"):
        if key not in ckpt:
            raise ValueError(f"'{p}' is not a SAR codec checkpoint (no '{key}'); use one written by 'train'.")
    return ckpt


def codec_from_checkpoint(ckpt: dict[str, Any]) -> tuple[SarCodec, TrainConfig]:
    cfg = TrainConfig.from_dict(ckpt["config"])
    codec = SarCodec(cfg.model)
    codec.load_state_dict(ckpt["model"])
    codec.eval()
    return codec, cfg



# ---------------------------------------------------------------- train
@torch.no_grad()
def quick_eval(codec: SarCodec, tiles: list[torch.Tensor], pre: Preprocessing) -> dict[str, float]:
    """Estimated bpp and dB-domain PSNR of quantised reconstructions (eval mode)."""
    was_training = codec.training
    codec.eval()
    bits = pixels = 0.0
    sq = 0.0
    for x in tiles:
        x_hat, lik = codec(x, noise=False)
        bits += float(torch.sum(-torch.log2(lik)))
        pixels += x.numel()
        sq += float(torch.sum((x - x_hat) ** 2))
    codec.train(was_training)
    mse = sq / pixels
    return {"bpp": bits / pixels, "psnr_db": 10 * math.log10(1.0 / max(mse, 1e-12))}


def train(
    cfg: TrainConfig, resume: bool = True, progress: bool = True, stop_at: int | None = None
) -> Path:
    """Train (or resume) and return the checkpoint path.

    ``stop_at`` interrupts the run after that step (with a checkpoint), as a
    wall-clock limit or a crash would; training again resumes it.
    """
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    rank, world = init_distributed()
    torch.set_num_threads(max(cfg.threads, 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    seed_everything(cfg.seed + rank)
    run_dir = Path(cfg.run_dir)
    ckpt_path = run_dir / CHECKPOINT_NAME

    codec = SarCodec(cfg.model).to(device)
    opt = torch.optim.Adam(param_groups(codec, cfg.prior_lr_scale), lr=cfg.lr)
    step = 0
    rng = np.random.default_rng([cfg.seed, rank])
    if resume and ckpt_path.is_file():
        ckpt = load_checkpoint(ckpt_path)
        if ckpt["config"]["model"] != cfg.model.to_dict():
            raise ValueError(f"{ckpt_path} was trained with another model configuration; use a new run_dir.")
        codec.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        step = int(ckpt["step"])
        if ckpt.get("rng") is not None and rank == 0:
            rng.bit_generator.state = ckpt["rng"]
        torch.set_rng_state(ckpt["torch_rng"])
        log.info("Resumed %s at step %d", ckpt_path, step)
    elif cfg.init_from:
        init = load_checkpoint(cfg.init_from)
        codec.load_state_dict(init["model"])
        log.info("Initialised from %s (step %d)", cfg.init_from, init["step"])

    model: torch.nn.Module = codec
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(codec, device_ids=[device.index] if device.type == "cuda" else None)

    sampler = build_sampler(cfg.data, cfg.pre, cfg.seed)
    held = [
        torch.from_numpy(cfg.pre.to_network(s[: s.shape[0] // 16 * 16, : s.shape[1] // 16 * 16]))[None, None]
        for _, s in heldout_scenes(cfg.data, cfg.pre, synthetic=2)
    ] if rank == 0 and cfg.eval_every > 0 else []
    writer = SummaryWriter(str(run_dir / "tb")) if rank == 0 else None
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress or rank != 0, desc="train", mininterval=5)
    start = time.monotonic()

    def checkpoint() -> None:
        if rank == 0:
            save_checkpoint(ckpt_path, {
                "model": codec.state_dict(), "optimizer": opt.state_dict(), "step": step,
                "config": cfg.to_dict(), "preprocessing": asdict(cfg.pre),
                "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
            })

    codec.train()
    while step < cfg.steps:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg) * group.get("lr_scale", 1.0)
        x = make_batch(sampler, rng, cfg.batch, cfg.crop, cfg.pre, cfg.data.db_jitter).to(device)
        x_hat, lik = model(x, noise=True)
        terms = rate_distortion(x, x_hat, bits_per_pixel(lik, x.numel()), cfg.loss)
        opt.zero_grad(set_to_none=True)
        terms.loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(codec.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        bar.update(1)
        if writer is not None and step % cfg.log_every == 0:
            psnr = 10 * math.log10(1.0 / max(terms.mse.item(), 1e-12))
            for name, value in (("loss", terms.loss.item()), ("bpp", terms.bpp.item()),
                                ("mse", terms.mse.item()), ("ssim", terms.ssim.item()),
                                ("psnr_db", psnr), ("lr", lr_at(step, cfg))):
                writer.add_scalar(f"train/{name}", value, step)
            bar.set_postfix(
                bpp=f"{terms.bpp.item():.3f}", psnr=f"{psnr:.2f}", ssim=f"{terms.ssim.item():.3f}"
            )
            log.info("step %d loss %.4f bpp %.3f psnr %.2f ssim %.3f", step, terms.loss.item(),
                     terms.bpp.item(), psnr, terms.ssim.item())
        if held and step % cfg.eval_every == 0:
            ev = quick_eval(codec, held, cfg.pre)
            assert writer is not None
            for name, value in ev.items():
                writer.add_scalar(f"heldout/{name}", value, step)
            log.info("step %d held-out bpp %.3f psnr %.2f", step, ev["bpp"], ev["psnr_db"])
        if step % cfg.ckpt_every == 0:
            checkpoint()
        if stop_at is not None and step >= stop_at:
            break
        if cfg.max_minutes > 0 and time.monotonic() - start > cfg.max_minutes * 60:
            log.warning("Stopping at step %d: max_minutes %.1f reached (resume continues).",
                        step, cfg.max_minutes)
            break
    checkpoint()
    bar.close()
    if writer is not None:
        writer.close()
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
    return ckpt_path
