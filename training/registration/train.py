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
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..common import init_distributed, save_checkpoint, seed_everything
from .data import DataConfig, PairSampler, build_sources
from .losses import LossConfig, ncc_shift_loss, phase1_loss, regression_loss, smooth_embedding
from .models import ModelConfig, RegistrationNet, build_model

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass(frozen=True)
class TrainConfig:
    run_dir: str = "runs/regembed"
    phase: int = 1
    steps: int = 2000
    batch: int = 8
    crop: int = 96
    lr: float = 2e-3
    lr_final: float = 1e-4
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    seed: int = 0
    threads: int = 1
    log_every: int = 10
    ckpt_every: int = 50
    max_minutes: float = 0.0  # 0: no limit; else stop (with a checkpoint) after this long
    shift_radius: int = 8  # phase 2: largest |dx|, |dy| of the regression targets
    init_from: str | None = None  # start from these weights (e.g. phase 2 from a phase-1 run)
    progress: bool = True
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)

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
    """Short linear warm-up, then cosine decay from ``lr`` to ``lr_final`` (a pure function of the step)."""
    warm = min(50, cfg.steps // 10)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    t = min(step / max(cfg.steps, 1), 1.0)
    return cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1.0 + math.cos(math.pi * t))


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint written by :func:`train` (a run folder is accepted too)."""
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT_NAME
    if not p.is_file():
        raise FileNotFoundError(f"Checkpoint '{p}' does not exist; give a checkpoint.pt written by 'train'.")
    ckpt = torch.load(p, map_location="cpu", weights_only=False)
    for key in ("model", "step", "config"):
        if key not in ckpt:
            raise ValueError(
                f"'{p}' is not a registration checkpoint (no '{key}'); use one written by 'train'."
            )
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any]) -> tuple[RegistrationNet, TrainConfig]:
    cfg = TrainConfig.from_dict(ckpt["config"])
    net = build_model(cfg.model)
    net.load_state_dict(ckpt["model"])
    net.eval()
    return net, cfg


def _device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


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


def train(cfg: TrainConfig, resume: bool = True) -> Path:
    """Train (or resume) in ``cfg.run_dir``; returns the checkpoint path."""
    rank, world = init_distributed()
    torch.set_num_threads(max(1, cfg.threads))
    seed_everything(cfg.seed + rank)
    dev = _device()
    run = Path(cfg.run_dir)
    ckpt_path = run / CHECKPOINT_NAME
    if cfg.phase not in (1, 2):
        raise ValueError(f"phase must be 1 (encoder) or 2 (shift regressor), got {cfg.phase}.")

    module = build_model(cfg.model).to(dev)
    trainable = module.encoder if cfg.phase == 1 else module.regressor
    if cfg.phase == 2:  # the phase-1 encoder stays as it is (it is also the exported EMBED model)
        module.encoder.requires_grad_(False)
    params = [p for p in trainable.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    step = 0
    if resume and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path)
        saved = TrainConfig.from_dict(state["config"])
        if saved.model != cfg.model or saved.phase != cfg.phase:
            raise ValueError(
                f"'{ckpt_path}' was trained with another model/phase ({saved.model}, phase {saved.phase}); "
                "use a new --run-dir or --no-resume."
            )
        module.load_state_dict(state["model"])
        if state.get("optimizer") is not None:
            opt.load_state_dict(state["optimizer"])
        step = int(state["step"])
        log.info("resumed %s at step %d", ckpt_path, step)
    elif cfg.init_from:
        module.load_state_dict(load_checkpoint(cfg.init_from)["model"])
        log.info("initialised weights from %s", cfg.init_from)

    real, synth, _held = build_sources(cfg.data)
    sampler = PairSampler(
        real, synth, cfg.data, cfg.crop, cfg.model.out_stride, seed=cfg.seed * 1000 + rank + 7919 * step
    )
    net: torch.nn.Module = trainable
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(trainable, device_ids=[dev.index] if dev.type == "cuda" else None)

    writer = None
    if rank == 0:
        from torch.utils.tensorboard import SummaryWriter

        run.mkdir(parents=True, exist_ok=True)
        writer = SummaryWriter(log_dir=str(run))

    def checkpoint() -> None:
        if rank == 0:
            save_checkpoint(
                ckpt_path,
                {
                    "model": module.state_dict(),
                    "optimizer": opt.state_dict(),
                    "step": step,
                    "config": cfg.to_dict(),
                },
            )

    from tqdm import tqdm

    t0 = time.monotonic()
    bar = tqdm(
        total=cfg.steps, initial=step, disable=rank != 0 or not cfg.progress, desc=f"phase {cfg.phase}"
    )
    module.train()
    if cfg.phase == 2:
        module.encoder.eval()  # frozen statistics of the phase-1 encoder
    try:
        while step < cfg.steps:
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg)
            loss, parts = _step_loss(net, module, sampler, cfg, dev)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            step += 1
            bar.update(1)
            if writer is not None and (step % cfg.log_every == 0 or step == 1):
                for k, v in parts.items():
                    writer.add_scalar(f"loss/{k}", v, step)
                writer.add_scalar("lr", lr_at(step - 1, cfg), step)
                log.info("step %d %s", step, " ".join(f"{k}={v:.4f}" for k, v in parts.items()))
                bar.set_postfix({k: f"{v:.3f}" for k, v in parts.items()})
            if step % cfg.ckpt_every == 0:
                checkpoint()
            if cfg.max_minutes > 0 and time.monotonic() - t0 > 60 * cfg.max_minutes:
                log.info("time budget of %.1f min reached at step %d", cfg.max_minutes, step)
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
