"""Export the generator to ONNX (``Task.TRANSLATE``) with its metadata, and check parity.

Input ``input`` ``[N, 1, H, W]``: SAR in dB normalised by the engine (min-max
``[DB_MIN, DB_MAX]`` -> ``[0, 1]``, :data:`training.translation.data.NORMALISATION`);
output ``rgb`` ``[N, 3, H, W]`` in ``[-1, 1]`` (display = ``(y + 1) / 2``). ``H`` and ``W``
are dynamic multiples of ``2 ** n_down``; opset 17, ``dynamo=False``. The file is
written under a temporary name, checked against PyTorch through the engine's
:class:`engine.runtime.OnnxModel`, then renamed.

``colour_shrinkage`` s < 1 exports ``t + s (G(x) - t)``: the generator's colours pulled towards
a fixed colour ``t`` (by default the mean colour of the run's 3MOS training images). The
z-scored layout is unchanged; under a mean-absolute-error loss this shrinkage lowers the
error of a model whose colours are less certain than it claims (few training pairs). The
factor and the colour are recorded in the metadata.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.metadata import ModelMetadata, Task
from training.onnx_export import PARITY_TOLERANCE as PARITY_TOLERANCE  # re-exported for callers
from training.onnx_export import export_onnx, max_abs_difference, write_checked
from training.onnx_io import sha256_of_state

from .data import input_metadata, load_3mos, split_held_out
from .models import ModelConfig, generator_config
from .train import TrainConfig, generator_from_checkpoint, load_checkpoint

logger = logging.getLogger(__name__)


class ShrunkGenerator(nn.Module):
    """``toward + shrinkage * (generator(x) - toward)`` in the network's ``[-1, 1]`` output scale."""

    def __init__(self, gen: nn.Module, shrinkage: float, toward_display: Sequence[float]) -> None:
        super().__init__()
        if not 0.0 <= shrinkage <= 1.0:
            raise ValueError(f"--colour-shrinkage must be in [0, 1], got {shrinkage}.")
        if len(toward_display) != 3 or not all(0.0 <= v <= 1.0 for v in toward_display):
            raise ValueError(
                f"--shrink-toward must be three display values in [0, 1], got {list(toward_display)}."
            )
        self.gen, self.shrinkage = gen, float(shrinkage)
        self.cfg: ModelConfig = generator_config(gen)
        toward = torch.tensor([2.0 * float(v) - 1.0 for v in toward_display], dtype=torch.float32)
        self.register_buffer("toward", toward.reshape(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.toward + self.shrinkage * (self.gen(x) - self.toward)


def training_mean_colour(cfg: TrainConfig) -> tuple[float, float, float]:
    """Mean display colour of the run's 3MOS training images (what the mean-colour baseline paints)."""
    from .evaluate import mean_rgb

    if not cfg.data.use_3mos:
        raise ValueError("The run did not train on 3MOS pairs; give --shrink-toward R G B.")
    train, _ = split_held_out(load_3mos(cfg.data.real_root), cfg.data.held_out)
    r, g, b = (float(v) for v in mean_rgb(train))
    return r, g, b


def generator_metadata(
    gen: nn.Module, cfg: TrainConfig, model_id: str, tile_size: int, overlap: int, steps_done: int
) -> ModelMetadata:
    """The exported model's metadata: the training normalisation plus provenance."""
    model = generator_config(gen)
    if tile_size % model.multiple:
        raise ValueError(
            f"--tile-size {tile_size} must be a multiple of {model.multiple_rule} = {model.multiple}."
        )
    base = input_metadata(model_id, sha256_of_state(gen.state_dict()), tile_size, overlap)
    extra = dict(base.extra)
    extra.update(
        {
            "architecture": model.describe(),
            "training_steps": str(steps_done),
            "seed": str(cfg.seed),
            "training_data": _data_summary(cfg),
        }
    )
    if cfg.init_from:  # fine-tuned: training_steps counts this run's steps only
        extra["initialised_from"] = cfg.init_from
    return base.with_updates(extra=extra)


def _data_summary(cfg: TrainConfig) -> str:
    d = cfg.data
    parts = []
    if d.use_3mos:
        parts.append(f"3MOS pairs except {', '.join(d.held_out)}")
    if d.sen12_root:
        parts.append("SEN1-2")
    if d.geotiff_root:
        parts.append("GeoTIFF pairs")
    parts.append(f"{d.synthetic_pairs} synthetic scenes (seeds {d.synthetic_first_seed}+)")
    return "; ".join(parts)


def _export(gen: nn.Module, path: Path, size: int) -> None:
    dummy = torch.zeros(1, generator_config(gen).in_bands, size, size)
    axes = {"input": {0: "N", 2: "H", 3: "W"}, "rgb": {0: "N", 2: "H", 3: "W"}}
    export_onnx(gen, (dummy,), path, ["input"], ["rgb"], axes)


def parity(gen: nn.Module, path: Path, size: int, seed: int = 0) -> float:
    """Max abs difference ONNX Runtime (engine ``OnnxModel``) vs PyTorch on a random 2-tile batch."""
    x = np.random.default_rng(seed).random((2, generator_config(gen).in_bands, size, size), dtype=np.float32)
    return max_abs_difference(gen, path, Task.TRANSLATE, x)


def export_generator(
    checkpoint: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    model_id: str,
    tile_size: int = 256,
    overlap: int = 64,
    check_parity: bool = True,
    colour_shrinkage: float = 1.0,
    shrink_toward: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Write ``<out_dir>/<model_id>.onnx``; returns its path, metadata and parity error."""
    ckpt = load_checkpoint(checkpoint)
    generator, cfg = generator_from_checkpoint(ckpt)
    meta = generator_metadata(generator, cfg, model_id, tile_size, overlap, int(ckpt["step"]))
    gen: nn.Module = generator
    if colour_shrinkage != 1.0:
        toward = tuple(shrink_toward) if shrink_toward is not None else training_mean_colour(cfg)
        gen = ShrunkGenerator(generator, colour_shrinkage, toward).eval()
        extra = {
            **meta.extra,
            "colour_shrinkage": f"{colour_shrinkage:g}",
            "shrink_toward": ",".join(f"{v:.4f}" for v in toward),
        }
        meta = meta.with_updates(extra=extra)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    final = out / f"{model_id}.onnx"
    checked = write_checked(final, lambda tmp: _export(gen, tmp, tile_size), meta,
                            (lambda tmp: parity(gen, tmp, tile_size)) if check_parity else None)
    err = checked if check_parity else None
    logger.info("exported %s (parity %s)", final, "skipped" if err is None else f"{err:.2e}")
    return {"path": str(final), "parity_max_abs": err, "metadata": meta.to_dict()}
