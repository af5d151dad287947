"""Held-out evaluation of translation models against two trivial renderings.

Sets: the held-out 3MOS pairs (:data:`training.translation.data.HELD_OUT`; Sentinel-1 and
Gaofen-3 reported apart) and synthetic pairs from seeds no training run uses
(``synthetic_first_seed``, default 900000). Every model runs through the engine
(:func:`engine.translation.translate_array`, tiles, blending and all) on SAR in dB.

FID (2048-D Inception-v3 pool features, :mod:`.inception`) is added when
``inception_weights`` names a state dict; nothing is downloaded.

Baselines: ``grey-stretch`` (the SAR dB stretched between its 2nd and 98th percentiles,
replicated to R = G = B) and ``mean-colour`` (every pixel the mean RGB of the training
optical images of the same kind of data).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..config import documented
from . import metrics
from .data import DEFAULT_REAL_ROOT, HELD_OUT, Pair, load_3mos, split_held_out, synthetic_pairs

logger = logging.getLogger(__name__)

SCORES = ("psnr", "ssim", "structure", "colour_error", "colour_distribution")


@dataclass(frozen=True)
class EvalConfig:
    real_root: str = DEFAULT_REAL_ROOT
    held_out: tuple[str, ...] = HELD_OUT
    synthetic: int = documented(8, "held-out synthetic pairs")
    synthetic_size: int = 256
    synthetic_first_seed: int = 900000
    train_synthetic: int = documented(32, "synthetic training pairs whose mean colour is the mean-colour "
                                           "baseline's (as many as the run trained on)")
    inception_weights: str | None = None


def grey_stretch(sar_db: np.ndarray) -> np.ndarray:
    """SAR dB stretched between its 2nd and 98th percentiles to ``[0, 1]``, as R = G = B."""
    finite = sar_db[np.isfinite(sar_db)]
    lo, hi = np.percentile(finite, [2, 98]) if finite.size else (0.0, 1.0)
    grey = np.clip((np.nan_to_num(sar_db, nan=lo) - lo) / max(hi - lo, 1e-6), 0, 1)
    return np.repeat(grey[np.newaxis].astype(np.float32), 3, axis=0)


def mean_colour_image(mean_rgb: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return np.broadcast_to(mean_rgb.reshape(3, 1, 1), (3, *shape)).astype(np.float32)


def mean_rgb(pairs: Sequence[Pair]) -> np.ndarray:
    """Mean optical colour over ``pairs`` (every pixel counts alike)."""
    return np.mean([p.rgb.reshape(3, -1).mean(axis=1) for p in pairs], axis=0)


def score(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    pred = np.nan_to_num(pred, nan=0.0)
    return {
        "psnr": metrics.psnr(pred, target),
        "ssim": metrics.ssim_rgb(pred, target),
        "structure": metrics.structure_score(pred, target),
        "colour_error": metrics.colour_error(pred, target),
        "colour_distribution": metrics.colour_distribution_distance(pred, target),
    }


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in SCORES}


def fid(net: Any, real: Sequence[np.ndarray], fake: Sequence[np.ndarray]) -> float:
    """FID between two sets of ``(3, H, W)`` images in ``[0, 1]`` (2048-D Inception-v3 pool features).

    With fewer images than feature dimensions the covariances are singular and the value is
    only comparable between methods scored on the same pairs.
    """
    import torch

    from .inception import features

    def feats(images: Sequence[np.ndarray]) -> np.ndarray:
        batch = torch.from_numpy(np.stack(images).astype(np.float32))
        return features(net, batch).numpy().astype(np.float64)

    return metrics.fid_from_features(feats(real), feats(fake))


def evaluation_sets(cfg: EvalConfig) -> dict[str, tuple[list[Pair], np.ndarray]]:
    """``{set name: (pairs, mean training colour)}``; the 3MOS sets only when the data is present."""
    from pathlib import Path

    sets: dict[str, tuple[list[Pair], np.ndarray]] = {}
    if (Path(cfg.real_root) / "opt_sar_3mos").is_dir():
        train, held = split_held_out(load_3mos(cfg.real_root), cfg.held_out)
        colour = mean_rgb(train)
        sen = [p for p in held if p.name.startswith("SEN_")]
        other = [p for p in held if not p.name.startswith("SEN_")]
        if sen:
            sets["3mos_sentinel1"] = (sen, colour)
        if other:
            sets["3mos_gaofen3"] = (other, colour)
    else:
        logger.warning("%s/opt_sar_3mos is absent: real pairs are not evaluated", cfg.real_root)
    if cfg.synthetic:
        train_synth = synthetic_pairs(cfg.train_synthetic, 512, 0)
        held_synth = synthetic_pairs(cfg.synthetic, cfg.synthetic_size, cfg.synthetic_first_seed)
        sets["synthetic"] = (held_synth, mean_rgb(train_synth))
    return sets


def _renderers(models: Sequence[str]) -> dict[str, Callable[[Pair, np.ndarray], np.ndarray]]:
    from engine.runtime import OnnxModel
    from engine.translation import translate_array

    out: dict[str, Callable[[Pair, np.ndarray], np.ndarray]] = {
        "grey-stretch": lambda p, _c: grey_stretch(p.sar_db),
        "mean-colour": lambda p, c: mean_colour_image(c, p.shape),
    }
    for path in models:
        net = OnnxModel(path)

        def render(p: Pair, _c: np.ndarray, net: OnnxModel = net) -> np.ndarray:
            return translate_array(p.sar_db, net, input_kind="db")

        out[net.metadata.model_id] = render
    return out


def evaluate(models: Sequence[str], cfg: EvalConfig = EvalConfig()) -> dict[str, Any]:
    """Scores per set, method and pair; ``summary`` holds the per-set means."""
    inception = None
    if cfg.inception_weights:
        from .inception import load_inception

        inception = load_inception(cfg.inception_weights)
    sets = evaluation_sets(cfg)
    renderers = _renderers(models)
    per_pair: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for set_name, (pairs, colour) in sets.items():
        per_pair[set_name] = {}
        summary[set_name] = {}
        for method, render in renderers.items():
            images = {p.name: np.nan_to_num(render(p, colour), nan=0.0) for p in pairs}
            rows = {p.name: score(images[p.name], p.rgb) for p in pairs}
            per_pair[set_name][method] = rows
            summary[set_name][method] = _mean(list(rows.values()))
            if inception is not None:
                summary[set_name][method]["fid"] = fid(
                    inception, [p.rgb for p in pairs], list(images.values())
                )
            logger.info(
                "%s %s: %s",
                set_name,
                method,
                " ".join(f"{k}={v:.3f}" for k, v in summary[set_name][method].items()),
            )
    return {
        "config": asdict(cfg),
        "pairs": {k: [p.name for p in v[0]] for k, v in sets.items()},
        "summary": summary,
        "per_pair": per_pair,
    }
