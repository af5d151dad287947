"""Model card of a hyperprior codec model (``python -m training.compression hyper export``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..card import commands_section


def _mean(rows: Sequence[dict[str, float]], key: str) -> float:
    return float(np.mean([r[key] for r in rows]))


def _engine_table(heldout: dict[str, dict[str, float]]) -> list[str]:
    rows = {n: f for n, f in heldout.items() if "bpp_file" in f}
    if not rows:
        return []
    lines = [
        "", "Through the engine (`engine.codec`: tiled encode, file with header, nodata mask and restoration "
        "filter; bits per pixel = 8 x file bytes / pixels):", "",
        "| image | estimate: latents + z bpp | file bpp | file - estimate (bytes) | PSNR dB (file, "
        "filtered) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, f in rows.items():
        extra = (f["bpp_file"] - f["bpp_hyper"]) * f["pixels"] / 8.0
        lines.append(f"| {name} | {f['bpp_hyper']:.4f} | {f['bpp_file']:.4f} | {extra:.0f} | "
                     f"{f['psnr_file']:.2f} |")
    lines += ["", "The difference is the file's fixed part (header with georeferencing, nodata mask, "
              "restoration filter, checksums; about the same for the r models: e.g. +0.066 bpp on these "
              "256 x 256 tiles for sarcodec-r2) plus the engine's tiling (latents of overlapping tiles "
              "instead of the whole image)."]
    return lines


def _figures_table(heldout: dict[str, dict[str, float]], step: float) -> list[str]:
    header = "bits saved" if step == 1 else f"bits saved (not like for like: g = {step:g} changes the PSNR)"
    lines = [
        f"| image | shipped table: bpp | PSNR dB | hyperprior: bpp (of which z) | PSNR dB | {header} |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, f in heldout.items():
        lines.append(f"| {name} | {f['bpp_shipped']:.4f} | {f['psnr_shipped']:.2f} | {f['bpp_hyper']:.4f} "
                     f"({f['bpp_z']:.4f}) | {f['psnr_hyper']:.2f} | {f['saved_pct']:.1f} % |")
    real = [f for n, f in heldout.items() if not n.startswith("synthetic/")]
    if real:
        saved = 100.0 * (1.0 - sum(r["bpp_hyper"] for r in real) / sum(r["bpp_shipped"] for r in real))
        lines.append(f"| **real held-out, mean** | {_mean(real, 'bpp_shipped'):.4f} | "
                     f"{_mean(real, 'psnr_shipped'):.2f} | {_mean(real, 'bpp_hyper'):.4f} "
                     f"({_mean(real, 'bpp_z'):.4f}) | {_mean(real, 'psnr_hyper'):.2f} | {saved:.1f} % |")
    return lines


def reproduce_commands(cfg: dict[str, Any], transform: Path, model_id: str, crops: int,
                       seed: int) -> list[str]:
    """The cache, train and export commands of a hyperprior model, from its training configuration."""
    base = "python -m training.compression hyper"
    return [
        f"{base} cache {transform} --out {cfg['latents']} --crops {crops} --seed {seed}",
        f"{base} train --latents {cfg['latents']} --run-dir {cfg['run_dir']} "
        f"--latent-step {cfg['model']['latent_step']:g} --steps {cfg['steps']} --batch {cfg['batch']} "
        f"--holdout {cfg['holdout']} --seed {cfg['seed']} --threads {cfg['threads']}",
        f"{base} export {cfg['run_dir']} --transform {transform} --model-id {model_id}",
    ]


def render_hyper_card(result: dict[str, Any], paths: Sequence[Path]) -> str:
    """Markdown card from :func:`training.compression.hyper.export.export_hyper`'s result."""
    cfg, model = result["config"], result["config"]["model"]
    mid, transform = result["model_id"], result["transform"]
    sizes = ", ".join(f"`{p.name}` ({p.stat().st_size / 1e6:.2f} MB)" for p in paths)
    bounds = [f["intnet_bound_log2"] for f in result["heldout"].values() if "intnet_bound_log2" in f]
    bound = max(bounds) if bounds else None
    lines = [
        f"# {mid}: learned SAR codec with a hyperprior entropy model (transform of {transform})",
        "",
        f"Files: {sizes}. The encoder and decoder networks are those of `{transform}` (same weights, see "
        f"`{transform}.md` for the transform, its training data and held-out scores); the metadata carries a "
        "new model id and `extra.hyperprior`, the entropy model below (format: docs/TRAINING.md, "
        "\"Hyperprior entropy model\").",
        "",
        "## What it is",
        "",
        f"- Latent step g = {model['latent_step']:g}: the encoder codes `u = y / g`, the decoder network "
        "receives `y_hat * g`" + (" (coarser than the transform was trained for: fewer bits, lower PSNR)."
                                  if model["latent_step"] > 1 else
                                  " (finer than the transform was trained for: more bits, higher PSNR)."
                                  if model["latent_step"] < 1 else "."),
        f"- Mean-scale hyperprior: analysis u -> z ({model['z_channels']} channels at 1/4 of the latent "
        f"grid, width {model['analysis_width']}), z coded with a factorised prior; synthesis z -> (mu, log2 "
        f"sigma) per latent (widths {list(model['synthesis_widths'])}); channel-slice context with slices "
        f"{list(model['slices'])} (context width {model['context_width']}): each slice's (mu, log2 sigma) "
        "are refined from the decoded earlier slices. Symbols `q = round(u - mu)` under a discretised "
        f"zero-mean Gaussian, sigma quantised to a table 2^({model['log2_min']:g} + i/6).",
        "- Every network is an integer-exact fixed-point network (`engine/codec/intnet.py`, 12 weight / 10 "
        "fraction bits): encoder and decoder derive bit-identical probabilities on any machine."
        + (f" Largest accumulator bound met on the held-out images: 2^{bound:.1f} "
           "(exact float64 path below 2^53)." if bound is not None else ""),
        "- Coded strip by strip (16 latent rows, zero padding at strip edges), as the engine does.",
        "",
        "## Training",
        "",
        f"- Latents of the frozen `{transform}` encoder on 256 x 256 training crops from the codec's "
        "training pipeline (`training/compression/data.py`: synthetic scenes of seed 4 as the transform, "
        "and the training parts of the real samples; never the held-out parts), cached by `hyper cache`.",
        f"- Loss: rate only (bits of y + bits of z per pixel); {cfg['steps']} steps, batch {cfg['batch']} "
        f"latent crops of 16 x 16 ({cfg['edge_fraction']:g} of the batches smaller, for edges), Adam, "
        f"learning rate {cfg['lr']:g} -> {cfg['lr_final']:g} (cosine), additive uniform noise as the "
        f"quantisation proxy, the last {cfg['ste_fraction']:g} of the steps rounding with straight-through "
        f"gradients; seed {cfg['seed']}, 1 CPU thread.",
        "",
        *commands_section(result["commands"]),
        "## Held-out scores",
        "",
        "Images never trained on (3MOS held-out tiles, held-out parts of the despeckling images, synthetic "
        f"seeds 10000+), each coded as a whole. Shipped table: `{transform}`'s classified table, default "
        "rounding, range-coded bytes. Hyperprior: the numpy reference of the coder "
        "(`training/compression/hyper/tables.py`, sum of -log2 of the coder's probabilities, escapes "
        "included), strips of 16 latent rows. Latents only (no file header). PSNR of the decoder network "
        "(no restoration filter) in dB, peak db_max - db_min = 50 dB.",
        "",
        *_figures_table(result["heldout"], float(model["latent_step"])),
        *_engine_table(result["heldout"]),
        "",
    ]
    return "\n".join(lines)
