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

until no cell moves or ``iterations`` is reached. Encoder and decoder
networks are untouched (same weights hash); only the table in both models'
metadata changes, so files written with the factorised table are refused by
the hash check instead of being decoded wrongly.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.codec.entropy import EntropyModelTable

from .card import write_model_card
from .data import DataConfig, Preprocessing, crop_to_multiple, heldout_scenes, training_scenes

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

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


def preprocessing_of(meta: Any) -> Preprocessing:
    """The codec's dB clipping and noise floor from its ONNX metadata."""
    return Preprocessing(float(meta.db_min), float(meta.db_max), float(meta.noise_floor_db))


def image_latents(encoder: Any, table: EntropyModelTable, db: np.ndarray, pre: Preprocessing) -> np.ndarray:
    """Integer latents ``[C, h, w]`` of one dB image, encoded as a whole (cropped to a multiple of 16)."""
    x = pre.to_network(crop_to_multiple(db))
    return table.quantise(encoder.run(x[None, None])[0])


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
    base = EntropyModelTable(table.medians, table.offsets, table.pmfs)
    energy = np.log1p(np.abs(q[:, 0, :]).sum(axis=0).astype(np.float64))
    edges = np.quantile(energy, np.linspace(0.0, 1.0, cfg.classes + 1)[1:-1])
    cells = np.digitize(energy, edges).astype(np.int32)
    fitted = base
    for it in range(cfg.iterations):
        pmfs, prior = class_pmfs(q, cells, base, cfg.classes, cfg)
        fitted = base.with_classes(pmfs, prior)
        new = fitted.assign_classes(q)
        moved = int(np.count_nonzero(new != cells))
        log.info("classify iteration %d: %d of %d cells changed class", it + 1, moved, cells.size)
        cells = new
        if moved == 0:
            break
    return fitted


def training_latents(encoder: Any, table: EntropyModelTable, data: DataConfig, pre: Preprocessing,
                     seed: int) -> np.ndarray:
    """Latents of every training image (real training parts + the run's synthetic scenes): ``[C, 1, N]``."""
    scenes = training_scenes(data, pre, seed)
    if not scenes:
        raise ValueError("No training images found; give --real-root or --synthetic-scenes > 0.")
    return np.concatenate([cells_of(image_latents(encoder, table, db, pre)) for _, db in scenes], axis=2)


def heldout_rates(encoder: Any, tables: Sequence[EntropyModelTable], data: DataConfig,
                  pre: Preprocessing) -> dict[str, list[float]]:
    """Range-coded latent bits per pixel of each held-out image under each of ``tables``."""
    out: dict[str, list[float]] = {}
    for name, db in heldout_scenes(data, pre):
        q = image_latents(encoder, tables[0], db, pre)
        pixels = q.shape[1] * q.shape[2] * 256
        out[name] = [8.0 * len(t.encode(q)) / pixels for t in tables]
    return out


def card_section(cfg: ClassifyConfig, command: str, cells: int, rates: dict[str, list[float]],
                 engine_scores: dict[str, Any] | None) -> str:
    """Markdown for the model card (between :data:`CARD_BEGIN` and :data:`CARD_END`)."""
    lines = [
        CARD_BEGIN,
        "## Entropy model: classified (per-cell classes)",
        "",
        f"The shipped table is classified: {cfg.classes} pmf sets fitted after training on the integer "
        f"latents of the training images ({cells} latent cells; Lloyd iterations on code length, smoothing "
        f"{cfg.smoothing:g} towards the factorised pmf; `training/compression/classify.py`). The encoder "
        "picks per 16 x 16-pixel cell the set coding it in the fewest bits and sends the class map first. "
        "Network weights unchanged. Command:",
        "",
        "```bash",
        command,
        "```",
        "",
        "Range-coded latent bits per pixel on the held-out images (whole image, no file header), "
        "factorised table vs classified table:",
        "",
        "| image | factorised bpp | classified bpp | ratio |",
        "|---|---|---|---|",
    ]
    for name, (before, after) in rates.items():
        lines.append(f"| {name} | {before:.3f} | {after:.3f} | {after / before:.3f} |")
    real = [v for n, v in rates.items() if not n.startswith("synthetic/")]
    if real:
        b, a = float(np.mean([v[0] for v in real])), float(np.mean([v[1] for v in real]))
        lines.append(f"| **real held-out, mean** | {b:.3f} | {a:.3f} | {a / b:.3f} |")
    if engine_scores:
        lines += [
            "",
            "Through the engine with the classified table (file bits per pixel; replaces the factorised "
            "table's 'Through the engine' figures above):",
            "",
            "| data | bpp (file) | PSNR dB | SSIM | ENL ratio | EPI |",
            "|---|---|---|---|---|---|",
        ]
        for group, m in engine_scores["mean"].items():
            lines.append(f"| {group} | {m['bpp_file']:.3f} | {m['psnr_db']:.3f} | {m['ssim']:.3f} | "
                         f"{m['enl_ratio']:.3f} | {m['epi']:.3f} |")
    lines.append(CARD_END)
    return "\n".join(lines) + "\n"


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
