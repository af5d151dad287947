"""Export a trained hyperprior with its shipped transform, measure it on held-out images, write its card.

The encoder and decoder ONNX graphs of the transform (``sarcodec-rN``) are copied unchanged; their
metadata (written by :func:`training.onnx_io.attach_metadata`, the one metadata writer) gets a new
``model_id``, ``extra["rate_point"]``, ``extra["transform"]`` (the source model id) and
``extra["hyperprior"]`` (:func:`training.compression.hyper.tables.hyperprior_json`) instead of
``extra["entropy_model"]``. The weights hash becomes the SHA-256 of the transform's hash and the
hyperprior JSON, so a file written with another hyperprior is refused by the engine's decoder lookup
instead of being decoded wrongly.

Held-out figures (:func:`heldout_comparison`): per image, the numpy reference cost of the hyperprior
(:class:`~training.compression.hyper.tables.HyperCost`, strips of 16 latent rows) against the
range-coded size of the transform's shipped (classified) table with its default rounding, and the
decoder's PSNR for both. With ``latent_step`` 1 both quantise with step 1 (offsets differ: ``mu``
against the channel median), so the distortion is the same up to noise and the bits compare directly.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.codec.models import ENTROPY_KEY
from engine.metadata import ModelMetadata
from training.onnx_io import attach_metadata, sha256_of_bytes

from ..classify import image_latents, preprocessing_of
from ..data import DataConfig, Preprocessing, crop_to_multiple, heldout_scenes
from ..export import committed_pair
from .tables import HYPERPRIOR_KEY, HyperCost, StripCost, hyperprior_dict, hyperprior_json
from .train import hyper_from_checkpoint, load_hyper_checkpoint

logger = logging.getLogger(__name__)


def hyper_metadata(meta: ModelMetadata, model_id: str, rate_point: str, spec_json: str) -> ModelMetadata:
    """The transform's metadata with the new id, rate point and hyperprior (codec fields kept; the
    transform's factorised/classified table is left out: the hyperprior replaces it)."""
    kept = {k: v for k, v in meta.extra.items() if k != ENTROPY_KEY}
    extra = {**kept, "rate_point": rate_point, "transform": meta.model_id, HYPERPRIOR_KEY: spec_json}
    digest = sha256_of_bytes((meta.weights_sha256 + spec_json).encode("utf-8"))
    return dataclasses.replace(meta, model_id=model_id, weights_sha256=digest, extra=extra)


def write_models(enc_src: Path, dec_src: Path, out_dir: Path, model_id: str, rate_point: str,
                 spec_json: str) -> tuple[Path, Path]:
    """Copy the transform's ONNX files to ``<out_dir>/<model_id>-{encoder,decoder}.onnx``, new metadata."""
    from engine.codec.models import load_encoder
    from engine.metadata import Task
    from engine.runtime import OnnxModel

    out_dir.mkdir(parents=True, exist_ok=True)
    final = (out_dir / f"{model_id}-encoder.onnx", out_dir / f"{model_id}-decoder.onnx")
    with committed_pair(final) as tmp:
        pairs = ((enc_src, tmp[0], Task.COMPRESS_ENCODER), (dec_src, tmp[1], Task.COMPRESS_DECODER))
        for src, t, task in pairs:
            meta = OnnxModel(src, tasks=[task]).metadata
            shutil.copyfile(src, t)
            attach_metadata(t, hyper_metadata(meta, model_id, rate_point, spec_json))
        load_encoder(tmp[0])  # the engine's own checks of the codec metadata
    return final


def hyper_image_figures(encoder: Any, decoder: Any, cost: HyperCost, db: np.ndarray, pre: Preprocessing,
                        bounds: bool = False) -> tuple[np.ndarray, StripCost, float]:
    """One dB image coded as a whole with a hyperprior (numpy reference): its latents, the cost and the
    decoder's PSNR (dB, peak db_max - db_min). ``encoder`` / ``decoder`` have ``run`` (ONNX models or
    :class:`TorchRunner`)."""
    from engine.codec.quality.metrics import compare

    x = pre.to_network(crop_to_multiple(db))
    y = image_latents(encoder, db, pre)
    hc = cost.cost(y, bounds=bounds)
    x_hat = decoder.run(hc.y_hat[None])[0, 0]
    return y, hc, float(compare(pre.to_db(x), pre.to_db(x_hat), peak=pre.db_max - pre.db_min).psnr)


def heldout_comparison(encoder: Any, decoder: Any, shipped: Any, cost: HyperCost, data: DataConfig,
                       pre: Preprocessing, synthetic: int = 2) -> dict[str, dict[str, float]]:
    """Per held-out image: hyperprior vs shipped table bits per pixel and PSNR (peak db_max - db_min)."""
    from engine.codec.quality.metrics import compare

    peak = pre.db_max - pre.db_min
    out: dict[str, dict[str, float]] = {}
    for name, db in heldout_scenes(data, pre, synthetic=synthetic):
        x = pre.to_network(crop_to_multiple(db))
        y, hc, psnr_h = hyper_image_figures(encoder, decoder, cost, db, pre, bounds=True)
        q = shipped.quantise(y)
        bits_r = 8.0 * len(shipped.encode(q))
        x_r = decoder.run(shipped.dequantise(q)[None])[0, 0]
        psnr_r = compare(pre.to_db(x), pre.to_db(x_r), peak=peak).psnr
        bits_h = hc.bits_y + hc.bits_z
        out[name] = {"bpp_shipped": bits_r / x.size, "bpp_hyper": bits_h / x.size,
                     "bpp_z": hc.bits_z / x.size, "pixels": float(x.size),
                     "saved_pct": 100.0 * (1.0 - bits_h / bits_r),
                     "psnr_shipped": float(psnr_r), "psnr_hyper": float(psnr_h),
                     "intnet_bound_log2": float(np.log2(max(hc.max_bound, 1.0)))}
        logger.info("%s: shipped %.4f bpp %.2f dB, hyperprior %.4f bpp (z %.4f) %.2f dB: %.1f %% saved", name,
                    bits_r / x.size, psnr_r, bits_h / x.size, hc.bits_z / x.size, psnr_h,
                    out[name]["saved_pct"])
    return out


def add_engine_figures(figures: dict[str, dict[str, float]], paths: tuple[Path, Path], data: DataConfig,
                       pre: Preprocessing, synthetic: int) -> None:
    """Compress and decompress every held-out image through ``engine.codec`` with the exported pair: the
    real file's bits per pixel (header, mask, restoration filter included) and PSNR, beside the estimate."""
    import tempfile

    from ..evaluate import score_through_engine

    with tempfile.TemporaryDirectory() as tmp:
        for name, db in heldout_scenes(data, pre, synthetic=synthetic):
            s = score_through_engine(paths[0], paths[1], name, db, pre, Path(tmp))
            figures[name].update({"bpp_file": s["bpp_file"], "psnr_file": s["psnr_db"]})
            logger.info("%s through the engine: %.4f bpp (file), %.2f dB", name, s["bpp_file"], s["psnr_db"])


def export_hyper(checkpoint: Path, transform: Path, model_id: str, out_dir: Path, *, weight_bits: int = 12,
                 frac_bits: int = 10, real_root: str | None = None, synthetic: int = 2,
                 commands: Sequence[str] = (), card: bool = True, engine: bool = False) -> dict[str, Any]:
    """Export, measure on held-out images (``engine``: also through the engine's files) and (``card``)
    write ``<out_dir>/<model_id>.md``; the figures."""
    from engine.codec.models import entropy_table, load_encoder
    from engine.metadata import Task
    from engine.runtime import OnnxModel

    from .cache import load_cache
    from .card import render_hyper_card, reproduce_commands
    from .train import config_summary

    ckpt = load_hyper_checkpoint(checkpoint)
    model, cfg = hyper_from_checkpoint(ckpt)
    model.eval()
    dec_src = transform.with_name(transform.name.replace("-encoder.onnx", "-decoder.onnx"))
    encoder = load_encoder(transform)
    decoder = OnnxModel(dec_src, tasks=[Task.COMPRESS_DECODER])
    meta = encoder.metadata
    spec = hyperprior_dict(model, weight_bits, frac_bits)
    spec_json = hyperprior_json(model, weight_bits, frac_bits)
    data = DataConfig(real_root=real_root) if real_root else DataConfig()
    pre = preprocessing_of(meta)
    figures = heldout_comparison(encoder, decoder, entropy_table(meta, transform.name), HyperCost(spec), data,
                                 pre, synthetic)
    rate = model_id.rsplit("-", 1)[-1]
    paths = write_models(transform, dec_src, out_dir, model_id, rate, spec_json)
    logger.info("wrote %s and %s", *paths)
    if engine:
        add_engine_figures(figures, paths, data, pre, synthetic)
    summary = config_summary(cfg)
    if not commands:
        cache = load_cache(Path(cfg.latents))
        commands = reproduce_commands(summary, transform, model_id, int(cache.y.shape[0]), cache.seed)
    result = {"model_id": model_id, "transform": meta.model_id, "step": int(ckpt["step"]),
              "config": summary, "heldout": figures, "commands": list(commands),
              "metadata_bytes": len(spec_json)}
    if card:
        from ..card import write_model_card

        write_model_card(out_dir / f"{model_id}.md", render_hyper_card(result, paths))
    return result
