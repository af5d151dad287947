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

Both sides see the image through :class:`PaddedRows`: row blocks of the
decoded image with ``R`` rows and columns of context, mirrored at the image's
edges (``numpy.pad`` mode ``symmetric``), streamed top to bottom so that memory
holds a few rows whatever the scene's height.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

log = logging.getLogger(__name__)

RADIUS = 3
"""Half size of the filter: 7 x 7 taps (9 x 9 gained < 0.01 dB on the benchmark images)."""
COEFFICIENT_BITS = 16
"""Coefficients are stored as integers in units of ``2 ** -COEFFICIENT_BITS``."""
_FIT_CHUNK = 1 << 16
"""Pixels per block of the least-squares design matrix (bounds the fit's memory)."""


def taps(radius: int = RADIUS) -> int:
    """Number of filter taps (without the offset)."""
    return (2 * radius + 1) ** 2


def free_weights(radius: int = RADIUS) -> int:
    """Stored weights of a point-symmetric filter: one per pair of opposite taps, the centre, the offset."""
    return taps(radius) // 2 + 2


def fold(windows: np.ndarray) -> np.ndarray:
    """Neighbourhoods ``[..., taps]`` (row-major) -> ``[..., free_weights - 1]``: opposite taps summed,
    the centre last (what a point-symmetric filter's weights multiply)."""
    centre = windows.shape[-1] // 2
    return np.concatenate(
        [windows[..., :centre] + windows[..., : centre : -1], windows[..., centre : centre + 1]], axis=-1
    )


@dataclass(frozen=True)
class PostFilter:
    """Integer coefficients of a point-symmetric filter: the weights of the first half of the taps in
    row-major order (each shared with the opposite tap), the centre weight, then the offset."""

    coefficients: tuple[int, ...]
    radius: int = RADIUS
    bits: int = COEFFICIENT_BITS

    def __post_init__(self) -> None:
        if self.radius < 0 or len(self.coefficients) != free_weights(self.radius) or not 0 < self.bits <= 30:
            raise ValueError(
                f"A post filter of radius {self.radius} needs {free_weights(self.radius)} coefficients, "
                f"got {len(self.coefficients)} (bits {self.bits})."
            )

    @classmethod
    def from_weights(cls, weights: Sequence[float] | np.ndarray, radius: int = RADIUS,
                     bits: int = COEFFICIENT_BITS) -> PostFilter:
        """Round real weights (half the taps, centre, offset) to the stored integers."""
        scaled = np.rint(np.asarray(weights, dtype=np.float64) * float(1 << bits)).astype(np.int64)
        return cls(tuple(int(v) for v in scaled), radius, bits)

    @classmethod
    def identity(cls, radius: int = RADIUS, bits: int = COEFFICIENT_BITS) -> PostFilter:
        weights = np.zeros(free_weights(radius))
        weights[-2] = 1.0
        return cls.from_weights(weights, radius, bits)

    @property
    def kernel(self) -> np.ndarray:
        """All ``taps`` real weights in row-major order (the symmetric filter written out)."""
        w = self.weights
        half = taps(self.radius) // 2
        return np.concatenate([w[:half], w[half : half + 1], w[:half][::-1]])

    @property
    def weights(self) -> np.ndarray:
        """The real stored weights (float64): half the taps, centre, offset."""
        return np.asarray(self.coefficients, dtype=np.float64) / float(1 << self.bits)

    def to_header(self) -> dict[str, object]:
        return {"radius": self.radius, "bits": self.bits, "coefficients": list(self.coefficients)}

    @classmethod
    def from_header(cls, data: dict[str, object]) -> PostFilter:
        coefficients = data["coefficients"]
        if not isinstance(coefficients, list) or not all(isinstance(v, int) for v in coefficients):
            raise ValueError("post filter coefficients must be a list of integers")
        return cls(tuple(coefficients), int(str(data["radius"])), int(str(data["bits"])))

    def stored_bits(self) -> float:
        """What the filter adds to a file: its compressed header entry, in bits (an estimate within a few
        bytes: the header is compressed as a whole)."""
        text = json.dumps({"post_filter": self.to_header()}, separators=(",", ":"))
        return 8.0 * len(zlib.compress(text.encode("utf-8"), 9))

    def apply(self, padded: np.ndarray) -> np.ndarray:
        """Filter a block padded by ``radius`` on every side -> float32 ``[rows, cols]``."""
        r = self.radius
        rows, cols = padded.shape[0] - 2 * r, padded.shape[1] - 2 * r
        kernel = self.kernel
        out = np.full((rows, cols), self.weights[-1], dtype=np.float64)
        for k, weight in enumerate(kernel):
            if weight:
                dy, dx = divmod(k, 2 * r + 1)
                out += weight * padded[dy : dy + rows, dx : dx + cols]
        return out.astype(np.float32)


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


class NormalEquations:
    """Least-squares statistics of "decoded neighbourhood -> source pixel" over the valid pixels."""

    def __init__(self, radius: int = RADIUS) -> None:
        self.radius = radius
        n = free_weights(radius)
        self.gram = np.zeros((n, n))
        self.cross = np.zeros(n)
        self.energy = 0.0
        self.count = 0

    def add(self, padded: np.ndarray, target: np.ndarray, valid: np.ndarray) -> None:
        """Add one block: ``padded`` decoded rows (as from :class:`PaddedRows`), the source's rows
        ``target`` and their validity ``valid`` (both ``[rows, cols]``)."""
        size = 2 * self.radius + 1
        windows = sliding_window_view(np.asarray(padded, dtype=np.float64), (size, size))
        rows, cols = np.nonzero(valid)
        for start in range(0, rows.size, _FIT_CHUNK):
            r, c = rows[start : start + _FIT_CHUNK], cols[start : start + _FIT_CHUNK]
            design = np.empty((r.size, free_weights(self.radius)))
            design[:, :-1] = fold(windows[r, c].reshape(r.size, -1))
            design[:, -1] = 1.0
            y = np.asarray(target[r, c], dtype=np.float64)
            self.gram += design.T @ design
            self.cross += design.T @ y
            self.energy += float(y @ y)
            self.count += int(r.size)

    def squared_error(self, weights: np.ndarray) -> float:
        """Sum of squared errors over the added pixels of the filter with real ``weights``."""
        return float(self.energy - 2.0 * weights @ self.cross + weights @ self.gram @ weights)

    def solve(self) -> PostFilter | None:
        """The least-squares filter (coefficients rounded as stored), or ``None`` without pixels."""
        if self.count <= free_weights(self.radius):
            return None
        ridge = 1e-9 * float(np.trace(self.gram)) / self.gram.shape[0]
        try:
            weights = np.linalg.solve(self.gram + ridge * np.eye(self.gram.shape[0]), self.cross)
        except np.linalg.LinAlgError:
            return None
        return PostFilter.from_weights(weights, self.radius)


def worth_storing(stats: NormalEquations, fitted: PostFilter, side_bits: float, lam: float | None) -> bool:
    """Whether ``fitted`` pays for its ``side_bits``: ``side_bits < lam x`` (squared error saved), the
    codec's own rate-distortion trade-off (training ``lambda``, normalised units); without ``lam``,
    whenever it lowers the error."""
    before = stats.squared_error(PostFilter.identity(stats.radius).weights)
    after = stats.squared_error(fitted.weights)
    saved = before - after
    log.debug("post filter: squared error %.6g -> %.6g over %d pixels", before, after, stats.count)
    if lam is None:
        return saved > 0
    return lam * saved > side_bits
