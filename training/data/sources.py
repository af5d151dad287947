"""SAR scene sources (values in dB, NaN = invalid) and a quality-filtered random patch sampler.

Sources:

* :class:`InMemorySource` - a list of dB arrays (e.g. 8-bit display PNGs mapped
  to dB with :func:`load_display_png_db`).
* :class:`GeoTiffFolderSource` - every GeoTIFF in a folder, any size, read by
  random windows (rasterio, through the engine's ``read_window``).
* :class:`Sen12Source` - the SEN1-2 layout ``<root>/ROIs*/s1_*/*.png`` (8-bit
  Sentinel-1 dB patches).
* :class:`SyntheticSource` - the project's synthetic SAR scenes
  (``engine.synthetic.generate_scene_pair``), generated once per seed.

:class:`PatchSampler` draws from the sources by weight and rejects blank or
nodata patches (too few valid pixels, or a nearly constant dB patch).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from engine.metadata import NOISE_FLOOR_DB
from engine.preprocess import linear_to_db

logger = logging.getLogger(__name__)


# ------------------------------------------------------------ 8-bit mapping
@dataclass(frozen=True)
class DisplayPngMapping:
    """How an 8-bit display-stretched SAR image is read as calibrated-looking dB.

    The digital number (DN) is treated as linear *amplitude*:
    ``A = max(DN, dn_zero) / 255 * 10 ** (db_at_255 / 20)``, i.e.
    ``dB = 20 log10(max(DN, dn_zero) / 255) + db_at_255``. With the defaults
    DN 255 is +5 dB, DN 32 about -13 dB and DN 4 about -31 dB: a plausible
    sigma0 range for Sentinel-1/GF-3 scenes. The images are not calibrated;
    this is a documented convention, not a radiometric calibration.
    """

    db_at_255: float = 5.0
    dn_zero: float = 0.5  # DN 0 (dark, not missing) maps to this DN


def load_display_png_db(
    path: str | os.PathLike[str], mapping: DisplayPngMapping = DisplayPngMapping(),
    noise_floor_db: float = NOISE_FLOOR_DB,
) -> np.ndarray:
    """Read an 8-bit grey (or RGB with R=G=B) PNG and map it to dB (float32)."""
    from skimage.io import imread

    img = np.asarray(imread(str(path)))
    if img.ndim == 3:
        img = img[..., :3].mean(axis=-1) if img.shape[-1] >= 3 else img[..., 0]
    dn = np.maximum(img.astype(np.float64), mapping.dn_zero)
    amplitude = dn / 255.0 * 10.0 ** (mapping.db_at_255 / 20.0)
    return linear_to_db(amplitude, "amplitude", noise_floor_db)


# ----------------------------------------------------------------- sources
class PatchSource(Protocol):
    """Something that yields random dB patches (NaN where invalid)."""

    name: str

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray: ...


def _random_crop(arr: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    h, w = arr.shape
    if h < size or w < size:  # pad small scenes with NaN (invalid), the filter decides
        padded = np.full((max(h, size), max(w, size)), np.nan, dtype=np.float32)
        padded[:h, :w] = arr
        arr, (h, w) = padded, padded.shape
    r = int(rng.integers(0, h - size + 1))
    c = int(rng.integers(0, w - size + 1))
    return arr[r : r + size, c : c + size]


class InMemorySource:
    """Random crops from dB arrays held in memory (picked by area)."""

    def __init__(self, name: str, scenes: Sequence[np.ndarray]) -> None:
        if not scenes:
            raise ValueError(f"Source '{name}' has no scenes; give at least one image.")
        self.name = name
        self.scenes = [np.asarray(s, dtype=np.float32) for s in scenes]
        areas = np.array([s.size for s in self.scenes], dtype=np.float64)
        self._p = areas / areas.sum()

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        scene = self.scenes[int(rng.choice(len(self.scenes), p=self._p))]
        return _random_crop(scene, rng, size).copy()


class GeoTiffFolderSource:
    """Random windows from every ``*.tif``/``*.tiff`` in a folder (any size).

    ``kind`` says what the band holds: 'intensity', 'amplitude' or 'db'.
    """

    def __init__(
        self, folder: str | os.PathLike[str], kind: str = "intensity", band: int = 1,
        noise_floor_db: float = NOISE_FLOOR_DB,
    ) -> None:
        from engine.raster_io import inspect_raster

        self.name = f"geotiff:{folder}"
        self.files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in (".tif", ".tiff"))
        if not self.files:
            raise ValueError(f"No GeoTIFF (*.tif, *.tiff) found under '{folder}'; check the folder.")
        if kind not in ("intensity", "amplitude", "db"):
            raise ValueError(f"Unknown kind '{kind}'; use 'intensity', 'amplitude' or 'db'.")
        self.kind, self.band, self.floor = kind, band, noise_floor_db
        self.infos = [inspect_raster(p, band) for p in self.files]
        areas = np.array([i.width * i.height for i in self.infos], dtype=np.float64)
        self._p = areas / areas.sum()

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        from engine.preprocess import valid_mask
        from engine.raster_io import read_window
        from engine.tiling import Window

        i = int(rng.choice(len(self.files), p=self._p))
        info = self.infos[i]
        r = int(rng.integers(0, max(info.height - size, 0) + 1))
        c = int(rng.integers(0, max(info.width - size, 0) + 1))
        raw = read_window(self.files[i], self.band, Window(r, c, size, size), fill=np.nan, dtype=np.float64)
        if self.kind == "db":
            ok = valid_mask(raw, info.nodata, positive=False)
            out = np.where(ok, np.maximum(raw, self.floor), np.nan).astype(np.float32)
            return out
        ok = valid_mask(raw, info.nodata, positive=True)
        return linear_to_db(np.where(ok, raw, np.nan), self.kind, self.floor)


class Sen12Source:
    """SEN1-2 Sentinel-1 patches: ``<root>/ROIs*/s1_*/*.png``, 8-bit, linearly scaled dB.

    The SEN1-2 release clips sigma0 to ``db_range`` (default -25..0 dB) and
    scales it to 0..255; this source inverts that scaling.
    """

    def __init__(self, root: str | os.PathLike[str], db_range: tuple[float, float] = (-25.0, 0.0)) -> None:
        self.name = f"sen12:{root}"
        self.files = sorted(Path(root).glob("ROIs*/s1_*/*.png"))
        if not self.files:
            raise ValueError(
                f"No SEN1-2 Sentinel-1 patches under '{root}' (expected ROIs*/s1_*/*.png)."
            )
        self.db_range = db_range

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        from skimage.io import imread

        img = np.asarray(imread(str(self.files[int(rng.integers(len(self.files)))])), dtype=np.float32)
        if img.ndim == 3:
            img = img[..., 0]
        lo, hi = self.db_range
        return _random_crop(lo + img / 255.0 * (hi - lo), rng, size).copy()


class SyntheticSource(InMemorySource):
    """The project's synthetic SAR scenes (dB of the SAR image), one per seed."""

    def __init__(self, seeds: Sequence[int], size: int = 512, noise_floor_db: float = NOISE_FLOOR_DB) -> None:
        super().__init__("synthetic", [synthetic_sar_db(s, size, noise_floor_db) for s in seeds])


SYNTHETIC_LOOKS = (1.0, 2.0, 4.0, 4.4)
SYNTHETIC_LOOK_DIRECTIONS = ("east", "west")


def synthetic_sar_db(seed: int, size: int, noise_floor_db: float = NOISE_FLOOR_DB) -> np.ndarray:
    """dB SAR image of the synthetic scene with this seed.

    The number of looks cycles through :data:`SYNTHETIC_LOOKS` and the look
    direction through :data:`SYNTHETIC_LOOK_DIRECTIONS` with the seed, so a
    set of seeds covers single-look and multi-look (GRD-like) speckle.
    """
    from engine.synthetic import generate_scene_pair

    pair = generate_scene_pair(
        size, size, seed=seed, looks=SYNTHETIC_LOOKS[seed % len(SYNTHETIC_LOOKS)],
        look_direction=SYNTHETIC_LOOK_DIRECTIONS[(seed // len(SYNTHETIC_LOOKS)) % 2],
    )
    return linear_to_db(np.asarray(pair.sar, dtype=np.float64), "intensity", noise_floor_db)


# ----------------------------------------------------------------- sampler
class PatchSampler:
    """Draw quality-filtered patches from weighted sources.

    A patch is kept when at least ``min_valid`` of its pixels are valid and
    the standard deviation of its valid dB values is at least ``min_std_db``
    (blank or constant patches carry nothing to learn). Invalid pixels are
    returned as NaN; the caller maps them to the network's fill value.
    """

    def __init__(
        self, sources: Sequence[PatchSource], weights: Sequence[float] | None = None,
        min_valid: float = 0.95, min_std_db: float = 0.5, max_tries: int = 50,
    ) -> None:
        if not sources:
            raise ValueError("PatchSampler needs at least one source.")
        w = np.asarray(weights if weights is not None else [1.0] * len(sources), dtype=np.float64)
        if w.shape != (len(sources),) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("weights must be one non-negative number per source, not all zero.")
        self.sources = list(sources)
        self._p = w / w.sum()
        self.min_valid, self.min_std_db, self.max_tries = min_valid, min_std_db, max_tries
        self.rejected = 0

    def accept(self, patch: np.ndarray) -> bool:
        valid = np.isfinite(patch)
        if valid.mean() < self.min_valid:
            return False
        return bool(np.std(patch[valid]) >= self.min_std_db)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        for _ in range(self.max_tries):
            src = self.sources[int(rng.choice(len(self.sources), p=self._p))]
            patch = src.sample(rng, size)
            if self.accept(patch):
                return patch
            self.rejected += 1
        raise RuntimeError(
            f"No acceptable {size}x{size} patch in {self.max_tries} tries (blank or nodata); "
            "lower min_valid/min_std_db or check the data."
        )
