"""Export a trained codec: encoder and decoder ONNX files with full metadata + parity check.

Follows the engine contract (``/tmp/codec_contract.md``, mirrored in
``docs/TRAINING.md``): encoder input ``x`` ``[N,1,H,W]`` -> ``y`` (continuous
latents); decoder input ``y_hat`` (integer-valued floats ``q + m_c``) ->
``x_hat`` in ``[0, 1]``; dynamic N, H, W; opset 17; the discretised prior is
stored as ``extra["entropy_model"]`` (``EntropyModelTable.to_json()``) in both
files. Both files are written to temporary names and renamed only after the
ONNX Runtime (engine ``OnnxModel``) vs PyTorch parity check has passed.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.codec.entropy import EntropyModelTable
from engine.codec.models import LAMBDA_KEY
from engine.metadata import InputTransform, ModelMetadata, Normalisation, Task
from training.onnx_io import OPSET, attach_metadata, sha256_of_state

from .models import STRIDE, SarCodec
from .train import TrainConfig

logger = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-4


class _Decoder(nn.Module):
    def __init__(self, codec: SarCodec) -> None:
        super().__init__()
        self.decoder = codec.decoder
        self.eval()  # torch.onnx.export restores the wrapper's mode on the whole tree afterwards

    def forward(self, y_hat: torch.Tensor) -> torch.Tensor:
        return self.decoder(y_hat)


def entropy_table(codec: SarCodec) -> EntropyModelTable:
    medians, offsets, pmfs = codec.prior.discretise()
    return EntropyModelTable.from_pmfs(medians, offsets, pmfs)


def codec_metadata(
    codec: SarCodec, cfg: TrainConfig, model_id: str, rate_point: str, table: EntropyModelTable,
    tile_size: int = 256, overlap: int = 32,
) -> tuple[ModelMetadata, ModelMetadata]:
    """Metadata of the encoder and the decoder (same id, same weights hash, different task)."""
    pre = cfg.pre
    base: dict[str, Any] = {
        "model_id": model_id,
        "weights_sha256": sha256_of_state(codec.state_dict()),
        "input_bands": 1,
        "input_transform": InputTransform.DB,
        "normalisation": Normalisation.MINMAX,
        "db_min": float(pre.db_min),
        "db_max": float(pre.db_max),
        "noise_floor_db": float(pre.noise_floor_db),
        "tile_size": tile_size,
        "overlap": overlap,
        "scale_factor": STRIDE,
        "latent_channels": cfg.model.latent_channels,
        "extra": {
            "rate_point": rate_point,
            "entropy_model": table.to_json(),
            LAMBDA_KEY: repr(float(cfg.loss.lmbda)),
            "architecture": cfg.model.variant,
        },
    }
    enc = ModelMetadata(
        task=Task.COMPRESS_ENCODER,
        output_meaning="continuous latents y [N, C, H/16, W/16]; quantise as round(y - median_c)",
        **base,
    )
    dec = ModelMetadata(
        task=Task.COMPRESS_DECODER,
        output_meaning="reconstruction x_hat [N, 1, 16h, 16w] in [0, 1] (normalised dB)",
        **base,
    )
    return enc, dec


def _export_onnx(module: nn.Module, dummy: torch.Tensor, path: Path, inp: str, out: str) -> None:
    axes = {inp: {0: "N", 2: "H", 3: "W"}, out: {0: "N", 2: "H_out", 3: "W_out"}}
    torch.onnx.export(
        module, (dummy,), str(path), input_names=[inp], output_names=[out], dynamic_axes=axes,
        opset_version=OPSET, do_constant_folding=True, dynamo=False,
    )


@torch.no_grad()
def parity(codec: SarCodec, enc_path: Path, dec_path: Path, seed: int = 0) -> tuple[float, float]:
    """ONNX Runtime (engine ``OnnxModel``) vs PyTorch: encoder and decoder differences.

    Decoder: max abs difference (outputs in [0, 1]). Encoder: max abs difference relative to
    ``max(1, max |y|)``, since latents can be large (variant D: DCT coefficients / dct_step) and float32
    rounding grows with them; what matters is the difference against the quantisation step of 1.
    """
    from engine.runtime import OnnxModel

    codec.eval()
    rng = np.random.default_rng(seed)
    x = rng.random((2, 1, 48, 80), dtype=np.float32)
    y_torch = codec.encoder(torch.from_numpy(x)).numpy()
    y_onnx = OnnxModel(enc_path, providers=["CPUExecutionProvider"], tasks=[Task.COMPRESS_ENCODER]).run(x)
    y_hat = np.round(y_torch).astype(np.float32)
    x_torch = codec.decoder(torch.from_numpy(y_hat)).numpy()
    x_onnx = OnnxModel(dec_path, providers=["CPUExecutionProvider"], tasks=[Task.COMPRESS_DECODER]).run(y_hat)
    if y_onnx.shape != y_torch.shape or x_onnx.shape != x_torch.shape:
        raise AssertionError(f"ONNX output shapes {y_onnx.shape}/{x_onnx.shape} differ from PyTorch.")
    y_scale = max(1.0, float(np.max(np.abs(y_torch))))
    return float(np.max(np.abs(y_onnx - y_torch))) / y_scale, float(np.max(np.abs(x_onnx - x_torch)))


@contextlib.contextmanager
def committed_pair(final: tuple[Path, Path]) -> Iterator[tuple[Path, Path]]:
    """Temporary names for an encoder/decoder pair, renamed to ``final`` only when the block succeeds
    (else removed: nothing is written)."""
    tmp = (final[0].with_name(f".{final[0].stem}.tmp.onnx"), final[1].with_name(f".{final[1].stem}.tmp.onnx"))
    try:
        yield tmp
        for t, f in zip(tmp, final, strict=True):
            os.replace(t, f)
    finally:
        for t in tmp:
            if t.exists():
                t.unlink()


def export_codec(
    codec: SarCodec, cfg: TrainConfig, out_dir: Path, model_id: str, rate_point: str,
    tile_size: int = 256, overlap: int = 32, check_parity: bool = True,
) -> tuple[Path, Path]:
    """Write ``<model_id>-encoder.onnx`` and ``<model_id>-decoder.onnx`` into ``out_dir``."""
    codec = codec.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    table = entropy_table(codec)
    enc_meta, dec_meta = codec_metadata(codec, cfg, model_id, rate_point, table, tile_size, overlap)
    final = (out_dir / f"{model_id}-encoder.onnx", out_dir / f"{model_id}-decoder.onnx")
    with committed_pair(final) as tmp:
        c = cfg.model.latent_channels
        _export_onnx(codec.encoder, torch.zeros(1, 1, tile_size, tile_size), tmp[0], "x", "y")
        lat = tile_size // STRIDE
        _export_onnx(_Decoder(codec), torch.zeros(1, c, lat, lat), tmp[1], "y_hat", "x_hat")
        codec.eval()
        attach_metadata(tmp[0], enc_meta)
        attach_metadata(tmp[1], dec_meta)
        if check_parity:
            d_enc, d_dec = parity(codec, tmp[0], tmp[1])
            logger.info("parity ONNX vs PyTorch: encoder %.2e, decoder %.2e", d_enc, d_dec)
            if max(d_enc, d_dec) >= PARITY_TOLERANCE:
                raise AssertionError(
                    f"ONNX/PyTorch parity failed (encoder {d_enc:.2e}, decoder {d_dec:.2e} >= "
                    f"{PARITY_TOLERANCE}); nothing was written."
                )
    return final
