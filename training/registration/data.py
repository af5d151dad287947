"""Co-registered SAR–optical pairs and the crop sampler of the registration training.

Sources (raw values; every crop goes through the engine's own
:func:`engine.registration.prepare.prepare_image`, exactly as at inference):

* the project's synthetic scenes (:func:`engine.synthetic.iter_training_pairs`,
  generated with ``max_shift=0``: co-registered; SAR converted back to linear
  intensity, optical reflectance bands R, G, B, NIR);
* ``opt_sar_3mos/`` (Apache-2.0, 15 real 256 x 256 pairs co-registered to ~1 px):
  the only real pairs used for training. :data:`HELD_OUT` pairs are never trained on.

A training sample (phase 1): around a random correspondence, a large patch of
both images and a Gaussian mask peaked at its centre; a random ``crop x crop``
window at the same location in SAR, optical and mask (mask average-pooled to the
encoder's output grid); with probability 1/2 the optical window is shifted by
``neg_min..neg_max`` pixels (a negative, ``y = 0``). With ``subpixel > 0`` a positive
pair is also misaligned by a random sub-pixel ``f`` (``|f_x|, |f_y| <= subpixel``): SAR
moved by ``+f/2`` and optical by ``-f/2`` (cubic spline), so both crops are interpolated
alike and only their relative offset is learned. Phase 2 samples a shifted pair with its
true ``(dx, dy)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.registration.prepare import prepare_image

from ..config import ConfigDict, documented
from ..data.pairs import DEFAULT_REAL_ROOT, mos_files, read_png, split_held_out

logger = logging.getLogger(__name__)

HELD_OUT: tuple[str, ...] = ("SEN_city_2", "SEN_city_6", "SEN_city_8", "SEN_water_9", "GF3_water_5")
"""opt_sar_3mos pairs kept for evaluation only (all SEN_city, one more Sentinel-1 and one Gaofen-3)."""


@dataclass(frozen=True, eq=False)
class PairImage:
    """A co-registered pair in raw values: SAR ``(H, W)``, optical bands ``(B, H, W)``."""

    name: str
    sar: np.ndarray
    optical: np.ndarray
    source: str  # "real" or "synthetic"

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.sar.shape[0]), int(self.sar.shape[1]))

    def optical_band(self, index: int) -> np.ndarray:
        """Band ``index``; ``index == B`` is the mean of the first three bands (grey)."""
        if index >= self.optical.shape[0]:
            return self.optical[: min(3, self.optical.shape[0])].mean(axis=0)
        return self.optical[index]

    @property
    def n_choices(self) -> int:
        return int(self.optical.shape[0]) + (1 if self.optical.shape[0] > 1 else 0)


@dataclass(frozen=True)
class DataConfig(ConfigDict):
    real_root: str = documented(DEFAULT_REAL_ROOT, "folder holding opt_sar_3mos/")
    use_real: bool = True
    held_out: tuple[str, ...] = HELD_OUT
    p_real: float = documented(0.5, "share of samples from real pairs")
    synthetic_pairs: int = 64
    synthetic_size: int = 256
    synthetic_first_seed: int = 0
    patch: int = documented(192, "large patch around a correspondence")
    mask_sigma: float = 0.25  # Gaussian sigma as a fraction of the patch side
    neg_min: int = 3
    neg_max: int = 24
    augment: bool = True
    subpixel: float = documented(
        0.0, "misalign positive crops by a random sub-pixel shift up to this many px (0: aligned)"
    )


# ------------------------------------------------------------------ sources
def load_opt_sar_3mos(root: str | Path) -> list[PairImage]:
    """All ``<name>_opt.png`` / ``<name>_sar.png`` pairs of ``<root>/opt_sar_3mos`` (sorted by name)."""
    pairs = []
    for name, sar_path, opt_path in mos_files(root):
        sar = read_png(sar_path, "L")
        opt = read_png(opt_path, "RGB").transpose(2, 0, 1)
        pairs.append(PairImage(name, sar, np.ascontiguousarray(opt), "real"))
    return pairs


def synthetic_pairs(
    count: int, size: int = 256, first_seed: int = 0, max_shift: float = 0.0
) -> list[PairImage]:
    """``count`` synthetic pairs (SAR as linear intensity); co-registered when ``max_shift == 0``."""
    from engine.synthetic import iter_training_pairs

    out = []
    for i, tp in enumerate(iter_training_pairs(count, size, first_seed=first_seed, max_shift=max_shift)):
        lin = np.power(10.0, tp.sar_db.astype(np.float64) / 10.0).astype(np.float32)
        out.append(PairImage(f"synthetic_{first_seed + i}", lin, tp.optical.astype(np.float32), "synthetic"))
    return out


def prepared(image: np.ndarray) -> np.ndarray:
    """The engine's preprocessing of one window (auto log for linear SAR), float32."""
    return prepare_image(image, "auto", np.ones(image.shape, dtype=bool))


def gaussian_mask(size: int, sigma: float) -> np.ndarray:
    """``size x size`` Gaussian peaked at the centre (max 1)."""
    x = np.arange(size, dtype=np.float32) - (size - 1) / 2.0
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return np.outer(g, g).astype(np.float32)


def pool_mask(mask: np.ndarray, stride: int) -> np.ndarray:
    if stride == 1:
        return mask
    h, w = mask.shape[0] // stride, mask.shape[1] // stride
    return mask[: h * stride, : w * stride].reshape(h, stride, w, stride).mean(axis=(1, 3))


# ------------------------------------------------------------------ sampler
SUBPIXEL_MARGIN = 3
"""Extra pixels read around a crop before a sub-pixel move (the spline's support), trimmed after."""


def move_subpixel(image: np.ndarray, fx: float, fy: float, margin: int) -> np.ndarray:
    """Content of ``image`` moved right/down by ``(fx, fy)`` (cubic spline), ``margin`` trimmed off."""
    from scipy import ndimage

    moved = ndimage.shift(image, (fy, fx), order=3, mode="nearest")
    return np.ascontiguousarray(moved[margin:-margin, margin:-margin], dtype=np.float32)


@dataclass
class Batch:
    """Numpy batch: ``a`` SAR crops, ``b`` optical crops ``(N, 1, c, c)``, ``y``, ``mask``, ``shift``.

    ``shift`` ``(N, 2)``: ``(dx, dy)`` such that the content at ``(x, y)`` of ``a`` lies at
    ``(x + dx, y + dy)`` in ``b`` (engine convention).
    """

    a: np.ndarray
    b: np.ndarray
    y: np.ndarray
    mask: np.ndarray
    shift: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))


class PairSampler:
    """Draws training samples from real and synthetic pairs (seeded)."""

    def __init__(
        self,
        real: list[PairImage],
        synthetic: list[PairImage],
        cfg: DataConfig,
        crop: int,
        out_stride: int,
        seed: int,
    ) -> None:
        if not real and not synthetic:
            raise ValueError("No training pairs: enable the real pairs or ask for synthetic ones.")
        small = [p.name for p in [*real, *synthetic] if min(p.shape) < crop + 2 * cfg.neg_max]
        if small:
            raise ValueError(
                f"Pairs {small[:3]} are smaller than crop + 2 * neg_max = {crop + 2 * cfg.neg_max} px; "
                "use a smaller --crop or --neg-max."
            )
        if crop % out_stride:
            raise ValueError(f"crop {crop} must be a multiple of the output stride {out_stride}.")
        self.real, self.synthetic, self.cfg = real, synthetic, cfg
        self.crop, self.stride = crop, out_stride
        self.rng = np.random.default_rng(seed)

    def _pick(self) -> PairImage:
        use_real = bool(self.real) and (not self.synthetic or self.rng.random() < self.cfg.p_real)
        pool = self.real if use_real else self.synthetic
        return pool[int(self.rng.integers(len(pool)))]

    def _negative_offset(self, r: int, c: int, h: int, w: int) -> tuple[int, int]:
        lo, hi, k = self.cfg.neg_min, self.cfg.neg_max, self.crop
        for _ in range(50):
            d = self.rng.integers(-hi, hi + 1, size=2)
            if max(abs(int(d[0])), abs(int(d[1]))) < lo:
                continue
            if 0 <= r + d[0] <= h - k and 0 <= c + d[1] <= w - k:
                return int(d[0]), int(d[1])
        # fall back: move away from the nearest border
        dr = lo if r + lo <= h - k else -lo
        dc = lo if c + lo <= w - k else -lo
        return dr, dc

    def _augment(self, *arrays: np.ndarray) -> list[np.ndarray]:
        if not self.cfg.augment:
            return list(arrays)
        k = int(self.rng.integers(4))
        flip = bool(self.rng.integers(2))
        out = []
        for a in arrays:
            a = np.rot90(a, k)
            out.append(np.ascontiguousarray(a[:, ::-1] if flip else a))
        return out

    def sample(
        self, positive: bool = False
    ) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, tuple[float, float]]:
        """One phase-1 sample: SAR crop, optical crop (prepared), label, pooled mask, ``(dx, dy)``.

        ``positive``: y = 1. ``(dx, dy)`` is the true shift of a positive (sub-pixel when
        ``cfg.subpixel > 0``, else zero); zero, and meaningless, for negatives.
        """
        p = self._pick()
        h, w = p.shape
        k = self.crop
        big = min(self.cfg.patch, h, w)
        big = max(big, k)
        pr, pc = int(self.rng.integers(0, h - big + 1)), int(self.rng.integers(0, w - big + 1))
        mask_big = gaussian_mask(big, self.cfg.mask_sigma * big)
        qr, qc = int(self.rng.integers(0, big - k + 1)), int(self.rng.integers(0, big - k + 1))
        r, c = pr + qr, pc + qc
        y = 1.0 if positive else float(self.rng.random() < 0.5)
        dr, dc = (0, 0) if y else self._negative_offset(r, c, h, w)
        band = p.optical_band(int(self.rng.integers(p.n_choices)))
        mask = mask_big[qr : qr + k, qc : qc + k]
        m = SUBPIXEL_MARGIN if y and self.cfg.subpixel > 0 else 0
        if m:  # read a margin for the spline (pairs are >= crop + 2 neg_max, so it fits after clamping)
            r, c = min(max(r, m), h - k - m), min(max(c, m), w - k - m)
        sar = prepared(p.sar[r - m : r + k + m, c - m : c + k + m])
        opt = prepared(band[r + dr - m : r + dr + k + m, c + dc - m : c + dc + k + m])
        sar, opt, mask = self._augment(sar, opt, mask)
        shift = (0.0, 0.0)
        if m:  # after augmentation, so (fx, fy) is in the frame the network sees
            fx, fy = (float(v) for v in self.rng.uniform(-self.cfg.subpixel, self.cfg.subpixel, size=2))
            sar = move_subpixel(sar, fx / 2, fy / 2, m)
            opt = move_subpixel(opt, -fx / 2, -fy / 2, m)
            shift = (-fx, -fy)  # SAR content at x sits at x - f in the optical crop
        return sar, opt, y, pool_mask(mask, self.stride), shift

    def batch(self, n: int, positives_only: bool = False) -> Batch:
        items = [self.sample(positives_only) for _ in range(n)]
        return Batch(
            a=np.stack([i[0] for i in items])[:, None].astype(np.float32),
            b=np.stack([i[1] for i in items])[:, None].astype(np.float32),
            y=np.array([i[2] for i in items], np.float32),
            mask=np.stack([i[3] for i in items]).astype(np.float32),
            shift=np.array([i[4] for i in items], np.float32).reshape(n, 2),
        )

    def shift_batch(self, n: int, radius: int) -> Batch:
        """Phase 2: ``a`` = SAR window moved by integer ``t`` (``|t| <= radius``), ``b`` = optical.

        The content at ``(x, y)`` of ``a`` lies at ``(x + t_x, y + t_y)`` in ``b`` (engine convention).
        """
        k = self.crop
        a, b, shifts = [], [], []
        for _ in range(n):
            p = self._pick()
            h, w = p.shape
            r = int(self.rng.integers(radius, h - k - radius + 1))
            c = int(self.rng.integers(radius, w - k - radius + 1))
            ty, tx = (int(v) for v in self.rng.integers(-radius, radius + 1, size=2))
            band = p.optical_band(int(self.rng.integers(p.n_choices)))
            a.append(prepared(p.sar[r + ty : r + ty + k, c + tx : c + tx + k]))
            b.append(prepared(band[r : r + k, c : c + k]))
            shifts.append((tx, ty))
        return Batch(
            a=np.stack(a)[:, None].astype(np.float32),
            b=np.stack(b)[:, None].astype(np.float32),
            y=np.ones(n, np.float32),
            mask=np.zeros((n, 0, 0), np.float32),
            shift=np.array(shifts, np.float32),
        )


def build_sources(cfg: DataConfig) -> tuple[list[PairImage], list[PairImage], list[PairImage]]:
    """(real training pairs, synthetic training pairs, real held-out pairs)."""
    real_train: list[PairImage] = []
    held: list[PairImage] = []
    if cfg.use_real:
        real_train, held = split_held_out(load_opt_sar_3mos(cfg.real_root), cfg.held_out)
        logger.info(
            "real pairs: %d for training, %d held out (%s)",
            len(real_train),
            len(held),
            ", ".join(p.name for p in held),
        )
    synth = (
        synthetic_pairs(cfg.synthetic_pairs, cfg.synthetic_size, cfg.synthetic_first_seed)
        if cfg.synthetic_pairs > 0
        else []
    )
    return real_train, synth, held
