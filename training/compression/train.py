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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import common
from ..checkpoints import CHECKPOINT_NAME, MODEL_CHECKPOINT_KEYS, read_checkpoint, restored
from ..config import ConfigDict
from .data import DataConfig, Preprocessing, build_sampler, heldout_scenes, make_batch
from .entropy import bits_per_pixel
from .hyper.model import HyperCodec, HyperConfig, HyperPrior
from .losses import LossWeights, rate_distortion
from .models import ModelConfig, SarCodec
from .warmstart import warm_start

logger = logging.getLogger(__name__)

CHECKPOINT_KEYS = (*MODEL_CHECKPOINT_KEYS, "preprocessing")


@dataclass(frozen=True)
class TrainConfig(ConfigDict):
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
    warm_start: str | None = None  # fine-tune a shipped hyperprior model (its encoder ONNX; needs hyper)
    hyper: HyperConfig | None = None  # a hyperprior entropy model instead of the factorised prior
    loss: LossWeights = field(default_factory=LossWeights)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    pre: Preprocessing = field(default_factory=Preprocessing)


# ------------------------------------------------------------ utilities
def param_groups(codec: SarCodec | HyperCodec, prior_lr_scale: float) -> list[dict[str, Any]]:
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
    """A checkpoint written by :func:`train`, loaded as tensors and plain values only (see
    :func:`training.checkpoints.read_checkpoint`: a file carrying any other object is refused)."""
    return read_checkpoint(Path(path), CHECKPOINT_KEYS, "SAR codec")


def build_codec(cfg: TrainConfig) -> SarCodec | HyperCodec:
    """The trainable codec: the transform with its factorised prior, or (``cfg.hyper``) with a hyperprior."""
    codec = SarCodec(cfg.model)
    return codec if cfg.hyper is None else HyperCodec(codec, HyperPrior(cfg.hyper))


def codec_from_checkpoint(ckpt: dict[str, Any]) -> tuple[SarCodec, TrainConfig]:
    """A factorised-prior codec's checkpoint (export, evaluate); hyperprior codecs:
    :func:`hyper_codec_from_checkpoint`."""
    cfg = TrainConfig.from_dict(ckpt["config"])
    if cfg.hyper is not None:
        raise ValueError("This checkpoint holds a hyperprior codec (train --warm-start); compare it with "
                         "'python -m training.compression hyper compare'.")
    return restored(SarCodec(cfg.model), ckpt["model"]), cfg


def hyper_codec_from_checkpoint(ckpt: dict[str, Any]) -> tuple[HyperCodec, TrainConfig]:
    """A hyperprior codec's checkpoint (``train --warm-start``)."""
    cfg = TrainConfig.from_dict(ckpt["config"])
    codec = build_codec(cfg)
    if not isinstance(codec, HyperCodec):
        raise ValueError("This checkpoint holds a factorised-prior codec, not a hyperprior codec "
                         "(train --warm-start).")
    return restored(codec, ckpt["model"]), cfg


# ---------------------------------------------------------------- train
@torch.no_grad()
def quick_eval(
    codec: SarCodec | HyperCodec, tiles: list[torch.Tensor], pre: Preprocessing
) -> dict[str, float]:
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


@dataclass(kw_only=True)
class _Run(common.TrainingRun):
    """The codec's training state."""

    cfg: TrainConfig
    codec: SarCodec | HyperCodec
    opt: torch.optim.Optimizer
    rng: np.random.Generator

    def state(self) -> dict[str, Any]:
        """Everything a resume needs (tensors and plain values only)."""
        return {
            "model": self.codec.state_dict(), "optimizer": self.opt.state_dict(), "step": self.step,
            "config": self.cfg.to_dict(), "preprocessing": asdict(self.cfg.pre),
            "rng": self.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
        }


def _start(cfg: TrainConfig) -> _Run:
    """Processes, threads, seeds, the codec and its optimizer."""
    rank, world, device = common.start_processes(cfg.seed, cfg.threads)
    codec = build_codec(cfg).to(device)
    opt = torch.optim.Adam(param_groups(codec, cfg.prior_lr_scale), lr=cfg.lr)
    return _Run(rank=rank, world=world, device=device, ckpt_path=Path(cfg.run_dir) / CHECKPOINT_NAME, cfg=cfg,
                codec=codec, opt=opt, rng=np.random.default_rng([cfg.seed, rank]))


def _restore(run: _Run, resume: bool) -> None:
    """Resume from the run folder's checkpoint, or start from ``init_from``'s weights or (``warm_start``)
    a shipped hyperprior model's ONNX files."""
    cfg = run.cfg

    def mismatch(saved: dict[str, Any]) -> str | None:
        hyper = cfg.hyper.to_dict() if cfg.hyper is not None else None
        same = saved["model"] == cfg.model.to_dict() and saved.get("hyper") == hyper
        return None if same else "was trained with another model configuration"

    resumed = common.restore(run, load_checkpoint, {"model": run.codec, "optimizer": run.opt}, resume=resume,
                             mismatch=mismatch, init_from=cfg.init_from,
                             rng=run.rng if run.rank == 0 else None)
    if not resumed and cfg.warm_start:
        if not isinstance(run.codec, HyperCodec):
            raise ValueError("warm_start fine-tunes a hyperprior model: the configuration needs 'hyper' (the "
                             "command line takes it from the --warm-start file).")
        warm_start(run.codec, Path(cfg.warm_start))


def _heldout_tiles(run: _Run) -> list[torch.Tensor]:
    """Held-out images (multiples of 16 px) for :func:`quick_eval`, on rank 0 when evaluation is on."""
    cfg = run.cfg
    if run.rank != 0 or cfg.eval_every <= 0:
        return []
    return [
        torch.from_numpy(cfg.pre.to_network(s[: s.shape[0] // 16 * 16, : s.shape[1] // 16 * 16]))[None, None]
        for _, s in heldout_scenes(cfg.data, cfg.pre, synthetic=2)
    ]


def _step(run: _Run, model: torch.nn.Module, sampler: Any) -> Any:
    """One optimisation step; returns the loss terms."""
    cfg = run.cfg
    for group in run.opt.param_groups:
        group["lr"] = lr_at(run.step, cfg) * group.get("lr_scale", 1.0)
    x = make_batch(sampler, run.rng, cfg.batch, cfg.crop, cfg.pre, cfg.data.db_jitter).to(run.device)
    x_hat, lik = model(x, noise=True)
    terms = rate_distortion(x, x_hat, bits_per_pixel(lik, x.numel()), cfg.loss)
    run.opt.zero_grad(set_to_none=True)
    terms.loss.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(run.codec.parameters(), cfg.grad_clip)
    run.opt.step()
    run.step += 1
    return terms


def _log_terms(run: _Run, terms: Any, writer: Any, bar: Any) -> None:
    """TensorBoard scalars, the progress bar's figures and a log line."""
    step = run.step
    psnr = 10 * math.log10(1.0 / max(terms.mse.item(), 1e-12))
    for name, value in (("loss", terms.loss.item()), ("bpp", terms.bpp.item()), ("mse", terms.mse.item()),
                        ("ssim", terms.ssim.item()), ("psnr_db", psnr), ("lr", lr_at(step, run.cfg))):
        writer.add_scalar(f"train/{name}", value, step)
    bar.set_postfix(bpp=f"{terms.bpp.item():.3f}", psnr=f"{psnr:.2f}", ssim=f"{terms.ssim.item():.3f}")
    logger.info("step %d loss %.4f bpp %.3f psnr %.2f ssim %.3f", step, terms.loss.item(), terms.bpp.item(),
                psnr, terms.ssim.item())


def _log_heldout(run: _Run, held: list[torch.Tensor], writer: Any) -> None:
    ev = quick_eval(run.codec, held, run.cfg.pre)
    for name, value in ev.items():
        writer.add_scalar(f"heldout/{name}", value, run.step)
    logger.info("step %d held-out bpp %.3f psnr %.2f", run.step, ev["bpp"], ev["psnr_db"])


def train(
    cfg: TrainConfig, resume: bool = True, progress: bool = True, stop_at: int | None = None
) -> Path:
    """Train (or resume) and return the checkpoint path.

    ``stop_at`` interrupts the run after that step (with a checkpoint), as a
    wall-clock limit or a crash would; training again resumes it.
    """
    from tqdm import tqdm

    run = _start(cfg)
    _restore(run, resume)
    model = common.distributed(run.codec, run.world, run.device)
    sampler = build_sampler(cfg.data, cfg.pre, cfg.seed)
    held = _heldout_tiles(run)
    writer = common.tensorboard_writer(str(Path(cfg.run_dir) / "tb"), run.rank)
    bar = tqdm(total=cfg.steps, initial=run.step, disable=not progress or run.rank != 0, desc="train",
               mininterval=5)

    def one_step() -> None:
        terms = _step(run, model, sampler)
        if writer is not None and run.step % cfg.log_every == 0:
            _log_terms(run, terms, writer, bar)
        if held and writer is not None and run.step % cfg.eval_every == 0:
            _log_heldout(run, held, writer)

    run.codec.train()
    common.run_steps(run, cfg.steps, one_step, bar, ckpt_every=cfg.ckpt_every, max_minutes=cfg.max_minutes,
                     stop_at=stop_at)
    return common.finish_run(run, writer)
