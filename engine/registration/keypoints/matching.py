"""Descriptor matching: mutual nearest neighbours with a ratio test, a second-descriptor
agreement filter, and the guided (local search) matching of the fine stage."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .classical import check_turned
from .detect import Keypoints

logger = logging.getLogger(__name__)

RATIO = 0.95
"""Lowe's ratio test on descriptor distances (lenient: optical-SAR nearest neighbours are close)."""
CHECK_QUANTILE = 0.6
"""A match is kept when its check-descriptor similarity beats this quantile of unrelated pairs'."""
CHUNK = 2048


@dataclass(frozen=True)
class Matches:
    """Index pairs into the INPUT and REFERENCE keypoints, with their descriptor similarity."""

    ia: np.ndarray
    ib: np.ndarray
    similarity: np.ndarray

    def __len__(self) -> int:
        return len(self.ia)

    def keep(self, mask: np.ndarray) -> Matches:
        return Matches(self.ia[mask], self.ib[mask], self.similarity[mask])


def _similarities(a: np.ndarray, b: np.ndarray, b_turned: np.ndarray | None) -> np.ndarray:
    sim = a @ b.T
    if b_turned is not None:
        np.maximum(sim, a @ b_turned.T, out=sim)
    return sim


def mutual_nearest(a: Keypoints, b: Keypoints, ratio: float | None = None) -> Matches:
    """Mutual nearest neighbours (cosine similarity of L2-normalised descriptors) passing the ratio test
    (``ratio`` default :data:`RATIO`)."""
    ratio = RATIO if ratio is None else ratio
    na, nb = len(a), len(b)
    if na == 0 or nb < 2:
        return Matches(np.zeros(0, int), np.zeros(0, int), np.zeros(0, np.float32))
    da, db, dt = a.described.desc, b.described.desc, b.described.desc_turned
    best_b = np.empty(na, int)
    best_sim = np.empty(na, np.float32)
    second = np.empty(na, np.float32)
    col_best = np.full(nb, -np.inf, np.float32)
    col_arg = np.zeros(nb, int)
    for start in range(0, na, CHUNK):
        sim = _similarities(da[start:start + CHUNK], db, dt)
        top2 = np.argpartition(-sim, 1, axis=1)[:, :2]
        s2 = np.take_along_axis(sim, top2, axis=1)
        first = np.argmax(s2, axis=1)
        rows = np.arange(len(sim))
        best_b[start:start + len(sim)] = top2[rows, first]
        best_sim[start:start + len(sim)] = s2[rows, first]
        second[start:start + len(sim)] = s2[rows, 1 - first]
        cmax = sim.max(axis=0)
        better = cmax > col_best
        col_best[better] = cmax[better]
        col_arg[better] = start + np.argmax(sim[:, better], axis=0)
    ia = np.arange(na)
    mutual = col_arg[best_b] == ia
    d1 = np.sqrt(np.maximum(0.0, 2 - 2 * best_sim))
    d2 = np.sqrt(np.maximum(0.0, 2 - 2 * second))
    ok = mutual & (d1 < ratio * d2)
    return Matches(ia[ok], best_b[ok], best_sim[ok])


def check_similarity(a: Keypoints, b: Keypoints, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """Similarity of the check descriptors of pairs (the better of the two 180-degree readings)."""
    ca, cb = a.described.check[ia], b.described.check[ib]
    return np.maximum((ca * cb).sum(1), (ca * check_turned(cb)).sum(1))


def agree(a: Keypoints, b: Keypoints, matches: Matches, quantile: float = CHECK_QUANTILE,
          seed: int = 0) -> Matches:
    """Keep matches whose second (check) descriptors also agree.

    "Agree" is relative to unrelated pairs: the check similarity must exceed the
    ``quantile`` of the similarities of randomly paired keypoints of the two images.
    """
    if len(matches) == 0:
        return matches
    rng = np.random.default_rng(seed)
    n = min(4000, len(a) * len(b))
    null = check_similarity(a, b, rng.integers(0, len(a), n), rng.integers(0, len(b), n))
    threshold = float(np.quantile(null, quantile))
    return matches.keep(check_similarity(a, b, matches.ia, matches.ib) > threshold)


def guided(a: Keypoints, b: Keypoints, predicted: np.ndarray, radius: float) -> Matches:
    """Fine-stage matching: each INPUT keypoint against the REFERENCE keypoints within ``radius``
    of its predicted position (best descriptor similarity; each reference keypoint used once)."""
    from scipy.spatial import cKDTree

    if len(a) == 0 or len(b) == 0:
        return Matches(np.zeros(0, int), np.zeros(0, int), np.zeros(0, np.float32))
    finite = np.all(np.isfinite(predicted), axis=1)
    tree = cKDTree(b.xy)
    pairs_a: list[int] = []
    pairs_b: list[int] = []
    for i in np.nonzero(finite)[0]:
        near = tree.query_ball_point(predicted[i], radius)
        pairs_a.extend([i] * len(near))
        pairs_b.extend(near)
    if not pairs_a:
        return Matches(np.zeros(0, int), np.zeros(0, int), np.zeros(0, np.float32))
    pa, pb = np.array(pairs_a), np.array(pairs_b)
    da, db, dt = a.described.desc[pa], b.described.desc[pb], b.described.desc_turned
    sim = (da * db).sum(1)
    if dt is not None:
        sim = np.maximum(sim, (da * dt[pb]).sum(1))
    order = np.argsort(-sim, kind="stable")
    used_a: set[int] = set()
    used_b: set[int] = set()
    keep = []
    for k in order:
        if pa[k] not in used_a and pb[k] not in used_b:
            used_a.add(int(pa[k]))
            used_b.add(int(pb[k]))
            keep.append(k)
    sel = np.array(keep, int)
    return Matches(pa[sel], pb[sel], sim[sel].astype(np.float32))
