"""Latent cache for hyperprior training: the shipped encoder's latents of many training crops.

The hyperprior is trained on the latents of a *frozen* transform (an exported
``sarcodec-rN-encoder.onnx``), so the encoder runs once per crop, here, and
training reads ``y`` ``[N, C, 16, 16]`` from an ``.npz`` file. Crops are drawn
from the codec's own training pipeline (:func:`training.compression.data.build_sampler`:
synthetic scenes of the run's seed and the training parts of the real samples,
never the held-out parts), with its augmentation.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import DataConfig, build_sampler, make_batch

logger = logging.getLogger(__name__)

CROP = 256
"""Crop side in pixels: one 256 px tile, 16 x 16 latents (the engine's coding strip is 16 rows)."""


@dataclass(frozen=True)
class LatentCache:
    """Cached latents of one encoder and where they came from."""

    y: np.ndarray  # float16 [N, C, h, w]
    model_id: str
    weights_sha256: str
    seed: int

    @property
    def channels(self) -> int:
        return int(self.y.shape[1])


def cache_latents(encoder_path: Path, out: Path, crops: int, seed: int, data: DataConfig,
                  batch: int = 16, progress: bool = True) -> Path:
    """Encode ``crops`` random training crops of ``CROP`` px with the ONNX encoder; write ``out`` (.npz).

    ``seed`` chooses the synthetic training scenes (as the shipped models' ``--seed``) and the crops.
    The file is written to a temporary name and renamed when complete.
    """
    from tqdm import tqdm

    from engine.codec.models import load_encoder

    from ..classify import preprocessing_of

    if crops < 1:
        raise ValueError(f"crops must be >= 1, got {crops}.")
    encoder = load_encoder(encoder_path)
    meta = encoder.metadata
    pre = preprocessing_of(meta)
    sampler = build_sampler(data, pre, seed)
    rng = np.random.default_rng([seed, 18])
    parts: list[np.ndarray] = []
    done = 0
    with tqdm(total=crops, disable=not progress, desc=f"latents {meta.model_id}", mininterval=5) as bar:
        while done < crops:
            n = min(batch, crops - done)
            x = make_batch(sampler, rng, n, CROP, pre, data.db_jitter).numpy()
            parts.append(np.asarray(encoder.run(x), dtype=np.float16))
            done += n
            bar.update(n)
    y = np.concatenate(parts)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.npz")
    try:
        np.savez(tmp, y=y, model_id=meta.model_id, weights_sha256=meta.weights_sha256, seed=seed)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    logger.info("wrote %d latents %s of %s to %s", y.shape[0], list(y.shape[1:]), meta.model_id, out)
    return out


def load_cache(path: Path) -> LatentCache:
    """A cache written by :func:`cache_latents`."""
    if not path.is_file():
        raise FileNotFoundError(f"Latent cache '{path}' does not exist; write it with "
                                "'python -m training.compression hyper cache'.")
    with np.load(path) as f:
        y = f["y"]
        if y.ndim != 4:
            raise ValueError(f"'{path}' holds latents of shape {list(y.shape)}, expected [N, C, h, w].")
        return LatentCache(y, str(f["model_id"]), str(f["weights_sha256"]), int(f["seed"]))
