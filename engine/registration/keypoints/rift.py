"""RIFT keypoints for optical-SAR pairs (Li, Hu, Ai, IEEE TIP 2020), from the paper's description.

1. Phase congruency of the prepared image (:mod:`.phase_congruency`): its minimum moment
   marks corners, its maximum moment edges. Keypoints are local maxima of each map above
   a quantile of the map's own valid values (:data:`RESPONSE_QUANTILE`, never an absolute
   level), spread over the image: the best of each cell of a :data:`SPREAD_CELLS` grid.
2. Dominant orientation of each keypoint: the peak of the histogram (modulo 180 degrees)
   of the maximum index map's orientations within :data:`ORIENTATION_RADIUS`, weighted
   by their amplitude. Under a turn of the image the MIM values shift cyclically by the
   turn; measured from the keypoint's own orientation they do not change (RIFT's
   rotation invariance, here with a continuous orientation instead of whole indices).
3. Descriptor: a :data:`PATCH` px square patch turned to that orientation, divided into
   :data:`CELLS` x :data:`CELLS` cells, each a histogram of the relative MIM orientation in
   :data:`BINS` bins (soft binning), each sample weighted by the square root of its MIM
   amplitude (flat, noisy areas count less than structures; RIFT counts them equally,
   which on the calibration split gave fewer correct matches); L2-normalised. The patch
   turned by 180 degrees is the same histogram with its cells in reverse order (the
   ``desc_turned`` twin the matcher tries). INPUT keypoints are described at
   :data:`PATCH_SCALES` patch sizes (one keypoint per size), which covers the scale range
   between the images.
"""

from __future__ import annotations

import logging

import numpy as np

from ...run import QUIET, Run
from .detect import Descriptions, Keypoints, local_maxima, usable_mask
from .phase_congruency import PhaseCongruency, phase_congruency_tiled

logger = logging.getLogger(__name__)

MODEL_ID = "rift-v1"
PATCH = 72.0
"""Side of the descriptor patch (pixels)."""
CELLS = 6
BINS = 6
SAMPLES = 36
"""Samples per side of the patch (nearest-pixel reads of the MIM)."""
PATCH_SCALES = (0.8, 1.0, 1.25)
"""Patch sizes (times :data:`PATCH`) of the INPUT's descriptors."""
ORIENTATION_RADIUS = 24.0
ORIENTATION_HIST = 36
RESPONSE_QUANTILE = 0.5
"""A keypoint's moment must exceed this quantile of the map's valid values."""
SPREAD_CELLS = 8
MARGIN = 8.0
"""Keypoints keep this distance (pixels) from invalid pixels and the border."""
MAX_KEYPOINTS = 1500
CHUNK = 256
"""Keypoints described at a time (bounds the memory of the patch samples)."""
"""Keypoints per image (corners and edges together) before the INPUT's patch sizes multiply them."""


def _spread(xy: np.ndarray, vals: np.ndarray, shape: tuple[int, int], budget: int) -> np.ndarray:
    """Indices of the best ``budget / SPREAD_CELLS^2`` points (by ``vals``) of each grid cell."""
    per_cell = max(1, int(np.ceil(budget / SPREAD_CELLS**2)))
    cx = np.minimum((xy[:, 0] / shape[1] * SPREAD_CELLS).astype(int), SPREAD_CELLS - 1)
    cy = np.minimum((xy[:, 1] / shape[0] * SPREAD_CELLS).astype(int), SPREAD_CELLS - 1)
    cell = cy * SPREAD_CELLS + cx
    order = np.lexsort((-vals, cell))
    rank = np.arange(len(order)) - np.searchsorted(cell[order], cell[order])
    return order[rank < per_cell]


def detect(pc: PhaseCongruency, valid: np.ndarray,
           budget: int = MAX_KEYPOINTS) -> tuple[np.ndarray, np.ndarray]:
    """Corner and edge keypoints (pixel-corner ``xy``, response) of the phase congruency moments."""
    usable = usable_mask(valid, MARGIN)
    found_xy, found_val = [], []
    for moment in (pc.min_moment, pc.max_moment):
        values = moment[valid]
        if values.size == 0:
            continue
        floor = float(np.quantile(values, RESPONSE_QUANTILE))
        xy, vals = local_maxima(np.where(moment > floor, moment, 0.0), usable, 20 * budget)
        rel = vals / (float(np.quantile(values, 0.99)) + 1e-12)  # comparable between the two maps
        keep = _spread(xy, rel, (valid.shape[0], valid.shape[1]), budget // 2)
        found_xy.append(xy[keep])
        found_val.append(rel[keep])
    if not found_xy:
        return np.zeros((0, 2)), np.zeros(0, np.float32)
    return np.concatenate(found_xy), np.concatenate(found_val).astype(np.float32)


def _offsets(radius: float, step: float) -> np.ndarray:
    r = np.arange(-radius, radius + 1e-9, step)
    ox, oy = np.meshgrid(r, r)
    inside = ox**2 + oy**2 <= radius**2
    return np.stack([ox[inside], oy[inside]], axis=1)


def _read(maps: tuple[np.ndarray, ...], x: np.ndarray, y: np.ndarray, valid: np.ndarray
          ) -> tuple[list[np.ndarray], np.ndarray]:
    """Nearest-pixel reads of ``maps`` at corner coordinates, and where the read is a valid pixel."""
    h, w = valid.shape
    c, r = np.floor(x).astype(int), np.floor(y).astype(int)
    inside = (c >= 0) & (c < w) & (r >= 0) & (r < h)
    c, r = np.clip(c, 0, w - 1), np.clip(r, 0, h - 1)
    return [m[r, c] for m in maps], inside & valid[r, c]


def dominant_orientation(pc: PhaseCongruency, valid: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Peak (radians, modulo pi) of each keypoint's amplitude-weighted histogram of MIM orientations."""
    off = _offsets(ORIENTATION_RADIUS, 2.0)
    gauss = np.exp(-(off**2).sum(1) / (2 * (ORIENTATION_RADIUS / 2) ** 2))
    x = xy[:, 0, None] + off[None, :, 0]
    y = xy[:, 1, None] + off[None, :, 1]
    (phi, amp), ok = _read((pc.orientation, pc.amplitude), x, y, valid)
    weight = np.where(ok, amp * gauss[None], 0.0)
    n = ORIENTATION_HIST
    pos = phi / np.pi * n
    lo = np.floor(pos).astype(int) % n
    frac = pos - np.floor(pos)
    rows = np.arange(len(xy))[:, None] * n
    hist = (np.bincount((rows + lo).ravel(), (weight * (1 - frac)).ravel(), len(xy) * n)
            + np.bincount((rows + (lo + 1) % n).ravel(), (weight * frac).ravel(), len(xy) * n)).reshape(-1, n)
    hist = (np.roll(hist, 1, 1) + 2 * hist + np.roll(hist, -1, 1)) / 4
    k = np.argmax(hist, axis=1)
    rows1 = np.arange(len(xy))
    a, b, c = hist[rows1, (k - 1) % n], hist[rows1, k], hist[rows1, (k + 1) % n]
    den = a - 2 * b + c
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.clip(np.where(den < 0, 0.5 * (a - c) / den, 0.0), -0.5, 0.5)
    return np.mod((k + 0.5 + d) * np.pi / n, np.pi)


def describe(pc: PhaseCongruency, valid: np.ndarray, xy: np.ndarray, angle: np.ndarray,
             patch: float = PATCH, run: Run = QUIET) -> np.ndarray:
    """``(n, CELLS * CELLS * BINS)`` MIM histograms of turned patches (see the module doc), computed
    :data:`CHUNK` keypoints at a time (the samples of all keypoints at once took 0.5 GB at 2000 x 2000 px),
    ``run`` checked for cancel before each chunk."""
    strength = np.sqrt(pc.amplitude)
    parts = [_describe(pc.orientation, strength, valid, xy[i:i + CHUNK], angle[i:i + CHUNK], patch)
             for i in run.steps(len(xy), CHUNK, "RIFT descriptors")]
    return np.concatenate(parts) if parts else np.zeros((0, CELLS * CELLS * BINS), np.float32)


def _describe(orientation: np.ndarray, strength: np.ndarray, valid: np.ndarray, xy: np.ndarray,
              angle: np.ndarray, patch: float) -> np.ndarray:
    n = len(xy)
    o = (np.arange(SAMPLES) - (SAMPLES - 1) / 2) * (patch / SAMPLES)
    ox, oy = (v.ravel() for v in np.meshgrid(o, o))
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x = xy[:, 0, None] + c * ox[None] - s * oy[None]
    y = xy[:, 1, None] + s * ox[None] + c * oy[None]
    (phi, weight), ok = _read((orientation, strength), x, y, valid)
    rel = np.mod(phi - angle[:, None], np.pi) / np.pi * BINS
    lo = np.floor(rel).astype(int) % BINS
    frac = rel - np.floor(rel)
    cell_side = np.arange(SAMPLES) * CELLS // SAMPLES
    cell = (cell_side[:, None] * CELLS + cell_side[None, :]).ravel()
    base = (np.arange(n)[:, None] * CELLS * CELLS + cell[None]) * BINS
    weight = np.where(ok, weight, 0.0)
    size = n * CELLS * CELLS * BINS
    hist = (np.bincount((base + lo).ravel(), (weight * (1 - frac)).ravel(), size)
            + np.bincount((base + (lo + 1) % BINS).ravel(), (weight * frac).ravel(), size)).reshape(n, -1)
    return (hist / (np.linalg.norm(hist, axis=1, keepdims=True) + 1e-12)).astype(np.float32)


def turned(desc: np.ndarray) -> np.ndarray:
    """The descriptor of the patch turned by 180 degrees: the same cells in reverse order."""
    cells = desc.reshape(len(desc), CELLS * CELLS, BINS)
    return np.ascontiguousarray(cells[:, ::-1]).reshape(desc.shape)


def extract(prepared: np.ndarray, valid: np.ndarray, role: str, run: Run,
            budget: int = MAX_KEYPOINTS) -> Keypoints:
    """RIFT keypoints of one prepared image; the INPUT's at several patch sizes, the REFERENCE's
    with their 180-degree twins (see the module doc)."""
    run.check("RIFT keypoints")
    pc = phase_congruency_tiled(prepared, valid, run=run.span(0.0, 0.8))
    run.check("RIFT keypoints")
    xy, response = detect(pc, valid, budget)
    angle = dominant_orientation(pc, valid, xy)
    scales = PATCH_SCALES if role == "INPUT" else (1.0,)
    descs = [describe(pc, valid, xy, angle, PATCH * s, run.span(0.8 + 0.2 * i / len(scales),
                                                                 0.8 + 0.2 * (i + 1) / len(scales)))
             for i, s in enumerate(scales)]
    desc = np.concatenate(descs)
    k = len(scales)
    described = Descriptions(desc, turned(desc) if role != "INPUT" else None,
                             np.zeros((len(desc), 0), np.float32), np.tile(angle, k))
    run.progress(1.0)
    return Keypoints(np.tile(xy, (k, 1)), np.tile(response, k),
                     np.repeat(np.asarray(scales, np.float32), len(xy)), described)
