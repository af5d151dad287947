"""Training utilities shared by every model family: seeding, DDP set-up, resuming, the step loop,
the optimizer step, the learning-rate schedule and the logging of losses."""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoints import save_checkpoint

logger = logging.getLogger(__name__)

def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def init_distributed() -> tuple[int, int]:
    """(rank, world size): DDP under ``torchrun`` (WORLD_SIZE > 1), else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world


def local_device() -> torch.device:
    """This process's device: its GPU under ``torchrun`` (``LOCAL_RANK``), else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def start_processes(seed: int, threads: int) -> tuple[int, int, torch.device]:
    """(rank, world size, device) of this process, with its torch threads set and everything seeded
    from ``seed + rank`` (every rank draws its own samples)."""
    rank, world = init_distributed()
    torch.set_num_threads(max(threads, 1))
    seed_everything(seed + rank)
    return rank, world, local_device()


def distributed(module: torch.nn.Module, world: int, device: torch.device) -> torch.nn.Module:
    """``module`` wrapped in DDP when there is more than one process, else itself."""
    if world <= 1:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def finish_distributed(world: int) -> None:
    """Wait for every rank (rank 0 has written the last checkpoint)."""
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


@dataclass(kw_only=True)
class TrainingRun:
    """What every training run carries from step to step; a family adds its model, optimizer and
    checkpoint contents (:meth:`state`)."""

    rank: int
    world: int
    device: torch.device
    ckpt_path: Path
    step: int = 0

    def state(self) -> dict[str, Any]:
        """The checkpoint's contents: tensors and plain values only."""
        raise NotImplementedError

    def checkpoint(self) -> None:
        """Rank 0 writes :meth:`state` atomically."""
        if self.rank == 0:
            save_checkpoint(self.ckpt_path, self.state())


def restore(
    run: TrainingRun,
    load: Callable[[Any], dict[str, Any]],
    parts: Mapping[str, Any],
    *,
    resume: bool,
    mismatch: Callable[[dict[str, Any]], str | None],
    init_from: str | None = None,
    rng: np.random.Generator | None = None,
) -> bool:
    """Resume ``run`` from its folder's checkpoint (when ``resume`` and there is one), else start from
    the weights of ``init_from`` (its ``model`` entry, into ``parts["model"]``) when given; whether it
    resumed.

    ``parts`` maps checkpoint entries to what loads them (modules, optimizers); an entry the checkpoint
    lacks (an optimizer not saved) is skipped. ``mismatch(saved_config)`` says how the checkpoint's run
    differs from this one ("holds another network (...)"), None when it may be resumed. The random
    states saved as ``rng`` (of a numpy Generator, restored into ``rng`` when given) and ``torch_rng``
    are restored too, so a resumed run draws what the uninterrupted run would have drawn.
    """
    if resume and run.ckpt_path.is_file():
        state = load(run.ckpt_path)
        problem = mismatch(state["config"])
        if problem:
            raise ValueError(f"'{run.ckpt_path}' {problem}; use a new --run-dir or --no-resume.")
        for key, part in parts.items():
            if state.get(key) is not None:
                part.load_state_dict(state[key])
        run.step = int(state["step"])
        if rng is not None and state.get("rng") is not None:
            rng.bit_generator.state = state["rng"]
        if state.get("torch_rng") is not None:
            torch.set_rng_state(state["torch_rng"])
        logger.info("resumed %s at step %d", run.ckpt_path, run.step)
        return True
    if init_from:
        parts["model"].load_state_dict(load(init_from)["model"])
        logger.info("initialised weights from %s", init_from)
    return False


def cosine_lr(step: int, steps: int, lr: float, lr_final: float, warm: int) -> float:
    """Linear warm-up over ``warm`` steps, then cosine decay from ``lr`` to ``lr_final`` at ``steps``."""
    if step < warm:
        return lr * (step + 1) / warm
    t = min(step / max(steps, 1), 1.0)
    return lr_final + 0.5 * (lr - lr_final) * (1.0 + math.cos(math.pi * t))


def optimizer_step(
    opt: torch.optim.Optimizer, loss: torch.Tensor, params: list[torch.nn.Parameter], lr: float,
    grad_clip: float,
) -> None:
    """One update of ``params`` at learning rate ``lr``, gradients clipped to norm ``grad_clip``."""
    for group in opt.param_groups:
        group["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, grad_clip)
    opt.step()


def tensorboard_writer(run_dir: str, rank: int = 0) -> Any:
    """A TensorBoard writer in the run folder (rank 0), else None."""
    if rank != 0:
        return None
    from torch.utils.tensorboard import SummaryWriter

    Path(run_dir).mkdir(parents=True, exist_ok=True)
    return SummaryWriter(log_dir=run_dir)


def log_losses(writer: Any, step: int, parts: Mapping[str, float], bar: Any, lr: float | None = None) -> None:
    """The loss parts (and ``lr``) as TensorBoard scalars, one log line and the progress bar's postfix."""
    for k, v in parts.items():
        writer.add_scalar(f"loss/{k}", v, step)
    if lr is not None:
        writer.add_scalar("lr", lr, step)
    logger.info("step %d %s", step, " ".join(f"{k}={v:.4f}" for k, v in parts.items()))
    bar.set_postfix({k: f"{v:.3f}" for k, v in parts.items()})


def run_steps(run: TrainingRun, steps: int, one_step: Callable[[], None], bar: Any, *, ckpt_every: int,
              max_minutes: float, stop_at: int | None = None) -> None:
    """Call ``one_step`` (which advances ``run.step``) up to ``steps``, with a checkpoint every
    ``ckpt_every`` steps and at the end; stop early at ``stop_at`` or when ``max_minutes`` (> 0) of
    wall clock are spent (training again resumes). Closes the progress ``bar``."""
    start = time.monotonic()
    try:
        while run.step < steps:
            one_step()
            bar.update(1)
            if run.step % ckpt_every == 0:
                run.checkpoint()
            if stop_at is not None and run.step >= stop_at:
                break
            if max_minutes > 0 and time.monotonic() - start > max_minutes * 60:
                logger.warning("Stopping at step %d: max_minutes %.1f reached (training again resumes).",
                               run.step, max_minutes)
                break
    finally:
        bar.close()
    run.checkpoint()


def finish_run(run: TrainingRun, writer: Any) -> Path:
    """Close the TensorBoard ``writer`` (if any), wait for every rank; the checkpoint's path."""
    if writer is not None:
        writer.close()
    finish_distributed(run.world)
    return run.ckpt_path
