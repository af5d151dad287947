"""The encoder's second pass: decode the file just coded and fit its restoration filter.

Streams the decoded image (exactly what :func:`engine.codec.decode.decompress_file` will compute
before filtering) and the source rows side by side into the filter's normal equations
(:class:`engine.codec.postfilter.NormalEquations`); memory holds one tile row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..metadata import ModelMetadata
from ..tiling import Window
from . import fileformat
from .decode import decoded_blocks
from .encode import BATCH_SIZE, default_tiling, model_input, read_tile
from .entropy import EntropyModelTable
from .postfilter import NormalEquations, PaddedRows, PostFilter

log = logging.getLogger(__name__)


def fit_post_filter(
    cf: fileformat.CompressedFile,
    decoder: Any,
    table: EntropyModelTable,
    src: Any,
    meta: ModelMetadata,
    *,
    lam: float | None,
    max_classes: int = 1,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[float], None] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
) -> PostFilter | None:
    """The restoration filter for the coded file ``cf`` of the open source raster ``src``, or ``None``
    when it does not pay for its header bytes (:meth:`engine.codec.postfilter.NormalEquations.best_filter`
    with up to ``max_classes`` classes of decoded values).

    The source is read like the encoder read it (band, nodata, input kind and dB shift from the
    file's header), the decoded image is tiled as :func:`~engine.codec.decode.decompress_file` tiles it
    by default.
    """
    header = cf.header
    stats = NormalEquations(by_value=max_classes > 1)
    rows = PaddedRows(header.height, stats.radius)
    tile, overlap = default_tiling(decoder.metadata, None, None)  # what decompress_file uses
    blocks = decoded_blocks(cf, decoder, table, tile, overlap, batch_size, progress, is_cancelled)
    for _window, values in blocks:
        for top, padded in rows.push(values):
            n = padded.shape[0] - 2 * stats.radius
            raw = read_tile(src, header.band, Window(top, 0, n, header.width))
            target, valid = model_input(raw, meta, header.source_nodata, header.input_kind, header.shift_db)
            stats.add(padded, target, valid)
    return stats.best_filter(lam, max_classes)
