"""Model card of a jointly fine-tuned hyperprior codec (``python -m training.compression hyper
export-joint``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .card import commands_section


def _scores(result: dict[str, Any]) -> list[str]:
    shipped, tuned, sid = result["shipped"], result["tuned"], result["shipped_model"]
    lines = [f"| image | {sid}: bpp | PSNR dB | fine-tuned: bpp (of which z) | PSNR dB | "
             "gain at matched bpp |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, t in tuned.items():
        s, gain = shipped[name], t.get("gain_db_at_matched_bpp", float("nan"))
        lines.append(f"| {name} | {s['bpp']:.4f} | {s['psnr']:.2f} | {t['bpp']:.4f} ({t['bpp_z']:.4f}) | "
                     f"{t['psnr']:.2f} | {gain:+.2f} dB |")
    m = result["real_mean"]
    mean_gain = m.get("gain_db_at_matched_bpp")
    lines.append(f"| **real held-out, mean** | {m['shipped_bpp']:.4f} | {m['shipped_psnr']:.2f} | "
                 f"{m['tuned_bpp']:.4f} | {m['tuned_psnr']:.2f} | "
                 + (f"{mean_gain:+.2f} dB |" if mean_gain is not None else "- |"))
    curve = result.get("shipped_curve") or []
    if curve:
        points = ", ".join(f"g {c['latent_step']:g}: {c['bpp']:.4f} bpp {c['psnr']:.2f} dB" for c in curve)
        gain = m.get("gain_db_at_matched_bpp")
        lines += ["", f"Gain at matched bpp: PSNR minus that of `{sid}` at the same bpp, read off `{sid}` "
                  "coded at other latent steps (per image on its own curve; nan: outside it). "
                  f"`{sid}` at other latent steps (real held-out means; its hyperprior was trained at "
                  f"its own step only): {points}. "
                  + (f"PSNR gain of this model over that curve at its own bpp: **{gain:+.2f} dB**."
                     if gain is not None else "This model's bpp lies outside that curve.")]
    return lines


def render_joint_card(model_id: str, paths: Sequence[Path], cfg: dict[str, Any], step: int,
                      result: dict[str, Any], commands: Sequence[str]) -> str:
    """Markdown card: what the model is, its fine-tuning, the commands and the held-out comparison."""
    sizes = ", ".join(f"`{p.name}` ({p.stat().st_size / 1e6:.2f} MB)" for p in paths)
    hyper, sid = cfg["hyper"], result["shipped_model"]
    lines = [
        f"# {model_id}: learned SAR codec, transform and hyperprior fine-tuned jointly from {sid}",
        "",
        f"Files: {sizes}. Format and coding as every h model (docs/TRAINING.md, \"Hyperprior entropy "
        "model\"; integer-exact hyperprior in `extra.hyperprior`); the encoder and decoder networks are new "
        "weights.",
        "",
        "## What it is",
        "",
        f"- `{sid}`'s architecture (variant {cfg['model']['variant']} transform, "
        f"{cfg['model']['latent_channels']} latent channels; mean-scale hyperprior with channel slices "
        f"{list(hyper['slices'])}, latent step "
        f"g = {hyper['latent_step']:g}), every network fine-tuned together for rate and distortion.",
        "",
        "## Training",
        "",
        f"- Warm start: the ONNX files of `{sid}` (`--warm-start`, training/compression/warmstart.py).",
        f"- Loss: `bpp + lambda * ({cfg['loss']['w_mse']:g} * MSE + {cfg['loss']['w_ssim']:g} * (1 - SSIM))` "
        f"on normalised dB, **lambda = {cfg['loss']['lmbda']:g}**; bpp = bits of the latents under the "
        "hyperprior plus the bits of z (additive uniform noise as the quantisation proxy; the decoder sees "
        "the straight-through rounded `mu`-centred latents).",
        f"- {step} steps (of a {cfg['steps']}-step cosine schedule), batch {cfg['batch']}, random "
        f"{cfg['crop']} x {cfg['crop']} crops, Adam {cfg['lr']:g} -> {cfg['lr_final']:g}, gradient clipping "
        f"{cfg['grad_clip']:g}, seed {cfg['seed']}, {cfg['threads']} CPU thread(s); BatchNorm statistics "
        "frozen. Data: the codec's training pipeline (training/compression/data.py: synthetic scenes and "
        "the training parts of the real samples; never the held-out parts).",
        "",
        *commands_section(list(commands)),
        "## Held-out scores",
        "",
        "Images never trained on, each coded as a whole; both models through the numpy reference of the "
        "coder (`HyperCost`, strips of 16 latent rows, bits of latents + z, no file header) and the decoder "
        "network's PSNR (dB, peak 50 dB, no restoration filter). `python -m training.compression hyper "
        "compare` measures both the same way.",
        "",
        *_scores(result),
        "",
    ]
    return "\n".join(lines)
