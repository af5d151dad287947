"""A restoration filter fitted per scene by the encoder and applied by the decoder.

After the latents are coded, the encoder decodes its own file, fits the
point-symmetric ``(2R+1) x (2R+1)`` linear filter (plus offset) that brings the decoded image
closest to the source in the least-squares sense over the valid pixels (a
Wiener filter, the idea of the adaptive loop filters of video codecs), and
stores its coefficients in the file header. The decoder applies it to the
blended decoder output before converting to dB. It costs one more decoding
pass at encoding time and 26 integers in the header (point symmetry halves
them and cost 0.001 dB on the benchmark images); it corrects what is
systematic in the reconstruction error of this scene (blur, bias, texture the
decoder synthesises but the source does not have).

With optimised quantisation (``rdo``) the encoder may also split the pixels
into classes by their decoded value (contiguous ranges of :data:`VALUE_BINS`
bins chosen by dynamic programming, one filter each): at low rates the
least-squares restoration of dark, homogeneous areas is close to their local
mean, which gains PSNR and smooths speckle, in keeping with that option.

Both sides see the image through :class:`PaddedRows`: row blocks of the
decoded image with ``R`` rows and columns of context, mirrored at the image's
edges (``numpy.pad`` mode ``symmetric``), streamed top to bottom so that memory
holds a few rows whatever the scene's height.
"""

from __future__ import annotations

import contextlib
import json
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

logger = logging.getLogger(__name__)

RADIUS = 3
"""Half size of the filter: 7 x 7 taps (9 x 9 gained < 0.01 dB on the benchmark images)."""
COEFFICIENT_BITS = 16
"""Coefficients are stored as integers in units of ``2 ** -COEFFICIENT_BITS``."""
VALUE_BINS = 16
"""Decoded values (normalised, ``[0, 1]``) fall into this many equal bins; classes are ranges of bins."""
_FIT_CHUNK = 1 << 16
"""Pixels per block of the least-squares design matrix (bounds the fit's memory)."""


def taps(radius: int = RADIUS) -> int:
    """Number of filter taps (without the offset)."""
    return (2 * radius + 1) ** 2


def free_weights(radius: int = RADIUS) -> int:
    """Stored weights of a point-symmetric filter: one per pair of opposite taps, the centre, the offset."""
    return taps(radius) // 2 + 2


def value_bins(values: np.ndarray) -> np.ndarray:
    """The value bin (``0 .. VALUE_BINS - 1``) of decoded values (normalised; outside ``[0, 1]`` clipped)."""
    return np.clip(np.floor(np.asarray(values, np.float64) * VALUE_BINS), 0, VALUE_BINS - 1).astype(np.intp)


def _quantised(weights: Sequence[float] | np.ndarray, bits: int) -> tuple[int, ...]:
    return tuple(int(v) for v in np.rint(np.asarray(weights, np.float64) * float(1 << bits)).astype(np.int64))


@dataclass(frozen=True)
class PostFilter:
    """Point-symmetric restoration filters, one per class of decoded values.

    Each class's integer coefficients: the weights of the first half of the taps in row-major order (each
    shared with the opposite tap), the centre weight, then the offset, in units of ``2 ** -bits``.
    ``bin_classes`` gives the class of each of the :data:`VALUE_BINS` value bins.
    """

    coefficients: tuple[tuple[int, ...], ...]
    bin_classes: tuple[int, ...] = (0,) * VALUE_BINS
    radius: int = RADIUS
    bits: int = COEFFICIENT_BITS

    def __post_init__(self) -> None:
        n = free_weights(self.radius)
        if self.radius < 0 or not 0 < self.bits <= 30 or not self.coefficients:
            raise ValueError(f"A post filter needs a radius >= 0, 1..30 bits and a class (got {self.radius}, "
                             f"{self.bits}, {len(self.coefficients)} classes).")
        if any(len(c) != n for c in self.coefficients):
            raise ValueError(f"A post filter of radius {self.radius} needs {n} coefficients per class.")
        if len(self.bin_classes) != VALUE_BINS or set(self.bin_classes) != set(range(len(self.coefficients))):
            raise ValueError(f"bin_classes must map the {VALUE_BINS} value bins onto every class.")

    @classmethod
    def from_weights(cls, weights: Sequence[Sequence[float] | np.ndarray] | np.ndarray,
                     bin_classes: Sequence[int] = (0,) * VALUE_BINS, radius: int = RADIUS,
                     bits: int = COEFFICIENT_BITS) -> PostFilter:
        """Round real weights (per class: half the taps, centre, offset) to the stored integers."""
        classes = tuple(int(k) for k in bin_classes)
        return cls(tuple(_quantised(w, bits) for w in weights), classes, radius, bits)

    @classmethod
    def identity(cls, radius: int = RADIUS, bits: int = COEFFICIENT_BITS) -> PostFilter:
        return cls.from_weights([_identity_weights(radius)], radius=radius, bits=bits)

    @property
    def classes(self) -> int:
        return len(self.coefficients)

    def weights(self, k: int = 0) -> np.ndarray:
        """The real stored weights of class ``k`` (float64): half the taps, centre, offset."""
        return np.asarray(self.coefficients[k], dtype=np.float64) / float(1 << self.bits)

    def kernel(self, k: int = 0) -> np.ndarray:
        """Class ``k``'s ``taps`` real weights in row-major order (the symmetric filter written out)."""
        w = self.weights(k)
        half = taps(self.radius) // 2
        return np.concatenate([w[:half], w[half : half + 1], w[:half][::-1]])

    def to_header(self) -> dict[str, Any]:
        return {"radius": self.radius, "bits": self.bits,
                "coefficients": [list(c) for c in self.coefficients],
                "bin_classes": list(self.bin_classes)}

    @classmethod
    def from_header(cls, data: dict[str, Any]) -> PostFilter:
        coefficients, bins = data["coefficients"], data["bin_classes"]
        if not isinstance(coefficients, list) or not all(
            isinstance(c, list) and all(isinstance(v, int) for v in c) for c in coefficients
        ):
            raise ValueError("post filter coefficients must be lists of integers")
        if not isinstance(bins, list) or not all(isinstance(v, int) for v in bins):
            raise ValueError("post filter bin_classes must be a list of integers")
        return cls(tuple(tuple(c) for c in coefficients), tuple(bins), int(data["radius"]), int(data["bits"]))

    def stored_bits(self) -> float:
        """What the filter adds to a file: its compressed header entry, in bits (an estimate within a few
        bytes: the header is compressed as a whole)."""
        text = json.dumps({"post_filter": self.to_header()}, separators=(",", ":"))
        return 8.0 * len(zlib.compress(text.encode("utf-8"), 9))

    def _filtered(self, padded: np.ndarray, k: int) -> np.ndarray:
        r = self.radius
        rows, cols = padded.shape[0] - 2 * r, padded.shape[1] - 2 * r
        out = np.full((rows, cols), self.weights(k)[-1], dtype=np.float64)
        for t, weight in enumerate(self.kernel(k)):
            if weight:
                dy, dx = divmod(t, 2 * r + 1)
                out += weight * padded[dy : dy + rows, dx : dx + cols]
        return out

    def apply(self, padded: np.ndarray) -> np.ndarray:
        """Filter a block padded by ``radius`` on every side -> float32 ``[rows, cols]``."""
        if self.classes == 1:
            return self._filtered(padded, 0).astype(np.float32)
        r = self.radius
        centre = padded[r : padded.shape[0] - r, r : padded.shape[1] - r]
        pixel_class = np.asarray(self.bin_classes, dtype=np.intp)[value_bins(centre)]
        out = np.empty(centre.shape, dtype=np.float64)
        for k in range(self.classes):
            where = pixel_class == k
            if where.any():
                out[where] = self._filtered(padded, k)[where]
        return out.astype(np.float32)


def _identity_weights(radius: int = RADIUS) -> np.ndarray:
    weights = np.zeros(free_weights(radius))
    weights[-2] = 1.0
    return weights


def _mirror(index: np.ndarray, size: int) -> np.ndarray:
    """Indices outside ``[0, size)`` mirrored like ``numpy.pad(mode="symmetric")`` (any distance)."""
    period = np.mod(index, 2 * size)
    return np.where(period >= size, 2 * size - 1 - period, period)


class PaddedRows:
    """Stream an image's rows top to bottom; hand out row blocks padded by ``radius`` on every side.

    :meth:`push` takes the next rows (any number) and returns ``(top, padded)`` blocks as soon as
    their context is known; after the last row every remaining row has been returned. The blocks
    equal the corresponding rows of ``numpy.pad(image, radius, mode="symmetric")``.
    """

    def __init__(self, height: int, radius: int = RADIUS) -> None:
        self.height, self.radius = height, radius
        self._rows: np.ndarray | None = None
        self._top = 0  # image row of self._rows[0]
        self.received = 0
        self.emitted = 0

    def push(self, rows: np.ndarray) -> list[tuple[int, np.ndarray]]:
        rows = np.asarray(rows)
        if self.received + rows.shape[0] > self.height:
            raise ValueError(f"more than {self.height} rows pushed")
        self._rows = rows.copy() if self._rows is None else np.concatenate([self._rows, rows])
        self.received += rows.shape[0]
        limit = self.height if self.received == self.height else self.received - self.radius
        if limit <= self.emitted:
            return []
        assert self._rows is not None
        wanted = _mirror(np.arange(self.emitted - self.radius, limit + self.radius), self.height)
        block = self._rows[wanted - self._top]
        padded = np.pad(block, ((0, 0), (self.radius, self.radius)), mode="symmetric")
        out = [(self.emitted, padded)]
        self.emitted = limit
        keep = max(0, limit - self.radius - self._top)  # rows nobody needs any more
        self._rows = self._rows[keep:]
        self._top += keep
        return out


def folding_matrix(radius: int = RADIUS) -> np.ndarray:
    """``[taps + 1, free_weights]``: raw neighbourhood-plus-one rows times this matrix give the rows a
    point-symmetric filter's weights multiply: opposite taps summed, the centre, the constant."""
    n, half = taps(radius), taps(radius) // 2
    matrix = np.zeros((n + 1, free_weights(radius)))
    for t in range(n):
        matrix[t, min(t, n - 1 - t)] = 1.0  # opposite taps share a weight; the centre maps to ``half``
    matrix[n, half + 1] = 1.0
    return matrix


class NormalEquations:
    """Least-squares statistics of "decoded neighbourhood -> source pixel" over the valid pixels.

    With ``by_value`` they are kept per value bin of the decoded pixel (classes are unions of bins, so
    their statistics are sums); otherwise in one bin. Gathered on the raw neighbourhoods and folded to the
    point-symmetric weights when solved (cheaper than folding every pixel).
    """

    def __init__(self, radius: int = RADIUS, by_value: bool = True) -> None:
        self.radius, self.by_value = radius, by_value
        n = taps(radius) + 1
        self.bins = VALUE_BINS if by_value else 1
        self._gram = np.zeros((self.bins, n, n))
        self._cross = np.zeros((self.bins, n))
        self.energy = np.zeros(self.bins)
        self.counts = np.zeros(self.bins, dtype=np.int64)
        self._fold = folding_matrix(radius)

    @property
    def count(self) -> int:
        return int(self.counts.sum())

    def add(self, padded: np.ndarray, target: np.ndarray, valid: np.ndarray) -> None:
        """Add one block: ``padded`` decoded rows (as from :class:`PaddedRows`), the source's rows
        ``target`` and their validity ``valid`` (both ``[rows, cols]``)."""
        r, n = self.radius, taps(self.radius)
        windows = sliding_window_view(np.asarray(padded, dtype=np.float64), (2 * r + 1, 2 * r + 1))
        rows, cols = np.nonzero(valid)
        for start in range(0, rows.size, _FIT_CHUNK):
            i, j = rows[start : start + _FIT_CHUNK], cols[start : start + _FIT_CHUNK]
            design = np.empty((i.size, n + 1))
            design[:, :-1] = windows[i, j].reshape(i.size, -1)
            design[:, -1] = 1.0
            y = np.asarray(target[i, j], dtype=np.float64)
            if not self.by_value:
                self._accumulate(0, design, y)
                continue
            bins = value_bins(design[:, n // 2])  # the centre tap: the decoded pixel itself
            order = np.argsort(bins, kind="stable")
            design, y, bins = design[order], y[order], bins[order]
            edges = np.searchsorted(bins, np.arange(VALUE_BINS + 1))
            for b in range(VALUE_BINS):
                if edges[b + 1] > edges[b]:
                    self._accumulate(b, design[edges[b] : edges[b + 1]], y[edges[b] : edges[b + 1]])

    def _accumulate(self, b: int, design: np.ndarray, y: np.ndarray) -> None:
        self._gram[b] += design.T @ design
        self._cross[b] += design.T @ y
        self.energy[b] += float(y @ y)
        self.counts[b] += int(y.size)

    def _group(self, first: int, stop: int) -> tuple[np.ndarray, np.ndarray, float, int]:
        """Folded gram matrix, cross vector, target energy and pixel count of bins ``first .. stop - 1``."""
        sl = slice(first, stop)
        gram, cross = self._gram[sl].sum(axis=0), self._cross[sl].sum(axis=0)
        return (self._fold.T @ gram @ self._fold, self._fold.T @ cross, float(self.energy[sl].sum()),
                int(self.counts[sl].sum()))

    def squared_error(self, weights: np.ndarray, first: int = 0, stop: int | None = None) -> float:
        """Sum of squared errors of the filter with real ``weights`` over the added pixels of bins
        ``first .. stop - 1`` (all by default)."""
        gram, cross, energy, _ = self._group(first, self.bins if stop is None else stop)
        return float(energy - 2.0 * weights @ cross + weights @ gram @ weights)

    def _fit(self, first: int, stop: int, bits: int) -> tuple[tuple[int, ...], float]:
        """Rounded least-squares weights for bins ``first .. stop - 1`` and their squared error."""
        gram, cross, _, count = self._group(first, stop)
        weights = _identity_weights(self.radius)
        if count > free_weights(self.radius):
            ridge = 1e-9 * float(np.trace(gram)) / gram.shape[0]
            with contextlib.suppress(np.linalg.LinAlgError):  # singular: keep the identity
                weights = np.linalg.solve(gram + ridge * np.eye(gram.shape[0]), cross)
        stored = _quantised(weights, bits)
        return stored, self.squared_error(np.asarray(stored, np.float64) / float(1 << bits), first, stop)

    def best_filter(self, lam: float | None, max_classes: int = 1,
                    bits: int = COEFFICIENT_BITS) -> PostFilter | None:
        """The filter with the lowest ``lam x squared error + header bits``, from 1 to ``max_classes``
        classes (contiguous ranges of value bins, by dynamic programming), or ``None`` when no filter
        beats storing none. Without ``lam`` (a model without a training lambda): one class, kept
        whenever it lowers the error."""
        if self.count <= free_weights(self.radius):
            return None
        identity_error = self.squared_error(_identity_weights(self.radius))
        if lam is None or max_classes <= 1 or not self.by_value:
            stored, error = self._fit(0, self.bins, bits)
            single = PostFilter((stored,), radius=self.radius, bits=bits)
            if lam is None:
                return single if error < identity_error else None
            return single if lam * error + single.stored_bits() < lam * identity_error else None
        class_bits = PostFilter.identity(self.radius, bits).stored_bits()
        fits = {(a, b): self._fit(a, b, bits)
                for a in range(VALUE_BINS) for b in range(a + 1, VALUE_BINS + 1)}
        # best[k][b]: (cost, groups) of covering bins 0 .. b - 1 with k groups
        inf = (float("inf"), ())
        best: list[list[tuple[float, tuple[tuple[int, int], ...]]]] = [
            [inf] * (VALUE_BINS + 1) for _ in range(max_classes + 1)
        ]
        best[0][0] = (0.0, ())
        for k in range(1, max_classes + 1):
            for b in range(1, VALUE_BINS + 1):
                for a in range(k - 1, b):
                    cost, groups = best[k - 1][a]
                    total = cost + lam * fits[(a, b)][1] + class_bits
                    if total < best[k][b][0]:
                        best[k][b] = (total, (*groups, (a, b)))
        cost, groups = min(best[k][VALUE_BINS] for k in range(1, max_classes + 1))
        logger.debug("post filter: %d class(es) %s, cost %.6g vs %.6g without a filter", len(groups), groups,
                  cost, lam * identity_error)
        if cost >= lam * identity_error:
            return None
        bin_classes = [k for k, (a, b) in enumerate(groups) for _ in range(a, b)]
        return PostFilter(tuple(fits[g][0] for g in groups), tuple(bin_classes), self.radius, bits)
