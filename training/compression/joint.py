"""Held-out comparison of a jointly fine-tuned codec (transform + hyperprior) with a shipped one.

Both are measured the same way on the same held-out images: every image coded as a whole through the
numpy reference of the hyperprior coder (:class:`~training.compression.hyper.tables.HyperCost`, strips of
16 latent rows; the fine-tuned hyperprior quantised to integer networks as an export would), bits of the
latents and of ``z`` per pixel, and the decoder network's PSNR (no restoration filter, no file header).
The shipped model runs through ONNX Runtime, the fine-tuned one through PyTorch.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import DataConfig, heldout_scenes
from .hyper.tables import HYPERPRIOR_KEY, HyperCost, hyperprior_dict

logger = logging.getLogger(__name__)


class TorchRunner:
    """A PyTorch module with the ``run(array) -> array`` of :class:`engine.runtime.OnnxModel`."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module.eval()

    @torch.no_grad()
    def run(self, x: np.ndarray) -> np.ndarray:
        return self.module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


def _figures(encoder: Any, decoder: Any, cost: HyperCost, data: DataConfig, pre: Any,
             synthetic: int) -> dict[str, dict[str, float]]:
    from .data import crop_to_multiple
    from .hyper.export import hyper_image_figures

    out = {}
    for name, db in heldout_scenes(data, pre, synthetic=synthetic):
        pixels = float(crop_to_multiple(db).size)
        _, hc, psnr = hyper_image_figures(encoder, decoder, cost, db, pre)
        out[name] = {"bpp": (hc.bits_y + hc.bits_z) / pixels, "bpp_z": hc.bits_z / pixels, "psnr": psnr}
    return out


def real_mean(figures: dict[str, dict[str, float]], key: str) -> float:
    """Mean of ``key`` over the real held-out images (not ``synthetic/*``; all images when there is no real
    one, as in runs without the real samples)."""
    real = [f[key] for n, f in figures.items() if not n.startswith("synthetic/")]
    return float(np.mean(real or [f[key] for f in figures.values()]))


def shipped_curve(encoder: Any, decoder: Any, spec: dict[str, Any], steps: Sequence[float],
                  data: DataConfig, pre: Any, synthetic: int) -> list[dict[str, Any]]:
    """The shipped model's rate-distortion curve: real held-out mean bpp and PSNR with its latent step
    replaced by each of ``steps`` (its hyperprior was trained at its own step only)."""
    curve = []
    for g in sorted(steps):
        cost = HyperCost({**spec, "latent_step": float(g)})
        figs = _figures(encoder, decoder, cost, data, pre, synthetic)
        curve.append({"latent_step": float(g), "bpp": real_mean(figs, "bpp"),
                      "psnr": real_mean(figs, "psnr"), "images": figs})
        logger.info("shipped model at latent step %g: %.4f bpp %.2f dB", g, curve[-1]["bpp"],
                    curve[-1]["psnr"])
    return curve


def gain_at_matched_bpp(curve: Sequence[dict[str, Any]], bpp: float, psnr: float) -> float | None:
    """``psnr`` minus the shipped curve's PSNR interpolated (linearly in bpp) at ``bpp``; None outside it."""
    pts = sorted((c["bpp"], c["psnr"]) for c in curve)
    if len(pts) < 2 or not pts[0][0] <= bpp <= pts[-1][0]:
        return None
    xs, ys = zip(*pts, strict=True)
    return float(psnr - np.interp(bpp, xs, ys))


def compare_with_shipped(checkpoint: Path, shipped_encoder: Path, data: DataConfig, synthetic: int = 2,
                         shipped_steps: Sequence[float] = ()) -> dict[str, Any]:
    """Per held-out image and real mean: the fine-tuned checkpoint against the shipped hyperprior model;
    with ``shipped_steps``, also the shipped model's curve over latent steps and the PSNR gain at the
    fine-tuned model's bpp."""
    from engine.codec.models import load_encoder
    from engine.metadata import Task
    from engine.runtime import OnnxModel

    from .classify import preprocessing_of
    from .train import hyper_codec_from_checkpoint, load_checkpoint
    from .warmstart import decoder_path

    ckpt = load_checkpoint(checkpoint)
    codec, cfg = hyper_codec_from_checkpoint(ckpt)
    enc = load_encoder(shipped_encoder)
    dec = OnnxModel(decoder_path(shipped_encoder), tasks=[Task.COMPRESS_DECODER])
    spec = json.loads(enc.metadata.extra[HYPERPRIOR_KEY])
    shipped = _figures(enc, dec, HyperCost(spec), data, preprocessing_of(enc.metadata), synthetic)
    cost = HyperCost(hyperprior_dict(codec.prior))
    tuned = _figures(TorchRunner(codec.encoder), TorchRunner(codec.decoder), cost, data, cfg.pre, synthetic)
    for name in tuned:
        logger.info("%s: shipped %.4f bpp %.2f dB, fine-tuned %.4f bpp (z %.4f) %.2f dB", name,
                    shipped[name]["bpp"], shipped[name]["psnr"], tuned[name]["bpp"], tuned[name]["bpp_z"],
                    tuned[name]["psnr"])
    means: dict[str, float | None] = {f"{who}_{k}": real_mean(figs, k) for k in ("bpp", "psnr")
                                      for who, figs in (("shipped", shipped), ("tuned", tuned))}
    logger.info("real held-out mean: shipped %.4f bpp %.2f dB, fine-tuned %.4f bpp %.2f dB",
                means["shipped_bpp"], means["shipped_psnr"], means["tuned_bpp"], means["tuned_psnr"])
    curve = shipped_curve(enc, dec, spec, shipped_steps, data, preprocessing_of(enc.metadata), synthetic)
    means["gain_db_at_matched_bpp"] = gain_at_matched_bpp(curve, real_mean(tuned, "bpp"),
                                                          real_mean(tuned, "psnr"))
    for name, t in tuned.items():  # per image, on that image's own curve
        own = [c["images"][name] for c in curve]
        gain = gain_at_matched_bpp(own, t["bpp"], t["psnr"])
        t["gain_db_at_matched_bpp"] = float("nan") if gain is None else gain
    return {"checkpoint": str(checkpoint), "step": int(ckpt["step"]), "shipped_model": enc.metadata.model_id,
            "shipped": shipped, "tuned": tuned, "real_mean": means, "shipped_curve": curve}


def export_joint(checkpoint: Path, out_dir: Path, model_id: str, weight_bits: int = 12, frac_bits: int = 10,
                 comparison: dict[str, Any] | None = None, commands: Sequence[str] = ()) -> tuple[Path, Path]:
    """``<out_dir>/<model_id>-{encoder,decoder}.onnx`` of a fine-tuned checkpoint: the transform exported
    (parity-checked) as ``<model_id>-transform`` into a temporary folder, then copied with the
    hyperprior in its metadata as :mod:`~training.compression.hyper.export` writes every h model. With
    ``comparison`` (:func:`compare_with_shipped`'s result for this checkpoint), also the model card
    ``<out_dir>/<model_id>.md``."""
    from .card import write_model_card
    from .export import export_codec
    from .hyper.export import write_models
    from .hyper.tables import hyperprior_json
    from .joint_card import render_joint_card
    from .models import SarCodec
    from .train import hyper_codec_from_checkpoint, load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    if comparison is not None and int(comparison["step"]) != int(ckpt["step"]):
        raise ValueError(f"the comparison was measured at step {comparison['step']}, the checkpoint is at "
                         f"step {ckpt['step']}; run 'hyper compare' on this checkpoint.")
    codec, cfg = hyper_codec_from_checkpoint(ckpt)
    with torch.random.fork_rng():  # its unused factorised prior enters the weights hash: same file every time
        torch.manual_seed(0)
        transform = SarCodec(cfg.model)
    transform.encoder.load_state_dict(codec.encoder.state_dict())
    transform.decoder.load_state_dict(codec.decoder.state_dict())
    spec_json = hyperprior_json(codec.prior, weight_bits, frac_bits)
    with tempfile.TemporaryDirectory() as tmp:
        enc, dec = export_codec(transform, cfg, Path(tmp), f"{model_id}-transform", "transform")
        paths = write_models(enc, dec, out_dir, model_id, model_id.rsplit("-", 1)[-1], spec_json)
    if comparison is not None:
        card = render_joint_card(model_id, paths, cfg.to_dict(), int(ckpt["step"]), comparison, commands)
        write_model_card(out_dir / f"{model_id}.md", card)
    return paths
