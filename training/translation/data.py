"""Paired SAR/optical data for the translation training: readers, normalisation and the crop sampler.

Every reader yields :class:`Pair`: SAR in dB ``(H, W)`` (NaN = invalid) and optical RGB
``(3, H, W)`` in ``[0, 1]`` (display reflectance). The network input is made by the
engine's own :func:`engine.preprocess.normalise` with the metadata the export writes
(:func:`input_metadata`), so training and inference use one normalisation.

Sources:

* **SEN1-2** (Schmitt et al. 2018): ``<root>/ROIs*/s1_<n>/<name>_s1_<n>_p<k>.png`` with the
  optical patch at ``<root>/ROIs*/s2_<n>/<name>_s2_<n>_p<k>.png``. The S1 PNGs hold VV dB
  clipped to ``[-25, 0]`` and scaled to 0-255 (the dataset's convention); the S2 PNGs
  are RGB 8-bit. Files are read lazily (the full set is 282,384 pairs).
* **GeoTIFF pairs**: ``<root>/sar/<name>.tif`` and ``<root>/optical/<name>.tif`` on the same
  grid, read by windows through :mod:`engine.raster_io`. SAR values are converted by
  :func:`engine.preprocess.to_model_domain` with the given kind (intensity, amplitude or db);
  optical bands ``rgb_bands`` are multiplied by ``optical_scale`` (1/255 for 8-bit,
  3/10000 for Sentinel-2 L2A reflectance x 10000) and clipped to ``[0, 1]``.
* **Synthetic** scenes (:mod:`engine.synthetic`): SAR dB, optical reflectance x
  :data:`SYNTHETIC_GAIN` as display RGB.
* **3MOS** (``<real_root>/opt_sar_3mos``, Apache-2.0, 15 pairs of 256 px): the SAR PNGs are
  display-stretched 8-bit, not calibrated; they are read as amplitude with
  ``255 = MOS_DB_AT_255`` dB (:class:`training.data.DisplayPngMapping`, an assumption that
  puts land near -12 dB and water near -23 dB). :data:`HELD_OUT` pairs are never trained on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.metadata import NOISE_FLOOR_DB, InputTransform, ModelMetadata, Normalisation, Task
from engine.preprocess import normalise, to_model_domain

from ..config import ConfigDict, documented
from ..data.pairs import DEFAULT_REAL_ROOT, mos_files, read_png

# re-exported: the translation modules, benchmark and tests read them from here
from ..data.pairs import MOS_FOLDER as MOS_FOLDER
from ..data.pairs import split_held_out as split_held_out

logger = logging.getLogger(__name__)

HELD_OUT: tuple[str, ...] = ("SEN_water_9", "SEN_rural_8", "SEN_city_8", "SEN_plain_9", "GF3_water_5")
"""3MOS pairs kept for evaluation only: one per scene type (four Sentinel-1, one Gaofen-3)."""
DB_MIN, DB_MAX = -30.0, 5.0
"""Min-max normalisation range of the SAR input (dB)."""
SEN12_DB_RANGE = (-25.0, 0.0)
MOS_DB_AT_255 = 5.0
SYNTHETIC_GAIN = 3.0


def input_metadata(
    model_id: str = "translation-training",
    weights_sha256: str = "0" * 64,
    tile_size: int = 256,
    overlap: int = 64,
    **changes: Any,
) -> ModelMetadata:
    """The translation model's contract: linear intensity -> dB -> min-max ``[DB_MIN, DB_MAX]``."""
    meta = ModelMetadata(
        task=Task.TRANSLATE,
        model_id=model_id,
        weights_sha256=weights_sha256,
        input_bands=1,
        input_transform=InputTransform.INTENSITY_TO_DB,
        normalisation=Normalisation.MINMAX,
        db_min=DB_MIN,
        db_max=DB_MAX,
        noise_floor_db=NOISE_FLOOR_DB,
        tile_size=tile_size,
        overlap=overlap,
        output_meaning="synthetic optical-looking RGB rendered from SAR (red, green, blue); tanh output in "
        "[-1, 1], display value = (y + 1) / 2 in [0, 1]",
        extra={
            "output_bands": "red,green,blue",
            "output_scaling": "display = (y + 1) / 2",
            "synthetic": "true",
        },
    )
    return meta.with_updates(**changes) if changes else meta


NORMALISATION = input_metadata()


def sar_to_network(sar_db: np.ndarray) -> np.ndarray:
    """dB -> network input in ``[0, 1]`` (engine normalisation; NaN -> 0 as the engine fills)."""
    x = normalise(sar_db, NORMALISATION)
    return np.where(np.isfinite(x), x, np.float32(0.0)).astype(np.float32)


@dataclass(frozen=True, eq=False)
class Pair:
    """A co-registered pair: SAR dB ``(H, W)``, optical RGB ``(3, H, W)`` in ``[0, 1]``."""

    name: str
    sar_db: np.ndarray
    rgb: np.ndarray
    source: str

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.sar_db.shape[0]), int(self.sar_db.shape[1]))


def mos_sar_db(path: Path) -> np.ndarray:
    """3MOS 8-bit SAR PNG -> dB with the project's display-PNG convention (amplitude, 255 = +5 dB)."""
    from training.data import DisplayPngMapping, load_display_png_db

    return load_display_png_db(path, DisplayPngMapping(db_at_255=MOS_DB_AT_255), NOISE_FLOOR_DB)


def sen12_sar_db(grey: np.ndarray) -> np.ndarray:
    """SEN1-2 8-bit SAR -> dB (the dataset's linear map of ``[-25, 0]`` dB to 0-255)."""
    lo, hi = SEN12_DB_RANGE
    return (lo + (hi - lo) * grey / 255.0).astype(np.float32)


def load_3mos(real_root: str | os.PathLike[str]) -> list[Pair]:
    """All 3MOS pairs (sorted by name); :class:`FileNotFoundError` if the folder is absent."""
    pairs = []
    for name, sar_path, opt_path in mos_files(real_root):
        rgb = read_png(opt_path, "RGB").transpose(2, 0, 1) / 255.0
        pairs.append(Pair(name, mos_sar_db(sar_path), np.ascontiguousarray(rgb), "3mos"))
    return pairs


def synthetic_pairs(count: int, size: int = 256, first_seed: int = 0) -> list[Pair]:
    """``count`` co-registered synthetic pairs (seeds ``first_seed...``)."""
    from engine.synthetic import iter_training_pairs

    out = []
    for i, tp in enumerate(iter_training_pairs(count, size, first_seed=first_seed, max_shift=0.0)):
        rgb = np.clip(tp.optical[:3] * SYNTHETIC_GAIN, 0.0, 1.0).astype(np.float32)
        out.append(Pair(f"synthetic_{first_seed + i}", tp.sar_db.astype(np.float32), rgb, "synthetic"))
    return out


# ------------------------------------------------------------------ lazy sources
@dataclass(frozen=True)
class LazyPair:
    """A pair read on demand (large datasets): ``load()`` returns the :class:`Pair`."""

    name: str
    load: Callable[[], Pair]


def sen12_pairs(root: str | os.PathLike[str]) -> list[LazyPair]:
    """Every SEN1-2 pair under ``root`` (``ROIs*/s1_*/*.png`` with the matching ``s2_*`` file)."""
    base = Path(root)
    found = []
    for s1 in sorted(base.glob("ROIs*/s1_*/*.png")):
        folder = s1.parent.name.replace("s1_", "s2_", 1)
        s2 = s1.parent.parent / folder / s1.name.replace("_s1_", "_s2_", 1)
        if not s2.is_file():
            logger.debug("no optical partner for %s", s1)
            continue

        def load(s1: Path = s1, s2: Path = s2) -> Pair:
            rgb = read_png(s2, "RGB").transpose(2, 0, 1) / 255.0
            return Pair(s1.stem, sen12_sar_db(read_png(s1, "L")), np.ascontiguousarray(rgb), "sen12")

        found.append(LazyPair(s1.stem, load))
    if not found:
        raise FileNotFoundError(
            f"No SEN1-2 pairs (ROIs*/s1_*/*.png with a matching s2_* file) under '{base}'."
        )
    return found


@dataclass(frozen=True)
class GeoTiffOptions:
    sar_kind: str = "intensity"
    sar_band: int = 1
    rgb_bands: tuple[int, int, int] = (1, 2, 3)
    optical_scale: float = 1.0 / 255.0


def geotiff_pairs(
    root: str | os.PathLike[str], window: int, opts: GeoTiffOptions = GeoTiffOptions()
) -> list[LazyPair]:
    """Windows of ``window`` px of every ``<root>/sar/<name>.tif`` / ``<root>/optical/<name>.tif`` pair."""
    from engine.raster_io import inspect_raster, open_raster, read_window
    from engine.tiling import Window

    base = Path(root)
    found = []
    for sar_path in sorted((base / "sar").glob("*.tif")):
        opt_path = base / "optical" / sar_path.name
        if not opt_path.is_file():
            continue
        sar_info, opt_info = (
            inspect_raster(sar_path, opts.sar_band),
            inspect_raster(opt_path, list(opts.rgb_bands)),
        )
        if sar_info.shape != opt_info.shape:
            raise ValueError(
                f"'{sar_path}' is {sar_info.shape} px but '{opt_path}' is {opt_info.shape}; "
                "pairs must be co-registered on the same grid."
            )
        height, width = sar_info.shape
        for r in range(0, height - window + 1, window):
            for c in range(0, width - window + 1, window):

                def load(
                    sp: Path = sar_path,
                    op: Path = opt_path,
                    r: int = r,
                    c: int = c,
                    nodata: float | None = sar_info.nodata,
                ) -> Pair:
                    win = Window(r, c, window, window)
                    with open_raster(sp) as src:
                        raw = read_window(src, [opts.sar_band], win, fill=np.nan)[0]
                    with open_raster(op) as src:
                        opt = read_window(src, list(opts.rgb_bands), win, fill=np.nan)
                    db, _valid = to_model_domain(raw, NORMALISATION, nodata, opts.sar_kind)
                    rgb = np.clip(np.nan_to_num(opt * opts.optical_scale), 0.0, 1.0).astype(np.float32)
                    return Pair(f"{sp.stem}_{r}_{c}", db, rgb, "geotiff")

                found.append(LazyPair(f"{sar_path.stem}_{r}_{c}", load))
    if not found:
        raise FileNotFoundError(
            f"No sar/<name>.tif + optical/<name>.tif pairs of at least {window} px under '{base}'."
        )
    return found


# ------------------------------------------------------------------ sampling
@dataclass(frozen=True)
class DataConfig(ConfigDict):
    """Training data (plain types: stored in checkpoints)."""

    real_root: str = documented(DEFAULT_REAL_ROOT, "folder holding opt_sar_3mos/")
    use_3mos: bool = True
    held_out: tuple[str, ...] = HELD_OUT
    synthetic_pairs: int = 32
    synthetic_size: int = 512
    synthetic_first_seed: int = 0
    sen12_root: str | None = None
    geotiff_root: str | None = None
    sar_kind: str = "intensity"
    optical_scale: float = documented(
        1.0 / 255.0, "GeoTIFF optical value x this = display [0, 1] (3e-4 for S2 L2A x 10000)"
    )
    p_synthetic: float = documented(0.3, "share of synthetic samples")
    augment: bool = True


class PairSampler:
    """Random crops (with flips) from the real sources and the synthetic pairs.

    A sample comes from the synthetic pairs with probability ``p_synthetic`` (or always,
    when there is no real source), else uniformly from the real pairs.
    """

    def __init__(
        self,
        real: Sequence[Pair | LazyPair],
        synthetic: Sequence[Pair],
        cfg: DataConfig,
        crop: int,
        seed: int,
    ) -> None:
        if not real and not synthetic:
            raise ValueError(
                "No training pairs: give --real-root, --sen12-root, --geotiff-root or synthetic pairs."
            )
        self.real, self.synthetic, self.cfg, self.crop = list(real), list(synthetic), cfg, crop
        self.rng = np.random.default_rng(seed)

    def _pick(self) -> Pair:
        use_synth = self.synthetic and (not self.real or self.rng.random() < self.cfg.p_synthetic)
        pool: Sequence[Pair | LazyPair] = self.synthetic if use_synth else self.real
        item = pool[int(self.rng.integers(len(pool)))]
        return item.load() if isinstance(item, LazyPair) else item

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """One ``(1, crop, crop)`` network input and ``(3, crop, crop)`` target in ``[-1, 1]``."""
        pair = self._pick()
        h, w = pair.shape
        if h < self.crop or w < self.crop:
            raise ValueError(
                f"Pair '{pair.name}' is {h} x {w} px, smaller than the crop {self.crop}; "
                "use a smaller --crop."
            )
        r, c = int(self.rng.integers(h - self.crop + 1)), int(self.rng.integers(w - self.crop + 1))
        sl = (slice(r, r + self.crop), slice(c, c + self.crop))
        x = sar_to_network(pair.sar_db[sl])[np.newaxis]
        y = pair.rgb[(slice(None), *sl)] * 2.0 - 1.0
        if self.cfg.augment:
            if self.rng.random() < 0.5:
                x, y = x[..., ::-1], y[..., ::-1]
            if self.rng.random() < 0.5:
                x, y = x[..., ::-1, :], y[..., ::-1, :]
        return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y, dtype=np.float32)

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = zip(*(self.sample() for _ in range(n)), strict=True)
        return np.stack(xs), np.stack(ys)


def build_sources(cfg: DataConfig, crop: int) -> tuple[list[Pair | LazyPair], list[Pair], list[Pair]]:
    """(real training pairs, synthetic pairs, held-out 3MOS pairs) for ``cfg``."""
    real: list[Pair | LazyPair] = []
    held: list[Pair] = []
    if cfg.use_3mos:
        train, held = split_held_out(load_3mos(cfg.real_root), cfg.held_out)
        real.extend(train)
    if cfg.sen12_root:
        real.extend(sen12_pairs(cfg.sen12_root))
    if cfg.geotiff_root:
        real.extend(
            geotiff_pairs(
                cfg.geotiff_root,
                max(crop, 256),
                GeoTiffOptions(sar_kind=cfg.sar_kind, optical_scale=cfg.optical_scale),
            )
        )
    synth = synthetic_pairs(cfg.synthetic_pairs, cfg.synthetic_size, cfg.synthetic_first_seed)
    logger.info(
        "training pairs: %d real, %d synthetic; held out: %s",
        len(real),
        len(synth),
        ", ".join(p.name for p in held) or "none",
    )
    return real, synth, held
