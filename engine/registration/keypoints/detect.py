"""Multi-scale keypoint extraction through the engine's tiled core.

For each pyramid level (scales :data:`SCALES` of the prepared image) the
detector's score map is computed tile by tile with :func:`engine.pipeline.apply_tiled`
(one float32 map per level, never a full descriptor volume); keypoints are its
local maxima (non-maximum suppression over :data:`NMS_RADIUS` pixels) at least the
detector's margin away from invalid pixels and the image border, refined to
sub-pixel by a parabola, and the best of them are kept within a budget shared by
the levels in proportion to their area. Descriptors are then computed tile by tile
for the tiles that hold keypoints, and sampled at the keypoints only.

Coordinates are full-resolution pixel-corner coordinates ``(x, y) = (col, row)``:
pixel ``(c, r)`` has its centre at ``(c + 0.5, r + 0.5)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ...pipeline import apply_tiled
from ...run import Run
from ...tiling import plan_tiles

logger = logging.getLogger(__name__)

SCALES = (1.0, 1.0 / np.sqrt(2.0), 0.5)
"""Pyramid levels: image scale of each (1 = full resolution)."""
NMS_RADIUS = 3
"""Keypoints are local maxima over a (2 r + 1)^2 neighbourhood (pixels of their level)."""
MIN_LEVEL_SIDE = 48
"""Levels smaller than this (pixels) are skipped."""

TileDescriber = Callable[[np.ndarray, np.ndarray, np.ndarray], "Descriptions"]
"""``describe(tile_image, tile_valid, points_in_tile_coordinates) -> Descriptions``."""


@dataclass
class Descriptions:
    """Per-keypoint descriptors: the primary one, its 180-degree twin (or None), a check descriptor, axes."""

    desc: np.ndarray
    desc_turned: np.ndarray | None
    check: np.ndarray
    angle: np.ndarray

    @staticmethod
    def concat(parts: list[Descriptions]) -> Descriptions:
        turned = [p.desc_turned for p in parts]
        return Descriptions(
            np.concatenate([p.desc for p in parts]),
            None if any(t is None for t in turned) else np.concatenate(turned),  # type: ignore[arg-type]
            np.concatenate([p.check for p in parts]),
            np.concatenate([p.angle for p in parts]),
        )

    def take(self, order: np.ndarray) -> Descriptions:
        return Descriptions(self.desc[order], None if self.desc_turned is None else self.desc_turned[order],
                            self.check[order], self.angle[order])


class Detector(Protocol):
    """What the extraction needs from a keypoint method (classical or a learned model)."""

    name: str
    model_id: str
    tile_size: int
    overlap: int
    margin: float  # keypoints keep this distance (level pixels) from invalid pixels and the border
    batch_size: int  # tiles per scores() call: what bounds the score pass's memory

    def scores(self, batch: np.ndarray, modality: str) -> np.ndarray:
        """``(n, 1, t, t)`` prepared tiles -> ``(n, 1, t, t)`` keypoint scores (higher is better)."""
        ...

    def tile_for(self, shape: tuple[int, int]) -> int:
        """Tile side used for an image of ``shape`` (``tile_size`` or larger for small images)."""
        ...

    def describer(self, modality: str) -> TileDescriber:
        """The per-tile descriptor function for images of ``modality`` ('sar' or 'optical')."""
        ...


@dataclass
class Keypoints:
    """Keypoints of one image (full-resolution pixel-corner coordinates) with their descriptors."""

    xy: np.ndarray  # (n, 2)
    score: np.ndarray  # (n,)
    scale: np.ndarray  # (n,) pyramid scale the keypoint was found at
    described: Descriptions

    def __len__(self) -> int:
        return len(self.xy)


def pyramid_level(image: np.ndarray, valid: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The prepared image and its validity at ``scale`` (anti-aliased, pixel-edge aligned)."""
    from scipy import ndimage

    if scale == 1.0:
        return image, valid
    smooth = ndimage.gaussian_filter(image, 0.5 * np.sqrt(1.0 / scale**2 - 1.0), mode="nearest")
    img = ndimage.zoom(smooth, scale, order=1, grid_mode=True, mode="nearest")
    ok = ndimage.zoom(valid.astype(np.float32), scale, order=1, grid_mode=True, mode="nearest") > 0.999
    return img.astype(np.float32), ok


def local_maxima(score: np.ndarray, usable: np.ndarray, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of ``score`` inside ``usable``, best ``budget`` of them: (xy corner coords, score)."""
    from scipy import ndimage

    s = np.where(usable & np.isfinite(score), score, -np.inf)
    peak = (s == ndimage.maximum_filter(s, size=2 * NMS_RADIUS + 1, mode="constant", cval=-np.inf))
    peak &= s > 0
    rows, cols = np.nonzero(peak)
    vals = s[rows, cols]
    order = np.argsort(-vals, kind="stable")[:budget]
    rows, cols, vals = rows[order], cols[order], vals[order]
    # sub-pixel: parabola through the 3 values along each axis (the margin keeps neighbours inside)
    h, w = s.shape
    r0, r1 = np.clip(rows - 1, 0, h - 1), np.clip(rows + 1, 0, h - 1)
    c0, c1 = np.clip(cols - 1, 0, w - 1), np.clip(cols + 1, 0, w - 1)
    sf = np.where(np.isfinite(s), s, 0.0)

    def offset(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        den = a - 2 * vals + b
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(den < 0, 0.5 * (a - b) / den, 0.0)
        return np.clip(d, -0.5, 0.5)

    dx = offset(sf[rows, c0], sf[rows, c1])
    dy = offset(sf[r0, cols], sf[r1, cols])
    xy = np.stack([cols + 0.5 + dx, rows + 0.5 + dy], axis=1)
    return xy, vals.astype(np.float32)


def usable_mask(valid: np.ndarray, margin: float) -> np.ndarray:
    """Pixels at least ``margin`` away from any invalid pixel and from the image border."""
    from scipy import ndimage

    padded = np.pad(valid, 1, constant_values=False)
    return ndimage.distance_transform_edt(padded)[1:-1, 1:-1] > margin


def describe_in_tiles(image: np.ndarray, valid: np.ndarray, xy: np.ndarray, describe: TileDescriber,
                      tile_size: int, overlap: int, run: Run) -> Descriptions:
    """Run ``describe`` on each tile (of the engine's tile plan) whose core holds keypoints."""
    h, w = image.shape
    order: list[np.ndarray] = []
    parts: list[Descriptions] = []
    tiles = plan_tiles(h, w, tile_size, overlap)
    col, row = np.floor(xy[:, 0]).astype(int), np.floor(xy[:, 1]).astype(int)
    for k, tile in enumerate(tiles):
        run.check("Keypoint description")
        c = tile.core
        in_core = (row >= c.row_off) & (row < c.row_end) & (col >= c.col_off) & (col < c.col_end)
        inside = np.nonzero(in_core)[0]
        if inside.size:
            r = tile.read
            pad = ((max(0, -r.row_off), max(0, r.row_end - h)), (max(0, -r.col_off), max(0, r.col_end - w)))
            sl = (slice(max(0, r.row_off), min(h, r.row_end)), slice(max(0, r.col_off), min(w, r.col_end)))
            tile_ok = np.pad(valid[sl], pad)
            tile_img = np.where(tile_ok, np.pad(image[sl], pad), np.float32(0)).astype(np.float32)
            local: np.ndarray = xy[inside] - np.array([r.col_off, r.row_off], dtype=np.float64)
            parts.append(describe(tile_img, tile_ok, local))
            order.append(inside)
        run.progress((k + 1) / len(tiles))
    if not parts:
        return describe(np.zeros((1, 1), np.float32), np.zeros((1, 1), bool), np.zeros((0, 2)))
    described = Descriptions.concat(parts)
    back = np.empty(len(xy), dtype=int)
    back[np.concatenate(order)] = np.arange(len(xy))
    return described.take(back)


def extract(image: np.ndarray, valid: np.ndarray, detector: Detector, modality: str, max_keypoints: int,
            run: Run) -> Keypoints:
    """Multi-scale keypoints of a prepared image (see the module doc)."""
    levels = [s for s in SCALES if min(image.shape) * s >= MIN_LEVEL_SIDE] or [1.0]
    area = np.array([s * s for s in levels])
    budgets = np.maximum(1, np.round(max_keypoints * area / area.sum())).astype(int)
    found: list[Keypoints] = []
    for i, (scale, budget) in enumerate(zip(levels, budgets, strict=True)):
        step = run.span(i / len(levels), (i + 1) / len(levels))
        img, ok = pyramid_level(image, valid, scale)
        masked = np.where(ok, img, np.nan).astype(np.float32)  # tiles see 0 there, as in describe_in_tiles
        half = step.span(0.0, 0.5)

        def scores(batch: np.ndarray) -> np.ndarray:
            return detector.scores(batch, modality)

        def tiled_progress(percent: float, part: Run = half) -> None:
            part.progress(percent / 100)

        tile = detector.tile_for((img.shape[0], img.shape[1]))
        score = apply_tiled(masked, scores, tile_size=tile, overlap=detector.overlap,
                            batch_size=detector.batch_size, progress=tiled_progress,
                            is_cancelled=run.is_cancelled)
        assert score is not None
        xy, vals = local_maxima(score[0], usable_mask(ok, detector.margin), int(budget))
        described = describe_in_tiles(img, ok, xy, detector.describer(modality), tile, detector.overlap,
                                      step.span(0.5, 1.0))
        factor = np.array([img.shape[1] / image.shape[1], img.shape[0] / image.shape[0]])
        found.append(Keypoints(xy / factor, vals, np.full(len(xy), scale, np.float32), described))
        logger.debug("level %.3f: %d keypoints", scale, len(xy))
    return Keypoints(
        np.concatenate([k.xy for k in found]), np.concatenate([k.score for k in found]),
        np.concatenate([k.scale for k in found]), Descriptions.concat([k.described for k in found]),
    )
