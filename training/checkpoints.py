"""Checkpoint files of every model family: atomic writes, loading as tensors and plain values only."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any, TypeVar

import torch

M = TypeVar("M", bound=torch.nn.Module)

CHECKPOINT_NAME = "checkpoint.pt"
"""The checkpoint file in a run folder, for every family."""
MODEL_CHECKPOINT_KEYS = ("model", "step", "config")
"""What a checkpoint of a family with one network holds at least (keypoints, registration, the hyperprior;
the codec adds its preprocessing)."""


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


def read_run_checkpoint(path: str | os.PathLike[str], required: tuple[str, ...], kind: str) -> dict[str, Any]:
    """:func:`read_checkpoint` of a checkpoint file or of the run folder holding :data:`CHECKPOINT_NAME`."""
    p = Path(path)
    return read_checkpoint(p / CHECKPOINT_NAME if p.is_dir() else p, required, kind)


def restored(module: M, state: dict[str, Any]) -> M:
    """``module`` with the weights of ``state`` (a checkpoint's state dict), in eval mode."""
    module.load_state_dict(state)
    module.eval()
    return module
