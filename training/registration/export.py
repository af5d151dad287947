"""Export the registration encoder (``Task.EMBED``) and shift regressor (``Task.SHIFT_REGRESS``) to ONNX.

Encoder: input ``input`` ``[N, 1, H, W]`` (one band after the engine's
``prepare_image``; the network standardises each tile itself) -> ``embedding``
``[N, D, H/s, W/s]``, L2-normalised over ``D`` (``resnet``) or used as it comes
(``guided``; metadata ``extra.embedding_norm = none``). Regressor: input ``input``
``[N, 2, H, W]`` (channel 0 = INPUT window, 1 = REFERENCE window at the same
place) -> ``shift`` ``[N, 2]`` = ``(dx, dy)`` pixels, engine convention (the
INPUT content must move by ``+dx, +dy``). Dynamic N, H, W; opset 17;
``dynamo=False``. Files are written to temporary names, checked against
PyTorch through the engine's :class:`engine.runtime.OnnxModel`, then renamed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.metadata import InputTransform, ModelMetadata, Normalisation, Task
from engine.registration.shift.deep import AS_IS, EMBEDDING_NORM, MATCH_SIGMA, PER_PIXEL, PREPARE_IMAGE
from training.onnx_export import PARITY_TOLERANCE as PARITY_TOLERANCE  # re-exported for callers
from training.onnx_export import export_onnx, max_abs_difference, write_checked
from training.onnx_io import sha256_of_state

from .models import RegistrationNet, ShiftRegressor
from .train import TrainConfig, load_checkpoint, model_from_checkpoint

logger = logging.getLogger(__name__)

PREPROCESS = PREPARE_IMAGE  # the engine applies prepare_image to each window first


class _PairInput(nn.Module):
    """The regressor with one 2-band input (what :class:`engine.runtime.OnnxModel` feeds)."""

    def __init__(self, regressor: ShiftRegressor) -> None:
        super().__init__()
        self.regressor = regressor
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.regressor(x[:, 0:1], x[:, 1:2])


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def embed_metadata(
    net: RegistrationNet,
    cfg: TrainConfig,
    model_id: str,
    tile_size: int = 256,
    overlap: int | None = None,
    task: Task = Task.EMBED,
    steps_done: int | None = None,
    match_sigma: float = 0.0,
) -> ModelMetadata:
    """Metadata of the encoder (or, with ``task=SHIFT_REGRESS``, of the regressor).

    ``match_sigma`` > 0: the engine smooths the embedding by this Gaussian before the search.
    """
    if match_sigma < 0:
        raise ValueError(f"match_sigma must be >= 0 (got {match_sigma}).")
    s = cfg.model.out_stride
    rf = net.encoder.receptive_field()
    if overlap is None:
        overlap = _round_up(max(rf // 2, s), s)
    regress = task is Task.SHIFT_REGRESS
    guided = cfg.model.arch == "guided"
    if regress:
        meaning = (
            "shift [N, 2] = (dx, dy) px: INPUT (band 1) content must move by +dx, +dy to match the "
            "REFERENCE (band 2)"
        )
    elif guided:
        meaning = (
            f"dense embedding [N, {cfg.model.embed_dim}, H, W]: {cfg.model.orientations} oriented-gradient "
            "channels (local contrast normalised) plus a learned residual; used as it comes (no per-pixel "
            "norm); modality-invariant (SAR and optical through the same network)"
        )
    else:
        meaning = (
            f"dense embedding [N, {cfg.model.embed_dim}, H/{s}, W/{s}], L2-normalised over channels; "
            "modality-invariant (SAR and optical through the same network)"
        )
    return ModelMetadata(
        task=task,
        model_id=model_id,
        weights_sha256=sha256_of_state(net.state_dict()),
        input_bands=2 if regress else 1,
        input_transform=InputTransform.NONE,
        normalisation=Normalisation.NONE,
        tile_size=tile_size,
        overlap=overlap,
        scale_factor=1 if regress else s,
        latent_channels=0 if regress else cfg.model.embed_dim,
        output_meaning=meaning,
        extra={
            "preprocess": PREPROCESS,
            EMBEDDING_NORM: AS_IS if guided else PER_PIXEL,
            "architecture": cfg.model.arch,
            "receptive_field": str(rf),
            "phase": "2" if regress else "1",
            "training_steps": str(cfg.steps if steps_done is None else steps_done),
            "seed": str(cfg.seed),
            "init_from": str(cfg.init_from or ""),
            **({} if regress or match_sigma == 0 else {MATCH_SIGMA: f"{match_sigma:g}"}),
        },
    )


def _export(module: nn.Module, dummy: torch.Tensor, path: Path, out: str, spatial_out: bool) -> None:
    out_axes = {0: "N", 2: "H_out", 3: "W_out"} if spatial_out else {0: "N"}
    axes = {"input": {0: "N", 2: "H", 3: "W"}, out: out_axes}
    export_onnx(module, (dummy,), path, ["input"], [out], axes)


def parity(module: nn.Module, path: Path, task: Task, bands: int, seed: int = 0) -> float:
    """Max abs difference ONNX Runtime (engine ``OnnxModel``) vs PyTorch on a random non-square batch."""
    rng = np.random.default_rng(seed)
    x = (rng.random((2, bands, 48, 80), dtype=np.float32) * 255.0).astype(np.float32)
    return max_abs_difference(module, path, task, x)


def _write(module: nn.Module, meta: ModelMetadata, path: Path, out: str, spatial: bool, check: bool) -> float:
    bands = meta.input_bands
    diff = write_checked(
        path,
        lambda tmp: _export(module, torch.zeros(1, bands, 64, 64), tmp, out, spatial),
        meta,
        (lambda tmp: parity(module, tmp, meta.task, bands)) if check else None,
    )
    logger.info("wrote %s (%s, parity %.2e)", path, meta.task.value, diff)
    return diff


def export_models(
    checkpoint: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    model_id: str,
    tile_size: int = 256,
    overlap: int | None = None,
    regressor: bool = False,
    check_parity: bool = True,
    match_sigma: float | None = None,
) -> dict[str, dict[str, object]]:
    """Write ``<model_id>.onnx`` (EMBED) and, if asked, ``<model_id>-regressor.onnx`` (SHIFT_REGRESS).

    ``match_sigma`` None: the smoothing the model was trained with (``loss.match_sigma``).
    """
    ckpt = load_checkpoint(checkpoint)
    net, cfg = model_from_checkpoint(ckpt)
    if match_sigma is None:
        match_sigma = cfg.loss.match_sigma
    done = int(ckpt["step"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, object]] = {}
    meta = embed_metadata(net, cfg, model_id, tile_size, overlap, steps_done=done, match_sigma=match_sigma)
    path = out / f"{model_id}.onnx"
    diff = _write(net.encoder, meta, path, "embedding", True, check_parity)
    results["embed"] = {"path": str(path), "parity_max_abs": diff, "model_id": model_id}
    if regressor:
        rmeta = embed_metadata(
            net, cfg, f"{model_id}-regressor", tile_size, overlap, Task.SHIFT_REGRESS, steps_done=done
        )
        rpath = out / f"{model_id}-regressor.onnx"
        rdiff = _write(_PairInput(net.regressor), rmeta, rpath, "shift", False, check_parity)
        results["shift_regress"] = {"path": str(rpath), "parity_max_abs": rdiff, "model_id": rmeta.model_id}
    return results
