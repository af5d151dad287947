"""Strip coding with the hyperprior (:mod:`.hyperprior`): one range-coded stream, strip by strip.

Per strip of ``rows`` latent rows and the whole latent width, in this order (each group ends with
its escaped values, :mod:`.rangecoding`):

1. side information ``z_hat`` (``[Cz, ceil(rows/4), ceil(width/4)]``), channel by channel with the
   factorised ``z_table``;
2. for each slice ``k``: its (mu, log2 sigma) from the synthesis (and context) nets, the scale index
   of every symbol, then the symbols ``q`` grouped by scale index - index 0 first, within an index
   in channel-major raster order (``argsort(..., kind="stable")``) - one vectorised coder call per
   index present.

The decoder repeats the same steps with the same integer parameters. Encoder and decoder return the
strip's ``y_hat`` in fixed point (int64 ``[C, rows, width]``, ``(q << F) + mu_fixed``).
"""

from __future__ import annotations

import numpy as np

from .hyperprior import HYPER_DOWNSCALE, HyperpriorModel
from .rangecoding import SymbolDecoder, SymbolEncoder


def _groups(indices: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Symbols ordered by scale index (stable: raster order inside an index) and the count per index."""
    flat = indices.ravel()
    # a stable sort of 16-bit keys is a radix sort in numpy: linear in the symbols (S <= 4096)
    return np.argsort(flat.astype(np.int16), kind="stable"), np.bincount(flat, minlength=count)


def _side_shape(rows: int, width: int) -> tuple[int, int]:
    return -(-rows // HYPER_DOWNSCALE), -(-width // HYPER_DOWNSCALE)


class HyperStripEncoder:
    """Code strips of latents ``u = y / latent_step`` with a :class:`HyperpriorModel` into one stream."""

    def __init__(self, model: HyperpriorModel) -> None:
        self.model = model
        self._stream = SymbolEncoder()

    @property
    def escaped(self) -> int:
        return self._stream.escaped

    def add(self, u: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
        """Code the next strip ``u`` (float ``[C, rows, w]``); cells where ``keep`` (``[rows, w]`` or
        ``[1, rows, w]``) is False are coded as ``q = 0`` (they only describe nodata). Returns the
        strip's fixed-point ``y_hat``."""
        model, stream = self.model, self._stream
        u = np.asarray(u, dtype=np.float64)
        if u.ndim != 3 or u.shape[0] != model.channels:
            raise ValueError(f"latent strip must be [{model.channels}, rows, w], got {list(u.shape)}")
        _, rows, width = u.shape
        z_hat = model.side_information(u)
        for c in range(model.z_channels):
            stream.put(z_hat[c].ravel(), *model.z_table.channel_coder(c))
        stream.end_group()
        synthesised = model.synthesised(z_hat, rows, width)
        y_hat = np.zeros(u.shape, dtype=np.int64)
        frac = model.frac_bits
        drop = None if keep is None else ~np.asarray(keep, dtype=bool).reshape(rows, width)
        for k, (lo, hi) in enumerate(model.slice_bounds()):
            mu, log2_sigma = model.slice_parameters(k, synthesised, y_hat)
            q = np.rint(u[lo:hi] - mu / float(2**frac)).astype(np.int64)
            if drop is not None:
                q[:, drop] = 0
            self._put_slice(q, model.scale_indices(log2_sigma))
            y_hat[lo:hi] = (q << frac) + mu
        return y_hat

    def _put_slice(self, q: np.ndarray, indices: np.ndarray) -> None:
        pmfs = self.model.scale_pmfs
        order, counts = _groups(indices, pmfs.channels)
        ordered = q.ravel()[order]
        start = 0
        for i in np.flatnonzero(counts):
            n = int(counts[i])
            self._stream.put(ordered[start : start + n], *pmfs.channel_coder(int(i)))
            start += n
        self._stream.end_group()

    def finish(self) -> bytes:
        return self._stream.finish()


class HyperStripDecoder:
    """Decode a :class:`HyperStripEncoder` stream strip by strip (the caller knows each strip's rows).

    ``symbols``: latent values in the whole grid (with the side information, it bounds the escape
    count); ``width``: the grid width. Call :meth:`finish` after the last strip.
    """

    def __init__(self, model: HyperpriorModel, data: bytes, symbols: int, width: int) -> None:
        self.model, self.width = model, width
        side = model.z_channels * (symbols // model.channels)  # >= every strip's z cells together
        self._stream = SymbolDecoder(data, symbols + side)

    @property
    def escaped(self) -> int:
        return self._stream.escaped

    def next(self, rows: int) -> np.ndarray:
        """The next strip's fixed-point ``y_hat``: int64 ``[C, rows, width]``."""
        model, stream, width = self.model, self._stream, self.width
        hz, wz = _side_shape(rows, width)
        parts = [stream.take(hz * wz, *model.z_table.channel_coder(c)) for c in range(model.z_channels)]
        stream.end_group()
        z_hat = np.stack(parts).reshape(model.z_channels, hz, wz) if parts else np.zeros((0, hz, wz))
        synthesised = model.synthesised(z_hat, rows, width)
        y_hat = np.zeros((model.channels, rows, width), dtype=np.int64)
        for k, (lo, hi) in enumerate(model.slice_bounds()):
            mu, log2_sigma = model.slice_parameters(k, synthesised, y_hat)
            q = self._take_slice(model.scale_indices(log2_sigma))
            y_hat[lo:hi] = (q << model.frac_bits) + mu
        return y_hat

    def _take_slice(self, indices: np.ndarray) -> np.ndarray:
        pmfs = self.model.scale_pmfs
        order, counts = _groups(indices, pmfs.channels)
        parts = [self._stream.take(int(counts[i]), *pmfs.channel_coder(int(i)))
                 for i in np.flatnonzero(counts)]
        self._stream.end_group()
        q = np.empty(indices.size, dtype=np.int64)
        q[order] = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        return q.reshape(indices.shape)

    def finish(self) -> None:
        self._stream.finish()
