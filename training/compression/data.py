"""Training and held-out data of the SAR codec, in normalised dB.

Training mix (permissive licences only):

* synthetic SAR scenes of the project (``engine.synthetic``), many seeds;
* ``sar_single_deepdespeckling/*`` (MIT) and ``opt_sar_3mos/*_sar.png``
  (Apache-2.0), 8-bit display images read as amplitude (see
  :class:`training.data.DisplayPngMapping`), minus the held-out parts below;
* optionally GeoTIFF folders and a SEN1-2 root given on the command line.

Held out (never trained on): four 3MOS SAR tiles, the right quarter of
``sar2sar_noisy.png``, the bottom 128 rows of
``noisy_test_image_data_coordinates.png`` and synthetic seeds 10000.. (training
scenes use seeds from 20000).
``os_sift`` GF-3 and ``sar_sar_r2d2`` images are never used for training
(benchmark only, non-commercial/unclear licences).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine.preprocess import minmax_denormalise, minmax_normalise
from training.data import (
    GeoTiffFolderSource,
    InMemorySource,
    PatchSampler,
    PatchSource,
    Sen12Source,
    load_display_png_db,
)
from training.data.pairs import DEFAULT_REAL_ROOT
from training.data.sources import synthetic_sar_db

from ..config import ConfigDict

logger = logging.getLogger(__name__)


HELDOUT_3MOS = ("SEN_city_8", "SEN_rural_7", "SEN_water_9", "GF3_water_5")
HELDOUT_SEED_BASE = 10_000
TRAIN_SEED_BASE = 20_000  # training scene seeds: TRAIN_SEED_BASE + 1000 * run seed + i


@dataclass(frozen=True)
class Preprocessing(ConfigDict):
    """dB clipping/normalisation saved with every checkpoint and exported model."""

    db_min: float = -35.0
    db_max: float = 15.0
    noise_floor_db: float = -35.0

    def to_network(self, db: np.ndarray) -> np.ndarray:
        """dB (NaN invalid) -> [0, 1] float32 with invalid pixels 0 (the engine's fill)."""
        x = minmax_normalise(np.maximum(db, self.noise_floor_db), self.db_min, self.db_max)
        x[~np.isfinite(x)] = 0.0
        return x

    def to_db(self, x: np.ndarray) -> np.ndarray:
        """[0, 1] network values -> dB (the inverse of :meth:`to_network` inside the range)."""
        return minmax_denormalise(x, self.db_min, self.db_max)


@dataclass(frozen=True)
class DataConfig(ConfigDict):
    real_root: str = DEFAULT_REAL_ROOT
    use_real: bool = True
    synthetic_scenes: int = 48
    synthetic_size: int = 512
    synthetic_weight: float = 0.5
    real_weight: float = 0.5
    geotiff_dirs: tuple[str, ...] = ()
    geotiff_kind: str = "intensity"
    sen12_root: str | None = None
    db_jitter: float = 2.0  # random global dB offset (calibration robustness)
    min_valid: float = 0.95
    min_std_db: float = 0.5
    extra: dict[str, str] = field(default_factory=dict)



DESPECKLING_SAMPLES = ("sar2sar_noisy.png", "noisy_test_image_data_coordinates.png")
"""The despeckling samples (``sar_single_deepdespeckling/``), each split by :func:`split_despeckling`."""


def split_despeckling(name: str, img: np.ndarray, heldout: bool) -> np.ndarray:
    """The training or held-out part of the despeckling sample ``name``.

    ``sar2sar_noisy.png``: the right quarter is held out; ``noisy_test_image_data_coordinates.png``:
    the bottom 128 rows. Benchmarks use the held-out parts only.
    """
    if name == DESPECKLING_SAMPLES[0]:
        cut = img.shape[1] * 3 // 4
        return img[:, cut:] if heldout else img[:, :cut]
    if name == DESPECKLING_SAMPLES[1]:
        cut = img.shape[0] - 128
        return img[cut:] if heldout else img[:cut]
    raise ValueError(f"{name} is not one of the despeckling samples {DESPECKLING_SAMPLES}")


def _png_scenes(real_root: Path, floor: float, heldout: bool) -> list[tuple[str, np.ndarray]]:
    out: list[tuple[str, np.ndarray]] = []
    mos = real_root / "opt_sar_3mos"
    for p in sorted(mos.glob("*_sar.png")):
        stem = p.name[: -len("_sar.png")]
        if (stem in HELDOUT_3MOS) == heldout:
            out.append((f"3mos/{stem}", load_display_png_db(p, noise_floor_db=floor)))
    dd = real_root / "sar_single_deepdespeckling"
    for name, label in zip(DESPECKLING_SAMPLES, ("sar2sar_noisy", "noisy_test_image"), strict=True):
        if (dd / name).exists():
            img = load_display_png_db(dd / name, noise_floor_db=floor)
            out.append((f"deepdespeckling/{label}", split_despeckling(name, img, heldout)))
    return out


def training_synthetic_seeds(cfg: DataConfig, seed: int) -> list[int]:
    """Seeds of the synthetic training scenes of a run with ``seed``."""
    return [TRAIN_SEED_BASE + seed * 1000 + i for i in range(cfg.synthetic_scenes)]


def training_scenes(cfg: DataConfig, pre: Preprocessing, seed: int) -> list[tuple[str, np.ndarray]]:
    """The in-memory training images of a run: its synthetic scenes, then the real training parts."""
    out = [(f"synthetic/{s}", synthetic_sar_db(s, cfg.synthetic_size, pre.noise_floor_db))
           for s in training_synthetic_seeds(cfg, seed)]
    real_root = Path(cfg.real_root)
    if cfg.use_real and real_root.is_dir():
        out += _png_scenes(real_root, pre.noise_floor_db, heldout=False)
    elif cfg.use_real:
        logger.warning("Real samples folder %s not found; using the other sources only.", real_root)
    return out


def build_sampler(cfg: DataConfig, pre: Preprocessing, seed: int) -> PatchSampler:
    """Weighted, quality-filtered sampler over the training sources."""
    sources: list[PatchSource] = []
    weights: list[float] = []
    scenes = training_scenes(cfg, pre, seed)
    synthetic = [s for name, s in scenes if name.startswith("synthetic/")]
    real = [s for name, s in scenes if not name.startswith("synthetic/")]
    if synthetic:
        sources.append(InMemorySource("synthetic", synthetic))
        weights.append(cfg.synthetic_weight)
    if real:
        sources.append(InMemorySource("real-png", real))
        weights.append(cfg.real_weight)
    for folder in cfg.geotiff_dirs:
        sources.append(GeoTiffFolderSource(folder, cfg.geotiff_kind, noise_floor_db=pre.noise_floor_db))
        weights.append(cfg.real_weight)
    if cfg.sen12_root:
        sources.append(Sen12Source(cfg.sen12_root))
        weights.append(cfg.real_weight)
    if not sources:
        raise ValueError(
            "No training data: enable synthetic scenes, real samples, GeoTIFF folders or SEN1-2."
        )
    return PatchSampler(sources, weights, min_valid=cfg.min_valid, min_std_db=cfg.min_std_db)


def augment(patch: np.ndarray, rng: np.random.Generator, db_jitter: float) -> np.ndarray:
    """Random flips, 90-degree rotations and a global dB offset."""
    patch = np.rot90(patch, int(rng.integers(4)))
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    if db_jitter > 0:
        patch = patch + np.float32(rng.uniform(-db_jitter, db_jitter))
    return np.ascontiguousarray(patch, dtype=np.float32)


def make_batch(
    sampler: PatchSampler,
    rng: np.random.Generator,
    batch: int,
    size: int,
    pre: Preprocessing,
    db_jitter: float,
) -> torch.Tensor:
    """``[batch, 1, size, size]`` float32 network input in [0, 1]."""
    tiles = [pre.to_network(augment(sampler.sample(rng, size), rng, db_jitter)) for _ in range(batch)]
    return torch.from_numpy(np.stack(tiles)[:, None])


def heldout_scenes(
    cfg: DataConfig, pre: Preprocessing, synthetic: int = 4, size: int = 256
) -> list[tuple[str, np.ndarray]]:
    """Held-out dB scenes: real (if present) + synthetic seeds >= HELDOUT_SEED_BASE."""
    out: list[tuple[str, np.ndarray]] = []
    real_root = Path(cfg.real_root)
    if cfg.use_real and real_root.is_dir():
        out += _png_scenes(real_root, pre.noise_floor_db, heldout=True)
    seeds = range(HELDOUT_SEED_BASE, HELDOUT_SEED_BASE + synthetic)
    out += [(f"synthetic/{s}", synthetic_sar_db(s, size, pre.noise_floor_db)) for s in seeds]
    return out


def crop_to_multiple(arr: np.ndarray, multiple: int = 16) -> np.ndarray:
    h, w = arr.shape[-2:]
    return arr[..., : h - h % multiple, : w - w % multiple]
