"""Model cards (``models/<model_id>.md``) for exported SAR codec pairs.

A card states what the model is, what it was trained on (with licences),
how (steps, seed, lambda, the exact commands) and how well it does on
held-out data (scores from :mod:`training.compression.evaluate`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .data import HELDOUT_3MOS, HELDOUT_SEED_BASE, TRAIN_SEED_BASE
from .models import MODEL_VARIANTS
from .train import TrainConfig, load_checkpoint

#: One training run of a model's history: its configuration and the step it stopped at.
Stage = tuple[TrainConfig, int]

_GROUPS = (
    ("real", "real held-out (3MOS tiles + held-out parts of the despeckling images)"),
    ("synthetic", f"synthetic held-out scenes (seeds {HELDOUT_SEED_BASE}+, 256 x 256)"),
    ("benchmark", "benchmark-only images, never trained on (`sar_sar_r2d2/g1.png`, `g2.png`)"),
)


def _fmt(v: float) -> str:
    return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"


_HEAD = ("PSNR dB", "SSIM", "ENL ratio", "EPI")
_QUALITY = ("psnr_db", "ssim", "enl_ratio", "epi")


def _table(header: Sequence[str], rows: list[tuple[str, dict[str, Any]]], keys: Sequence[str]) -> list[str]:
    """A Markdown table: one row per ``(label, figures)``, the figures ``keys`` in order ("-" when absent)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, figures in rows:
        cells = [_fmt(figures[k]) if k in figures else "-" for k in keys]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _group_rows(scores: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    means = scores.get("mean", {})
    return [(label, means[key]) for key, label in _GROUPS if means.get(key)]


def scores_table(scores: dict[str, Any]) -> str:
    rows = _table(("data", "bpp (prior estimate)", "bpp (range-coded latents)", *_HEAD,
                   "PSNR dB, unquantised latents"), _group_rows(scores),
                  ("bpp_est", "bpp_coded", *_QUALITY, "psnr_unquantised_db"))
    eng = scores.get("engine")
    if eng:
        rows += [
            "",
            "Through the engine (`engine.codec`: tiled encode, file with header and nodata mask, tiled "
            "decode with blending; bits per pixel = 8 x file bytes / pixels):",
            "",
            *_table(("data", "bpp (file)", *_HEAD), _group_rows(eng), ("bpp_file", *_QUALITY)),
        ]
    rows += ["", "Per image (PyTorch, whole image):", "",
             *_table(("image", "bpp (coded)", *_HEAD), list(scores.get("images", {}).items()),
                     ("bpp_coded", *_QUALITY))]
    return "\n".join(rows)


def training_stages(cfg: TrainConfig, step: int, max_stages: int = 16) -> list[Stage]:
    """The runs a checkpoint descends from through ``init_from``, oldest first, ending with itself.

    The chain stops at a run without ``init_from`` or at one whose checkpoint is no longer on disk
    (then the first stage still names the ``init_from`` it started from).
    """
    stages: list[Stage] = [(cfg, step)]
    while len(stages) < max_stages and stages[0][0].init_from:
        try:
            parent = load_checkpoint(str(stages[0][0].init_from))
        except (FileNotFoundError, ValueError):
            break
        stages.insert(0, (TrainConfig.from_dict(parent["config"]), int(parent["step"])))
    return stages


def _stages_lines(stages: Sequence[Stage]) -> list[str]:
    cfg = stages[-1][0]
    common = (
        f"batch {cfg.batch}, random {cfg.crop} x {cfg.crop} crops (fully convolutional; tiles are 256 x 256 "
        f"at run time), Adam, cosine learning-rate decay, gradient clipping {cfg.grad_clip:g}, "
        "CPU (2 shared cores)"
    )

    def stage(c: TrainConfig, n: int) -> str:
        cut = f" (stopped early in a {c.steps}-step schedule)" if n < c.steps else ""
        prior = f" (entropy model x {c.prior_lr_scale:g})" if c.prior_lr_scale != 1.0 else ""
        return (f"{n} steps{cut}, lambda {c.loss.lmbda:g}, learning rate {c.lr:g} -> {c.lr_final:g}{prior}, "
                f"seed {c.seed}")

    if len(stages) == 1:
        c, n = stages[0]
        start = f" Fine-tuned from `{c.init_from}`." if c.init_from else ""
        return [f"- {stage(c, n)}; {common}.{start}"]
    total = sum(n for _, n in stages)
    first = stages[0][0]
    lines = [
        f"- {total} steps in {len(stages)} runs, each starting from the previous run's weights with a fresh "
        f"optimizer; {common}:"
    ]
    if first.init_from:
        lines.append(f"  - (started from `{first.init_from}`, no longer on disk when this card was written)")
    lines += [f"  - `{c.run_dir}`: {stage(c, n)}" for c, n in stages]
    return lines


def _synthetic_seeds(stages: Sequence[Stage]) -> str:
    d = stages[-1][0].data
    firsts = sorted({TRAIN_SEED_BASE + 1000 * c.seed for c, _ in stages})
    return ", ".join(f"{s}..{s + d.synthetic_scenes - 1}" for s in firsts)


def _what_it_is(cfg: TrainConfig) -> list[str]:
    m, pre = cfg.model, cfg.pre
    return [
        "## What it is",
        "",
        f"- Convolutional autoencoder, variant **{m.variant}** ({MODEL_VARIANTS.get(m.variant, '?')}"
        f"{f'; starting DCT quantisation step {m.dct_step:g}' if m.variant == 'D' else ''}), "
        f"hidden widths {list(m.widths)}, **{m.latent_channels} latent channels**, stride 16: a 256 x 256 "
        f"tile becomes 16 x 16 x {m.latent_channels} latents.",
        "- Latents are quantised as `q = round(y - m_c)` and range-coded with a learned factorised prior "
        "(per-channel non-parametric density, discretised into the integer pmf table stored in the "
        "metadata key `extra.entropy_model`; coded by the engine with `constriction`). "
        "`python -m training.compression classify` later replaces the table with a classified one "
        "(see its section at the end of the card, when present).",
        f"- Input: one SAR band converted to dB (noise floor {pre.noise_floor_db:g} dB), clipped to "
        f"[{pre.db_min:g}, {pre.db_max:g}] dB and scaled to [0, 1]; output in the same domain.",
        "- Use from QGIS (`sartoolbox:compress` with this rate) or the engine (`engine.codec`).",
        "",
    ]


def _training(cfg: TrainConfig, stages: Sequence[Stage]) -> list[str]:
    d, lw = cfg.data, cfg.loss
    return [
        "## Training",
        "",
        f"- Loss: `bpp + lambda * ({lw.w_mse:g} * MSE + {lw.w_ssim:g} * (1 - SSIM))` on normalised dB, "
        f"**lambda = {lw.lmbda:g}**; additive uniform noise as the quantisation proxy for the rate, "
        "straight-through rounding for the decoder input.",
        *_stages_lines(stages),
        "- Augmentation: flips, 90-degree rotations, a random global offset of up to "
        f"+-{d.db_jitter:g} dB; patches with < {d.min_valid:.0%} valid pixels or a dB standard deviation "
        f"< {d.min_std_db:g} dB are rejected.",
        "",
    ]


def _data(cfg: TrainConfig, stages: Sequence[Stage]) -> list[str]:
    d = cfg.data
    return [
        "### Data (permissive licences only)",
        "",
        f"- **Synthetic** SAR scenes of this project (`engine.synthetic.generate_scene_pair`, "
        f"{d.synthetic_scenes} scenes of {d.synthetic_size} x {d.synthetic_size}, seeds "
        f"{_synthetic_seeds(stages)}, "
        "1/2/4/4.4 looks, east/west looking); half of the patches. Licence: this project's.",
        "- **Real** (the other half): `sar_single_deepdespeckling/*` (hi-paris/deepdespeckling, **MIT**) and "
        "`opt_sar_3mos/*_sar.png` (3M-OS/3MOS, **Apache-2.0**), minus the held-out parts: 3MOS tiles "
        f"{', '.join(HELDOUT_3MOS)}, the right quarter of `sar2sar_noisy.png` and the bottom 128 rows of "
        "`noisy_test_image_data_coordinates.png`.",
        "- The real images are 8-bit display renderings, not calibrated sigma0. They are read as linear "
        "amplitude DN: `dB = 20 log10(max(DN, 0.5) / 255) + 5`, i.e. DN 255 -> +5 dB, DN 32 -> -13 dB, "
        "DN 4 -> -31 dB (a plausible sigma0 range; a convention, not a calibration).",
        "- Not used for training: `os_sift` GF-3 and `sar_sar_r2d2` images (benchmark only; "
        "non-commercial or unclear licences).",
        "",
    ]


def _scores(cfg: TrainConfig, scores: dict[str, Any] | None) -> list[str]:
    pre = cfg.pre
    if not scores:
        return ["Not evaluated yet.", ""]
    return [
        "Measured with `python -m training.compression evaluate` on images never trained on, each coded "
        "as a whole. PSNR and SSIM in dB with peak = db_max - db_min "
        f"= {pre.db_max - pre.db_min:g} dB against the input clipped to the model range; ENL ratio on "
        "homogeneous blocks (linear intensity); EPI = correlation of Sobel gradient magnitudes "
        "(`engine.codec.quality.metrics`). bpp counts latents only (prior estimate, and the real range-coded "
        "payload); a compressed file adds a header and the nodata mask: see docs/BENCHMARKS.md for "
        "file-level bits per pixel against JPEG2000 and LERC.",
        "",
        scores_table(scores),
        "",
    ]


_LIMITS = [
    "## Limits",
    "",
    "- Trained for minutes on 2 shared CPU cores: far from converged; a longer run (same command, more "
    "`--steps`, or a GPU) should improve every figure.",
    "- Real training data are a few display-stretched 8-bit images; calibrated Sentinel-1 GRD or "
    "GF-3 data (`--geotiff-dir`, `--sen12-root`) would be the next step.",
    "- Values outside the dB range are clipped; speckle is partly smoothed at low rates (ENL ratio > 1).",
]


def commands_section(commands: Sequence[str]) -> list[str]:
    """The card's "Commands" block (Markdown lines)."""
    return ["### Commands (reproduce from the repository root)", "", "```bash", *commands, "```", ""]


def render_model_card(
    model_id: str, rate_point: str, cfg: TrainConfig, step: int, files: Sequence[Path],
    weights_sha256: str, scores: dict[str, Any] | None, commands: Sequence[str], notes: str = "",
    stages: Sequence[Stage] | None = None,
) -> str:
    """The Markdown card; ``stages`` (see :func:`training_stages`) defaults to this run alone."""
    stages = list(stages) if stages else [(cfg, step)]
    sizes = ", ".join(f"`{p.name}` ({p.stat().st_size / 1e6:.2f} MB)" for p in files)
    lines = [
        f"# {model_id}: learned SAR codec, rate point {rate_point}",
        "",
        f"Files: {sizes}. Weights SHA-256 (metadata `weights_sha256`): `{weights_sha256}`.",
        "",
        *_what_it_is(cfg),
        *_training(cfg, stages),
        *_data(cfg, stages),
        *commands_section(commands),
        "## Held-out scores",
        "",
        *_scores(cfg, scores),
        *_LIMITS,
    ]
    if notes:
        lines += ["", "## Notes", "", notes]
    return "\n".join(lines) + "\n"


def write_model_card(path: str | os.PathLike[str], text: str) -> Path:
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, p)
    return p
