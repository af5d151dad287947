"""Training views for the keypoint network: homography + speckle augmentation of image pairs.

Sources (only synthetic data and permissively licensed samples; held-out pairs never trained on):

* optical-SAR pairs: ``opt_sar_3mos/`` (Apache-2.0, co-registered to ~1 px; the same
  :data:`training.registration.data.HELD_OUT` pairs are kept out as for the registration
  model) and synthetic scenes (``engine.synthetic.generate_scene_pair``, no shift);
* single SAR images (SAR-SAR: the image against itself, independent speckle on each view):
  ``sar_single_deepdespeckling/`` (MIT), the RIFT SAR image (BSD-3), the SAR side of the
  training 3MOS pairs and the synthetic scenes' noise-free sigma0.

A sample is two ``crop x crop`` views of one source: view A an axis-aligned crop, view B a
random homography of the same area (rotation, log-uniform scale, tilt, mild perspective,
offset). SAR views get independent Gamma speckle (``looks`` uniform in 1..4) after the warp;
every view then goes through the engine's :func:`engine.registration.prepare.prepare_image`
(exactly as at inference) with the out-of-image pixels marked invalid. The ground truth is
the map from each pixel of B to its (sub-pixel) position in A.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from engine.registration.prepare import prepare_image
from training.data.pairs import DEFAULT_REAL_ROOT, read_png, split_held_out
from training.registration.data import HELD_OUT, load_opt_sar_3mos

from ..config import ConfigDict, documented

logger = logging.getLogger(__name__)

SAR, OPTICAL = 0.0, 1.0
"""Values of the network's ``modality`` input."""
SINGLE_SAR_FILES: tuple[str, ...] = (
    "sar_single_deepdespeckling/noisy_test_image_data_coordinates.png",  # MIT
    "sar_single_deepdespeckling/sar2sar_noisy.png",  # MIT
    "rift/sar-optical_pair1.jpg",  # BSD-3-style
)
"""Single SAR images (permissive licences) used for SAR-SAR views, relative to the real-data root."""


@dataclass(frozen=True)
class DataConfig(ConfigDict):
    real_root: str = documented(DEFAULT_REAL_ROOT, "folder holding opt_sar_3mos/ etc.")
    use_real: bool = True
    held_out: tuple[str, ...] = HELD_OUT
    synthetic_scenes: int = 24
    synthetic_size: int = 320
    synthetic_first_seed: int = 0
    p_sar_sar: float = documented(0.5, "share of SAR-SAR view pairs")  # the rest optical-SAR
    p_real: float = 0.5  # share of real sources within each kind
    max_rotation: float = 30.0  # degrees
    min_scale: float = 0.75
    max_scale: float = 1.33
    max_tilt: float = 1.3  # anisotropic scale along a random direction
    max_perspective: float = 0.0008  # |h20|, |h21| (per pixel of the centred crop)
    max_offset: float = 0.125  # centre offset of view B, fraction of the crop
    min_looks: float = 1.0
    max_looks: float = 4.0
    p_extra_speckle_real: float = 0.5  # real SAR already has speckle: add more only sometimes

    def __post_init__(self) -> None:
        if not 0 < self.min_scale <= self.max_scale:
            raise ValueError(f"need 0 < min_scale <= max_scale (got {self.min_scale}, {self.max_scale}).")
        if not 1 <= self.min_looks <= self.max_looks:
            raise ValueError(f"need 1 <= min_looks <= max_looks (got {self.min_looks}, {self.max_looks}).")
        if not (0 <= self.p_sar_sar <= 1 and 0 <= self.p_real <= 1):
            raise ValueError("p_sar_sar and p_real are probabilities in [0, 1].")


@dataclass(frozen=True, eq=False)
class Scene:
    """One source: SAR linear intensity ``(H, W)`` (speckled or not) and optionally an optical grey band."""

    name: str
    sar: np.ndarray
    optical: np.ndarray | None
    speckled: bool  # the SAR already carries speckle (real images)
    real: bool


# ------------------------------------------------------------------ sources
def display_png_intensity(dn: np.ndarray) -> np.ndarray:
    """An 8-bit display SAR image read as amplitude ``DN / 255`` -> intensity (DN 0 floored at 0.5)."""
    amp = np.maximum(np.asarray(dn, dtype=np.float32), 0.5) / 255.0
    return (amp * amp).astype(np.float32)


def real_pair_scenes(root: str, held_out: tuple[str, ...]) -> tuple[list[Scene], list[Scene]]:
    """(training, held-out) 3MOS pairs as scenes (optical = mean of R, G, B)."""
    train, held = split_held_out(load_opt_sar_3mos(root), held_out)

    def scene(p: Any) -> Scene:
        return Scene(p.name, display_png_intensity(p.sar), p.optical[:3].mean(axis=0), True, True)

    return [scene(p) for p in train], [scene(p) for p in held]


def single_sar_scenes(root: str) -> list[Scene]:
    """The permissively licensed single SAR images (missing files are skipped with a warning)."""
    out = []
    for rel in SINGLE_SAR_FILES:
        path = Path(root) / rel
        if not path.is_file():
            logger.warning("single SAR image %s not found; skipped", path)
            continue
        out.append(Scene(path.stem, display_png_intensity(read_png(path, "L")), None, True, True))
    return out


def synthetic_scenes(count: int, size: int, first_seed: int = 0) -> list[Scene]:
    """Synthetic scenes: noise-free sigma0 (speckled per view later) and an optical grey band."""
    from engine.synthetic import generate_scene_pair

    out = []
    for seed in range(first_seed, first_seed + count):
        pair = generate_scene_pair(size, size, seed=seed, look_direction=("east", "west")[seed % 2])
        grey = pair.optical[:3].mean(axis=0) if seed % 3 else pair.optical.mean(axis=0)
        sigma0 = pair.sigma0.astype(np.float32)
        out.append(Scene(f"synthetic_{seed}", sigma0, grey.astype(np.float32), False, False))
    return out


# ----------------------------------------------------------- augmentation
def random_homography(rng: np.random.Generator, cfg: DataConfig) -> np.ndarray:
    """3x3 map from centred view-B pixel coordinates to centred source coordinates."""
    theta = math.radians(rng.uniform(-cfg.max_rotation, cfg.max_rotation))
    scale = math.exp(rng.uniform(math.log(cfg.min_scale), math.log(cfg.max_scale)))
    tilt = rng.uniform(1.0, cfg.max_tilt)
    phi = rng.uniform(0, math.pi)
    c, s = math.cos(phi), math.sin(phi)
    rot_phi = np.array([[c, -s], [s, c]])
    tilt_m = rot_phi @ np.diag([tilt, 1.0]) @ rot_phi.T
    c, s = math.cos(theta), math.sin(theta)
    lin = np.array([[c, -s], [s, c]]) @ tilt_m / scale  # view B shows the source magnified by `scale`
    h = np.eye(3)
    h[:2, :2] = lin
    h[2, :2] = rng.uniform(-cfg.max_perspective, cfg.max_perspective, size=2)
    return h


def translation(tx: float, ty: float) -> np.ndarray:
    t = np.eye(3)
    t[0, 2], t[1, 2] = tx, ty
    return t


def apply_h(h: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(x, y)`` (any shape) through the 3x3 homography ``h``."""
    d = h[2, 0] * x + h[2, 1] * y + h[2, 2]
    return (h[0, 0] * x + h[0, 1] * y + h[0, 2]) / d, (h[1, 0] * x + h[1, 1] * y + h[1, 2]) / d


def warp(image: np.ndarray, view_to_src: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``size x size`` view (bilinear) and its valid mask; pixel centres at integer index coordinates."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    sx, sy = apply_h(view_to_src, xx, yy)
    h, w = image.shape
    valid = (sx >= 0) & (sx <= w - 1) & (sy >= 0) & (sy <= h - 1)
    out = ndimage.map_coordinates(image, [sy, sx], order=1, mode="nearest").astype(np.float32)
    return out, valid


def speckle(intensity: np.ndarray, looks: float, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative Gamma(L, 1/L) speckle (unit mean)."""
    return (intensity * rng.standard_gamma(looks, size=intensity.shape) / looks).astype(np.float32)


@dataclass
class Sample:
    """Two prepared views, their modalities, and B's pixels mapped into A (``xy_in_a``, NaN: none)."""

    a: np.ndarray  # (S, S) float32 in [-1, 1]
    b: np.ndarray
    modality_a: float
    modality_b: float
    xy_in_a: np.ndarray  # (2, S, S) float32: x then y in A of each B pixel, NaN where invalid
    kind: str  # "optical-sar" or "sar-sar"


class ViewSampler:
    """Seeded sampler of augmented view pairs."""

    def __init__(
        self, pairs: list[Scene], singles: list[Scene], cfg: DataConfig, crop: int, seed: int
    ) -> None:
        if not any(s.optical is not None for s in pairs):
            raise ValueError("No optical-SAR pairs: enable the real pairs or ask for synthetic scenes.")
        small = [s.name for s in [*pairs, *singles] if min(s.sar.shape) < crop]
        if small:
            raise ValueError(f"Sources {small[:3]} are smaller than the crop {crop}; use a smaller --crop.")
        self.pairs, self.cfg, self.crop = pairs, cfg, crop
        self.singles = singles + [s for s in pairs if s.real]  # real SAR sides also serve SAR-SAR
        self.synthetic = [s for s in pairs if not s.real]
        self.rng = np.random.default_rng(seed)

    def _pick(self, pool_real: list[Scene]) -> Scene:
        use_real = bool(pool_real) and (not self.synthetic or self.rng.random() < self.cfg.p_real)
        pool = pool_real if use_real else self.synthetic
        return pool[int(self.rng.integers(len(pool)))]

    def _sar_view(self, scene: Scene, view_to_src: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        img, valid = warp(scene.sar, view_to_src, self.crop)
        if not scene.speckled or self.rng.random() < self.cfg.p_extra_speckle_real:
            img = speckle(img, float(self.rng.uniform(self.cfg.min_looks, self.cfg.max_looks)), self.rng)
        return prepare_image(img, "intensity", valid), valid

    def _optical_view(self, scene: Scene, view_to_src: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert scene.optical is not None
        img, valid = warp(scene.optical, view_to_src, self.crop)
        gamma = float(np.exp(self.rng.uniform(np.log(0.7), np.log(1.4))))  # photometric jitter
        img = np.power(np.maximum(img, 0.0) / max(float(img.max()), 1e-6), gamma)
        return prepare_image(img, "optical", valid), valid

    def sample(self) -> Sample:
        k = self.crop
        sar_sar = self.rng.random() < self.cfg.p_sar_sar
        scene = self._pick(
            [s for s in self.singles] if sar_sar else [s for s in self.pairs if s.real]
        )
        h, w = scene.sar.shape
        r0, c0 = int(self.rng.integers(0, h - k + 1)), int(self.rng.integers(0, w - k + 1))
        a_to_src = translation(c0, r0)
        half = (k - 1) / 2.0
        off = self.rng.uniform(-self.cfg.max_offset, self.cfg.max_offset, size=2) * k
        b_to_src = (
            translation(c0 + half + off[0], r0 + half + off[1])
            @ random_homography(self.rng, self.cfg)
            @ translation(-half, -half)
        )
        if sar_sar:
            a, va = self._sar_view(scene, a_to_src)
            b, vb = self._sar_view(scene, b_to_src)
            ma = mb = SAR
        else:
            optical_b = self.rng.random() < 0.5  # which modality is the warped one
            a, va = (self._sar_view if optical_b else self._optical_view)(scene, a_to_src)
            b, vb = (self._optical_view if optical_b else self._sar_view)(scene, b_to_src)
            ma, mb = (SAR, OPTICAL) if optical_b else (OPTICAL, SAR)
        yy, xx = np.mgrid[0:k, 0:k].astype(np.float64)
        xa, ya = apply_h(np.linalg.inv(a_to_src) @ b_to_src, xx, yy)
        inside = (xa >= 0) & (xa <= k - 1) & (ya >= 0) & (ya <= k - 1)
        ok = vb & inside
        ok[inside] &= va[np.clip(np.rint(ya[inside]).astype(int), 0, k - 1),
                         np.clip(np.rint(xa[inside]).astype(int), 0, k - 1)]
        xy = np.stack([np.where(ok, xa, np.nan), np.where(ok, ya, np.nan)]).astype(np.float32)
        return Sample(a, b, ma, mb, xy, "sar-sar" if sar_sar else "optical-sar")

    def batch(self, n: int) -> dict[str, np.ndarray]:
        """``n`` samples stacked: ``a``, ``b`` ``(n, 1, S, S)``, ``modality_a/b`` ``(n, 1)``, ``xy_in_a``."""
        items = [self.sample() for _ in range(n)]
        return {
            "a": np.stack([s.a for s in items])[:, None],
            "b": np.stack([s.b for s in items])[:, None],
            "modality_a": np.array([[s.modality_a] for s in items], np.float32),
            "modality_b": np.array([[s.modality_b] for s in items], np.float32),
            "xy_in_a": np.stack([s.xy_in_a for s in items]),
        }


def build_sampler(cfg: DataConfig, crop: int, seed: int) -> ViewSampler:
    """The training sampler: real training pairs + single SAR images (if ``use_real``) + synthetic scenes."""
    pairs: list[Scene] = []
    singles: list[Scene] = []
    if cfg.use_real:
        train, held = real_pair_scenes(cfg.real_root, cfg.held_out)
        pairs += train
        singles += single_sar_scenes(cfg.real_root)
        logger.info(
            "real: %d training pairs, %d single SAR images; held out: %s",
            len(train), len(singles), ", ".join(s.name for s in held),
        )
    if cfg.synthetic_scenes > 0:
        pairs += synthetic_scenes(cfg.synthetic_scenes, cfg.synthetic_size, cfg.synthetic_first_seed)
    return ViewSampler(pairs, singles, cfg, crop, seed)
