"""Held-out scores of a trained codec: bpp (estimated and range-coded), PSNR, SSIM, ENL ratio, EPI.

Every held-out image is cropped to a multiple of 16, normalised with the
checkpoint's own preprocessing, encoded, quantised (``round(y - m_c)``) and
decoded as a whole (the network is fully convolutional). Rates:

* ``bpp_est``: ``-log2`` likelihoods of the quantised latents (the prior);
* ``bpp_coded``: bytes of the latents range-coded with the exported entropy
  table (``engine.codec.entropy.EntropyModelTable``), without file header
  or nodata mask, times 8 / pixels.

``psnr_unquantised_db`` decodes the continuous latents ``y`` (no rounding):
the autoencoder's own ceiling. When it is close to ``psnr_db``, more bits
cannot help and the network's capacity or training is the limit.

Distortion is measured against the input clipped to ``[db_min, db_max]``
(what the codec is asked to represent) with the engine's own metrics
(:func:`engine.codec.quality.metrics.compare`): PSNR and SSIM with ``peak = db_max -
db_min``, ENL ratio on homogeneous blocks (linear intensity), EPI.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import DataConfig, Preprocessing, crop_to_multiple, heldout_scenes
from .models import SarCodec
from .train import codec_from_checkpoint, load_checkpoint

logger = logging.getLogger(__name__)

BENCHMARK_ONLY_PNGS = ("sar_sar_r2d2/g1.png", "sar_sar_r2d2/g2.png")
"""Never trained on (CC BY-NC-SA); scored separately as 'benchmark' images."""


@torch.no_grad()
def score_image(codec: SarCodec, db: np.ndarray, pre: Preprocessing) -> dict[str, float]:
    """Encode/decode one dB image and return its figures."""
    from engine.codec.entropy import EntropyModelTable
    from engine.codec.quality.metrics import compare, psnr

    codec.eval()
    db = crop_to_multiple(db)
    x = pre.to_network(db)
    xt = torch.from_numpy(x)[None, None]
    y = codec.encoder(xt)
    medians, offsets, pmfs = codec.prior.discretise()
    table = EntropyModelTable.from_pmfs(medians, offsets, pmfs)
    m = torch.tensor(medians, dtype=torch.float32).reshape(1, -1, 1, 1)
    q = torch.round(y - m)
    y_hat = q + m
    lik = codec.prior.likelihood(y_hat)
    x_hat = codec.decoder(y_hat)[0, 0].numpy()
    x_ceiling = codec.decoder(y)[0, 0].numpy()
    pixels = x.size
    coded = table.encode(q[0].numpy().astype(np.int32))
    ref_db, rec_db = pre.to_db(x), pre.to_db(x_hat)
    q_report = compare(ref_db, rec_db, peak=pre.db_max - pre.db_min)
    ceiling = psnr(ref_db, pre.to_db(x_ceiling), peak=pre.db_max - pre.db_min)
    return {
        "bpp_est": float(torch.sum(-torch.log2(lik))) / pixels,
        "bpp_coded": 8.0 * len(coded) / pixels,
        "psnr_db": q_report.psnr,
        "psnr_unquantised_db": ceiling,
        "ssim": q_report.ssim,
        "enl_ratio": q_report.enl_ratio,
        "epi": q_report.epi,
        "pixels": float(pixels),
    }


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = [k for k in rows[0] if k != "pixels"]
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}


def evaluate_codec(
    codec: SarCodec, pre: Preprocessing, data: DataConfig, synthetic: int = 4, benchmark: bool = True,
) -> dict[str, Any]:
    """Per-image and mean scores on the held-out real and synthetic images."""
    from training.data import load_display_png_db

    images = heldout_scenes(data, pre, synthetic=synthetic)
    groups: dict[str, list[dict[str, float]]] = {"real": [], "synthetic": [], "benchmark": []}
    per_image: dict[str, dict[str, float]] = {}
    for name, db in images:
        s = score_image(codec, db, pre)
        per_image[name] = s
        groups["synthetic" if name.startswith("synthetic/") else "real"].append(s)
    root = Path(data.real_root)
    if benchmark and data.use_real:
        for rel in BENCHMARK_ONLY_PNGS:
            if (root / rel).is_file():
                db = load_display_png_db(root / rel, noise_floor_db=pre.noise_floor_db)
                s = score_image(codec, db, pre)
                per_image[f"benchmark/{rel}"] = s
                groups["benchmark"].append(s)
    means = {g: _mean(rows) for g, rows in groups.items() if rows}
    return {"mean": means, "images": per_image}


def score_through_engine(
    encoder: Path, decoder: Path, name: str, db: np.ndarray, pre: Preprocessing, workdir: Path,
) -> dict[str, float]:
    """Compress + decompress one dB image with the engine codec; file-level bpp and quality."""
    from affine import Affine

    from engine.codec.decode import decompress_file
    from engine.codec.encode import compress_raster
    from engine.codec.quality.metrics import compare
    from engine.raster_io import write_raster

    safe = name.replace("/", "_")
    src = write_raster(workdir / f"{safe}.tif", np.asarray(db, np.float32), None, Affine.identity(), None)
    enc = compress_raster(src, workdir / f"{safe}.sarz", input_kind="db", encoder_path=encoder)
    out = decompress_file(enc.path, workdir / f"{safe}_rec.tif", output_kind="db", decoder_path=decoder)
    from engine.codec.quality.metrics import read_db

    rec = read_db(out.path, kind="db", noise_floor_db=pre.noise_floor_db)
    ref = pre.to_db(pre.to_network(db))
    r = compare(ref, rec, peak=pre.db_max - pre.db_min)
    return {"bpp_file": enc.bpp, "psnr_db": r.psnr, "ssim": r.ssim, "enl_ratio": r.enl_ratio, "epi": r.epi,
            "pixels": float(db.size)}


def evaluate_exported(
    encoder: Path, decoder: Path, pre: Preprocessing, data: DataConfig, synthetic: int = 4,
) -> dict[str, Any]:
    """File-level figures of an exported pair through ``engine.codec`` (held-out + benchmark images)."""
    import tempfile

    from training.data import load_display_png_db

    images = heldout_scenes(data, pre, synthetic=synthetic)
    root = Path(data.real_root)
    if data.use_real:
        images += [(f"benchmark/{rel}", load_display_png_db(root / rel, noise_floor_db=pre.noise_floor_db))
                   for rel in BENCHMARK_ONLY_PNGS if (root / rel).is_file()]
    per_image: dict[str, dict[str, float]] = {}
    groups: dict[str, list[dict[str, float]]] = {"real": [], "synthetic": [], "benchmark": []}
    with tempfile.TemporaryDirectory() as tmp:
        for name, db in images:
            s = score_through_engine(encoder, decoder, name, db, pre, Path(tmp))
            per_image[name] = s
            group = name.split("/", 1)[0]
            groups[group if group in groups else "real"].append(s)
    return {"mean": {g: _mean(r) for g, r in groups.items() if r}, "images": per_image}


def evaluate_checkpoint(
    checkpoint: str | os.PathLike[str], real_root: str | None = None, synthetic: int = 4,
    encoder: Path | None = None, decoder: Path | None = None,
) -> dict[str, Any]:
    """Scores of a checkpoint; with ``encoder`` (an exported ONNX pair) also through the engine."""
    ckpt = load_checkpoint(checkpoint)
    codec, cfg = codec_from_checkpoint(ckpt)
    data = cfg.data
    if real_root is not None:
        data = dataclasses.replace(data, real_root=real_root)
    scores = evaluate_codec(codec, cfg.pre, data, synthetic=synthetic)
    if encoder is not None:
        dec = decoder or encoder.with_name(encoder.name.replace("-encoder.onnx", "-decoder.onnx"))
        scores["engine"] = evaluate_exported(encoder, dec, cfg.pre, data, synthetic=synthetic)
    scores["checkpoint"] = {"path": str(checkpoint), "step": int(ckpt["step"]), "lambda": cfg.loss.lmbda,
                            "variant": cfg.model.variant, "seed": cfg.seed}
    return scores
