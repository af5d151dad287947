"""Training utilities shared by every model family: seeding, checkpoints, DDP set-up."""

from __future__ import annotations

import logging
import os
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: a temp file in the same folder, renamed on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_checkpoint(path: Path, required: tuple[str, ...], kind: str) -> dict[str, Any]:
    """A checkpoint's dict, loaded as tensors and plain values only (``weights_only``).

    Nothing in the file is executed: a checkpoint holding any other object (a pickled class,
    a function) is refused with :class:`ValueError`, as is one without the ``required`` keys.
    """
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint '{path}' does not exist; give a checkpoint.pt written by "
                                "'train'.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"'{path}' holds objects other than tensors and plain values, so it was not loaded "
                         f"(loading it would run code from the file: {first}). Use a checkpoint written by "
                         "this project's 'train'.") from None
    if not isinstance(ckpt, dict):
        raise ValueError(f"'{path}' is not a {kind} checkpoint (not a dict); use one written by 'train'.")
    for key in required:
        if key not in ckpt:
            raise ValueError(f"'{path}' is not a {kind} checkpoint (no '{key}'); use one written by 'train'.")
    return ckpt


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
