"""Fit a classified entropy model to an exported codec (``python -m training.compression classify``).

The factorised prior codes every 16 x 16-pixel latent cell with the same
per-channel statistics, although a cell of calm water and one of a city differ
by an order of magnitude in energy. A classified table
(:class:`engine.codec.entropy.EntropyModelTable` version 2) adds ``K``
alternative pmf sets; the encoder picks per cell the set that codes it in the
fewest bits and sends the class map as side information.

The sets are fitted after training, on the integer latents of the training
images (never the held-out ones), by Lloyd iterations on code length:

1. start from ``K`` classes of equal size by cell energy (``log(1 + sum |q|)``);
2. per class and channel, the pmf is the symbol histogram smoothed towards the
   factorised pmf: ``(counts + s * pmf) / (n + s)`` (``s`` = ``smoothing``);
3. reassign every cell to its cheapest class with the engine's own cost
   (:meth:`EntropyModelTable.assign_classes`, class prior included);

until no cell moves or ``iterations`` is reached.

Then the settings of the optional rate-distortion optimised quantisation
(:mod:`engine.codec.rdo`, off by default in the engine) are added: per channel
the squared error one latent step causes after the decoder (measured by
perturbing the latents of training images and running the decoder), and
``rdo_lambda = rdo_scale x`` the training lambda.

Encoder and decoder networks are untouched (same weights hash); only the table
in both models' metadata changes, so files written with another table are
refused by the hash check instead of being decoded wrongly.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.codec.entropy import EntropyModelTable
from engine.codec.rdo import rdo_quantise

from .card import write_model_card
from .data import DataConfig, Preprocessing, crop_to_multiple, heldout_scenes

logger = logging.getLogger(__name__)

CARD_BEGIN = "<!-- classified entropy model: written by 'python -m training.compression classify' -->"
CARD_END = "<!-- /classified entropy model -->"


@dataclasses.dataclass(frozen=True)
class ClassifyConfig:
    """How the classes are fitted (recorded in the model card)."""

    classes: int = 16
    smoothing: float = 20.0
    iterations: int = 20
    significant_digits: int = 5
    """Probabilities are rounded to this many significant digits (a compact, exact JSON table)."""
    empty_class_prior: float = 1.0 / 64.0
    """Prior of the extra class for all-zero cells (the encoder codes cells far from valid pixels as
    zeros); training images have no nodata, so it is set, not fitted. 0: no empty class."""
    empty_class_epsilon: float = 1e-4
    """Probability mass the empty class leaves to non-zero symbols (spread like the factorised pmf)."""
    rdo_scale: float = 3.0
    """``rdo_lambda`` = this x the training lambda; 0 disables optimised quantisation. 3 was chosen on
    training images (docs/TRAINING.md)."""


def preprocessing_of(meta: Any) -> Preprocessing:
    """The codec's dB clipping and noise floor from its ONNX metadata."""
    return Preprocessing(float(meta.db_min), float(meta.db_max), float(meta.noise_floor_db))


def image_latents(encoder: Any, db: np.ndarray, pre: Preprocessing) -> np.ndarray:
    """Continuous latents ``[C, h, w]`` of one dB image, encoded as a whole (cropped to a multiple of 16)."""
    x = pre.to_network(crop_to_multiple(db))
    return np.asarray(encoder.run(x[None, None])[0], dtype=np.float32)


def cells_of(q: np.ndarray) -> np.ndarray:
    """``[C, h, w]`` latents -> ``[C, 1, h*w]`` (one row of cells; what the table's costs take)."""
    return q.reshape(q.shape[0], 1, -1)


def _rounded(p: np.ndarray, digits: int) -> np.ndarray:
    return np.asarray([float(f"{v:.{digits}g}") for v in p], dtype=np.float64)


def class_pmfs(
    q: np.ndarray, cells: np.ndarray, table: EntropyModelTable, classes: int, cfg: ClassifyConfig,
) -> tuple[list[list[np.ndarray]], np.ndarray]:
    """Smoothed per-class, per-channel pmfs and the class prior for an assignment ``cells`` of ``q``."""
    base = [np.asarray(p, dtype=np.float64) for p in table.pmfs]
    out: list[list[np.ndarray]] = []
    for k in range(classes):
        members = q[:, 0, cells == k]
        per_channel = []
        for c, pmf in enumerate(base):
            idx = members[c].astype(np.int64) - table.offsets[c]
            inside = idx[(idx >= 0) & (idx < pmf.size)]
            counts = np.bincount(inside, minlength=pmf.size).astype(np.float64)
            smoothed = (counts + cfg.smoothing * pmf) / (members.shape[1] + cfg.smoothing)
            per_channel.append(_rounded(smoothed, cfg.significant_digits))
        out.append(per_channel)
    prior = (np.bincount(cells, minlength=classes) + 1.0) / (cells.size + classes)
    return out, _rounded(prior, cfg.significant_digits)


def fit_classes(q: np.ndarray, table: EntropyModelTable, cfg: ClassifyConfig) -> EntropyModelTable:
    """Lloyd-fit ``cfg.classes`` pmf sets to training latents ``q`` (``[C, 1, N]``); see the module doc."""
    if cfg.classes < 2:
        raise ValueError(f"classes must be >= 2, got {cfg.classes}.")
    if q.ndim != 3 or q.shape[1] != 1 or q.shape[2] < cfg.classes:
        raise ValueError(f"Need latents [C, 1, N] with at least {cfg.classes} cells, got {q.shape}.")
    base = table.factorised()
    energy = np.log1p(np.abs(q[:, 0, :]).sum(axis=0).astype(np.float64))
    edges = np.quantile(energy, np.linspace(0.0, 1.0, cfg.classes + 1)[1:-1])
    cells = np.digitize(energy, edges).astype(np.int32)
    fitted = base
    for it in range(cfg.iterations):
        pmfs, prior = class_pmfs(q, cells, base, cfg.classes, cfg)
        fitted = base.with_classes(pmfs, prior)
        new = fitted.assign_classes(q)
        moved = int(np.count_nonzero(new != cells))
        logger.info("classify iteration %d: %d of %d cells changed class", it + 1, moved, cells.size)
        cells = new
        if moved == 0:
            break
    return fitted


def with_empty_class(table: EntropyModelTable, cfg: ClassifyConfig) -> EntropyModelTable:
    """``table`` plus one class for all-zero cells (nodata far from valid pixels; see
    :func:`engine.codec.encode.near_valid_cells`): ``P(0) = 1 - epsilon`` in every channel."""
    if cfg.empty_class_prior <= 0:
        return table
    pmfs = []
    for c, base in enumerate(table.pmfs):
        pmf = np.asarray(base, dtype=np.float64)
        pmf = cfg.empty_class_epsilon * pmf / pmf.sum()
        zero = -table.offsets[c]
        if 0 <= zero < pmf.size:
            pmf[zero] = 1.0 - cfg.empty_class_epsilon
        pmfs.append(_rounded(pmf, cfg.significant_digits))
    prior = np.asarray(table.class_prior, dtype=np.float64) * (1.0 - cfg.empty_class_prior)
    classes = [list(per_class) for per_class in table.class_pmfs] + [pmfs]
    priors = _rounded(np.append(prior, cfg.empty_class_prior), cfg.significant_digits)
    return table.with_classes(classes, priors)


def training_latents(encoder: Any, scenes: Sequence[np.ndarray], pre: Preprocessing) -> np.ndarray:
    """Continuous latents of the training images ``scenes`` (dB), all cells in one row: ``[C, 1, N]``."""
    if not scenes:
        raise ValueError("No training images found; give --real-root or --synthetic-scenes > 0.")
    return np.concatenate([cells_of(image_latents(encoder, db, pre)) for db in scenes], axis=2)


def distortion_weights(encoder: Any, decoder: Any, table: EntropyModelTable, images: Sequence[np.ndarray],
                       pre: Preprocessing, crop: int = 256, spacing: int = 3) -> np.ndarray:
    """Per channel: squared error (normalised pixel units, summed) one latent step causes after the decoder.

    For each image (its top-left ``crop`` pixels) and channel, every ``spacing``-th latent cell is moved
    by one step; the decoder's output change is divided by the number of moved cells. Averaged over
    ``images``.
    """
    medians = table.medians_array()[:, None, None]
    totals = np.zeros(table.channels)
    for db in images:
        x = pre.to_network(crop_to_multiple(db))[:crop, :crop]
        y_hat = (table.quantise(encoder.run(x[None, None])[0]) + medians).astype(np.float32)
        reference = decoder.run(y_hat[None])[0, 0]
        for c in range(table.channels):
            moved = y_hat.copy()
            moved[c, ::spacing, ::spacing] += 1.0
            change = decoder.run(moved[None])[0, 0] - reference
            totals[c] += float(np.sum(change.astype(np.float64) ** 2)) / moved[c, ::spacing, ::spacing].size
    return totals / max(len(images), 1)


def fit_table(y: np.ndarray, table: EntropyModelTable, cfg: ClassifyConfig, weights: np.ndarray | None,
              training_lambda: float) -> EntropyModelTable:
    """Classes fitted on the rounded training latents ``y`` (``[C, 1, N]``), plus the settings of optimised
    quantisation when ``cfg.rdo_scale > 0`` and ``weights`` are given (the engine's default remains plain
    rounding, which the classes are fitted for)."""
    base = table.factorised()
    fitted = with_empty_class(fit_classes(base.quantise(y), base, cfg), cfg)
    if cfg.rdo_scale <= 0 or weights is None or training_lambda <= 0:
        return fitted
    rdo_lambda = float(f"{cfg.rdo_scale * training_lambda:.6g}")
    rounded = _rounded(np.asarray(weights, dtype=np.float64), cfg.significant_digits)
    return fitted.with_rdo(rounded, rdo_lambda)


def heldout_figures(encoder: Any, decoder: Any, tables: Sequence[EntropyModelTable], data: DataConfig,
                    pre: Preprocessing) -> dict[str, list[tuple[float, float, float]]]:
    """Per held-out image and table: (range-coded latent bpp, PSNR dB (peak db_max - db_min), ENL ratio).

    Each table quantises with :func:`engine.codec.rdo.rdo_quantise` (plain rounding without RDO settings).
    """
    from engine.codec.quality.metrics import compare

    out: dict[str, list[tuple[float, float, float]]] = {}
    for name, db in heldout_scenes(data, pre):
        x = pre.to_network(crop_to_multiple(db))
        y = image_latents(encoder, db, pre)
        figures = []
        for t in tables:
            q = rdo_quantise(t, y)
            x_hat = decoder.run(t.dequantise(q)[None])[0, 0]
            report = compare(pre.to_db(x), pre.to_db(x_hat), peak=pre.db_max - pre.db_min)
            figures.append((8.0 * len(t.encode(q)) / x.size, report.psnr, report.enl_ratio))
        out[name] = figures
    return out


def card_section(cfg: ClassifyConfig, command: str, cells: int,
                 figures: dict[str, list[tuple[float, float, float]]],
                 engine_scores: dict[str, Any] | None, table: EntropyModelTable) -> str:
    """Markdown for the model card (between :data:`CARD_BEGIN` and :data:`CARD_END`).

    ``figures[image]`` holds (bpp, PSNR, ENL ratio) for: the factorised table with rounding, the
    classified table with rounding (the engine's default), the classified table with optimised
    quantisation.
    """
    rdo = ("The table also carries the settings of the optional rate-distortion optimised quantisation "
           "(`engine/codec/rdo.py`, `compress_raster(rdo=True)`, QGIS: *Optimised quantisation*): "
           f"rdo_lambda {table.rdo_lambda:g} = {cfg.rdo_scale:g} x the training lambda, per-channel "
           "decoder error weights measured on training images. " if table.rdo_lambda > 0 else "")
    lines = [
        CARD_BEGIN,
        "## Entropy model: classified (per-cell classes)" + (", optimised quantisation" if rdo else ""),
        "",
        f"The shipped table is classified: {cfg.classes} pmf sets fitted after training on the integer "
        f"latents of the training images ({cells} latent cells; Lloyd iterations on code length, smoothing "
        f"{cfg.smoothing:g} towards the factorised pmf; `training/compression/classify.py`). The encoder "
        "picks per 16 x 16-pixel cell the set coding it in the fewest bits and sends the class map first. "
        + (f"One more set codes all-zero cells (nodata far from valid pixels, which the encoder zeroes) "
           f"in a few bits (prior {cfg.empty_class_prior:g}, set, not fitted). " if cfg.empty_class_prior > 0
           else "")
        + rdo + "Network weights unchanged. Command:",
        "",
        "```bash",
        command,
        "```",
        "",
        "Held-out images (whole image, range-coded latents without file header; PSNR with peak "
        "db_max - db_min):",
        "",
        "| image | factorised, rounding: bpp / PSNR dB / ENL ratio | classified, rounding (default) | "
        "classified, optimised quantisation |",
        "|---|---|---|---|",
    ]
    for name, rows in figures.items():
        lines.append(f"| {name} | " + " | ".join(_figure_text(f) for f in rows) + " |")
    real = [v for n, v in figures.items() if not n.startswith("synthetic/")]
    if real:
        means = [tuple(float(np.mean([r[i][j] for r in real])) for j in range(3))
                 for i in range(len(real[0]))]
        lines.append("| **real held-out, mean** | " + " | ".join(_figure_text(m) for m in means) + " |")
    if engine_scores:
        lines += [
            "",
            "Through the engine with the classified table, its default rounding and the scene's restoration "
            "filter (`engine/codec/postfilter.py`, on by default; file bits per pixel; replaces the "
            "factorised table's 'Through the engine' figures above):",
            "",
            "| data | bpp (file) | PSNR dB | SSIM | ENL ratio | EPI |",
            "|---|---|---|---|---|---|",
        ]
        for group, m in engine_scores["mean"].items():
            lines.append(f"| {group} | {m['bpp_file']:.3f} | {m['psnr_db']:.3f} | {m['ssim']:.3f} | "
                         f"{m['enl_ratio']:.3f} | {m['epi']:.3f} |")
    lines.append(CARD_END)
    return "\n".join(lines) + "\n"


def _figure_text(figure: Sequence[float]) -> str:
    bpp, psnr_db, enl = figure[:3]
    return f"{bpp:.3f} / {psnr_db:.2f} / {enl:.2f}"


def update_card(card: Path, section: str) -> None:
    """Replace the classified-table section of a model card, or append it."""
    text = card.read_text() if card.is_file() else ""
    if CARD_BEGIN in text and CARD_END in text:
        head, rest = text.split(CARD_BEGIN, 1)
        tail = rest.split(CARD_END, 1)[1].lstrip("\n")
        text = head + section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    write_model_card(card, text)
