"""Shift error on held-out pairs with known applied shifts, through the engine's own FFT search.

Protocol (one trial): the INPUT is the SAR image with content moved by a known
sub-pixel ``(sx, sy)`` (real pairs: cubic-spline shift of a co-registered
held-out pair; synthetic: the generator's own misregistration); the REFERENCE
is the optical image (grey = mean of R, G, B). The template is the INPUT's
central window (border ``search`` px cut off), the search area the whole
reference; both become dense feature maps by a feature extractor and
:func:`engine.registration.correlation.match` finds the shift (all shifts at
once by FFT, coarse to fine, sub-pixel refinement). The expected answer is
``(dx, dy) = (-sx, -sy)``. Reported per set: median/mean error, success rates
(< 1 px, < 3 px) and seconds per pair, for each method (a learned model, the
classical CFOG-like features, the gradient-magnitude baseline).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.registration.correlation import match
from engine.registration.features import FeatureExtractor, get_extractor
from engine.registration.prepare import prepare_image

from ..config import ConfigDict, documented
from ..data.pairs import DEFAULT_REAL_ROOT
from .data import HELD_OUT, PairImage, load_opt_sar_3mos

logger = logging.getLogger(__name__)


# ------------------------------------------------------------ extractors
class TorchEmbedding:
    """A PyTorch encoder as an engine :class:`FeatureExtractor` (same preprocessing as the ONNX contract)."""

    name = "deep-torch"

    def __init__(self, encoder: Any, model_id: str = "checkpoint") -> None:
        self.encoder = encoder.eval()
        self.model_id = model_id
        self.stride = int(encoder.stride)

    def __call__(self, image: np.ndarray, valid: np.ndarray) -> np.ndarray:
        import torch

        s = self.stride
        h, w = (image.shape[0] // s) * s, (image.shape[1] // s) * s
        x = prepare_image(image[:h, :w], "auto", valid[:h, :w])
        with torch.no_grad():
            emb = self.encoder(torch.from_numpy(x)[None, None]).numpy()[0]
        return emb.astype(np.float32)


class OnnxEmbedding:
    """A ``Task.EMBED`` ONNX file run by the engine's runtime, with the contract's preprocessing."""

    name = "deep-onnx"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        from engine.metadata import Task
        from engine.runtime import OnnxModel

        self.model = OnnxModel(
            path, providers=["CPUExecutionProvider"], intra_op_threads=1, tasks=[Task.EMBED]
        )
        self.model_id = self.model.metadata.model_id
        self.stride = self.model.metadata.scale_factor

    def __call__(self, image: np.ndarray, valid: np.ndarray) -> np.ndarray:
        s = self.stride
        h, w = (image.shape[0] // s) * s, (image.shape[1] // s) * s
        x = prepare_image(image[:h, :w], "auto", valid[:h, :w])
        return self.model.run(x[None, None])[0].astype(np.float32)


def make_extractor(spec: str) -> FeatureExtractor:
    """``classical`` | ``gradmag`` | ``engine-deep:<model.onnx>`` | ``<model.onnx>`` | ``<checkpoint>``."""
    if spec in ("classical", "gradmag"):
        return get_extractor(spec)
    if spec.startswith("engine-deep:"):
        from engine.registration.shift.deep import OnnxEmbeddingFeatures

        return OnnxEmbeddingFeatures(spec.split(":", 1)[1])
    if spec.endswith(".onnx"):
        return OnnxEmbedding(spec)
    from .train import load_checkpoint, model_from_checkpoint

    net, _ = model_from_checkpoint(load_checkpoint(spec))
    return TorchEmbedding(net.encoder, model_id=f"checkpoint:{Path(spec).name}")


# ------------------------------------------------------------ trials
@dataclass(frozen=True, eq=False)
class Trial:
    set: str
    name: str
    moving: np.ndarray  # INPUT (SAR), content moved by (sx, sy)
    reference: np.ndarray  # REFERENCE (optical grey), same size
    sx: float
    sy: float
    row: int = 0  # top-left of the local template (window mode)
    col: int = 0


def apply_shift(image: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Content moved right by ``sx``, down by ``sy`` (cubic spline): ``out[r, c] = image[r - sy, c - sx]``."""
    from scipy import ndimage

    return ndimage.shift(image.astype(np.float32), (sy, sx), order=3, mode="reflect").astype(np.float32)


def _position(rng: np.random.Generator, size: int, window: int, search: int) -> int:
    if window <= 0:
        return 0
    return int(rng.integers(search, max(search, size - search - window) + 1))


def real_trials(
    pairs: Sequence[PairImage],
    shifts_per_pair: int,
    max_shift: float,
    seed: int,
    window: int = 0,
    search: int = 0,
) -> list[Trial]:
    """``shifts_per_pair`` seeded sub-pixel shifts in ``[-max_shift, max_shift]`` per held-out real pair."""
    rng = np.random.default_rng(seed)
    out = []
    for p in pairs:
        ref = p.optical_band(p.optical.shape[0]) if p.optical.shape[0] > 1 else p.optical[0]
        for _ in range(shifts_per_pair):
            sx, sy = (float(v) for v in rng.uniform(-max_shift, max_shift, 2))
            row, col = _position(rng, p.shape[0], window, search), _position(rng, p.shape[1], window, search)
            out.append(
                Trial("real", p.name, apply_shift(p.sar, sx, sy), ref.astype(np.float32), sx, sy, row, col)
            )
    return out


def synthetic_trials(
    count: int, size: int, max_shift: float, first_seed: int, window: int = 0, search: int = 0
) -> list[Trial]:
    """Held-out synthetic scenes (seeds far from the training ones) with the generator's own shift."""
    from engine.synthetic import generate_training_pair

    rng = np.random.default_rng(first_seed)
    out = []
    for i in range(count):
        tp = generate_training_pair(size, seed=first_seed + i, max_shift=max_shift)
        lin = np.power(10.0, tp.sar_db.astype(np.float64) / 10.0).astype(np.float32)
        grey = tp.optical[:3].mean(axis=0).astype(np.float32)
        row, col = _position(rng, size, window, search), _position(rng, size, window, search)
        out.append(
            Trial("synthetic", f"synthetic_{first_seed + i}", lin, grey, tp.shift[0], tp.shift[1], row, col)
        )
    return out


def run_trial(extractor: FeatureExtractor, trial: Trial, search: int, window: int = 0) -> dict[str, Any]:
    """Estimate the shift of one trial.

    ``search`` is the search radius (px). ``window == 0``: the template is the whole INPUT
    less a ``search`` border (global mode); else a ``window`` px template at the trial's
    ``(row, col)`` (a local tie point), searched in the reference ``+-search`` around it.
    """
    s = max(1, int(extractor.stride))
    if search % s or window % s:
        raise ValueError(f"search radius {search} and window {window} must be multiples of the stride {s}.")
    h, w = trial.moving.shape
    if window <= 0:
        r0, c0, th, tw = search, search, h - 2 * search, w - 2 * search
    else:
        r0, c0, th, tw = trial.row, trial.col, window, window
    if r0 < search or c0 < search or r0 + th + search > h or c0 + tw + search > w or th < 8 or tw < 8:
        raise ValueError(f"a {th}x{tw} template with a {search} px search does not fit a {h}x{w} pair.")
    tmpl = trial.moving[r0 : r0 + th, c0 : c0 + tw]
    ref = trial.reference[r0 - search : r0 + th + search, c0 - search : c0 + tw + search]
    t0 = time.perf_counter()
    ft = extractor(tmpl, np.ones(tmpl.shape, bool))
    fs = extractor(ref, np.ones(ref.shape, bool))
    m = match(ft, fs[:, : ft.shape[1] + 2 * (search // s), : ft.shape[2] + 2 * (search // s)], search // s)
    seconds = time.perf_counter() - t0
    dx, dy = m.dx * s, m.dy * s
    err = float(np.hypot(dx + trial.sx, dy + trial.sy))
    return {
        "set": trial.set,
        "name": trial.name,
        "true_dx": -trial.sx,
        "true_dy": -trial.sy,
        "dx": dx,
        "dy": dy,
        "error": err,
        "reliability": m.reliability,
        "seconds": seconds,
    }


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    err = np.array([r["error"] for r in rows], dtype=np.float64)
    if err.size == 0:
        return {"n": 0}
    return {
        "n": int(err.size),
        "median_px": float(np.median(err)),
        "mean_px": float(np.mean(err)),
        "success_lt1": float(np.mean(err < 1.0)),
        "success_lt3": float(np.mean(err < 3.0)),
        "seconds_per_pair": float(np.mean([r["seconds"] for r in rows])),
    }


@dataclass(frozen=True)
class EvalConfig(ConfigDict):
    real_root: str = DEFAULT_REAL_ROOT
    held_out: tuple[str, ...] = HELD_OUT
    shifts_per_pair: int = 10
    max_shift: float = documented(32.0, "largest applied shift (px)")
    search: int = documented(40, "search radius (px) >= max-shift")
    # 0: global (the whole pair less the search border)
    window: int = documented(0, "local template side (0: global)")
    synthetic: int = documented(20, "held-out synthetic pairs")
    synthetic_size: int = 256
    synthetic_first_seed: int = documented(
        100_000, "first generator seed of the synthetic pairs (another range gives validation pairs)"
    )
    seed: int = 1234


def build_trials(cfg: EvalConfig) -> list[Trial]:
    trials: list[Trial] = []
    if cfg.shifts_per_pair > 0 and (Path(cfg.real_root) / "opt_sar_3mos").is_dir():
        held = [p for p in load_opt_sar_3mos(cfg.real_root) if p.name in cfg.held_out]
        trials += real_trials(held, cfg.shifts_per_pair, cfg.max_shift, cfg.seed, cfg.window, cfg.search)
    elif cfg.shifts_per_pair > 0:
        logger.warning("no opt_sar_3mos under %s: real held-out pairs skipped", cfg.real_root)
    if cfg.synthetic > 0:
        trials += synthetic_trials(
            cfg.synthetic,
            cfg.synthetic_size,
            min(cfg.max_shift, cfg.synthetic_size / 4),
            cfg.synthetic_first_seed,
            cfg.window,
            cfg.search,
        )
    return trials


def evaluate(methods: Sequence[str], cfg: EvalConfig) -> dict[str, Any]:
    """Scores of each method (see :func:`make_extractor`) on the same trials, per set."""
    trials = build_trials(cfg)
    report: dict[str, Any] = {"config": cfg.to_dict(), "methods": {}}
    for spec in methods:
        extractor = make_extractor(spec)
        rows = [run_trial(extractor, t, cfg.search, cfg.window) for t in trials]
        sets = sorted({r["set"] for r in rows})
        report["methods"][spec] = {
            "model_id": extractor.model_id,
            "sets": {s: summarise([r for r in rows if r["set"] == s]) for s in sets},
            "trials": rows,
        }
        for s in sets:
            logger.info("%s on %s: %s", spec, s, report["methods"][spec]["sets"][s])
    return report
