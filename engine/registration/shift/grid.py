"""Tie-point grids: where to measure, and the measurement loop over windows.

A tie point is measured in a ``window x window`` template of the INPUT centred
on a grid node, searched in the reference over ``+-max_shift`` pixels. Nodes
whose template or search area is mostly nodata/masked are skipped, so masked
areas never produce tie points. Windows are read one at a time: memory does not
depend on the scene size.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from ...run import Run
from ...tiling import Window
from ..correlation import match
from ..features import FeatureExtractor
from ..georef import PairReader
from ..tiepoints import TiePoint

logger = logging.getLogger(__name__)

MIN_VALID_FRACTION = 0.8
"""A template (input) or its footprint in the reference needs this share of valid pixels."""

CENTRE_VALID_FRACTION = 0.95
"""The central half of a template (where the tie point sits) must be almost entirely valid."""

GLOBAL_MAX_SIDE = 1536
"""Global mode matches the whole overlap as one window up to this size; larger scenes use a sparse grid."""

GLOBAL_WINDOW = 512
GLOBAL_POINTS_PER_SIDE = 6

MIN_GLOBAL_TEMPLATE = 64
"""Global mode keeps a template of at least this many pixels per side."""

MIN_TEMPLATE_SHARE = 0.5
"""... and at least this share of the overlap's side; where the search margin leaves less, the
template is the whole overlap."""


def _axis_nodes(start: int, length: int, window: int, spacing: int) -> list[int]:
    """Template top-left offsets along one axis, centred in the usable span."""
    usable = length - window
    if usable < 0:
        return []
    n = usable // spacing + 1
    first = start + (usable - (n - 1) * spacing) // 2
    return [first + i * spacing for i in range(n)]


def plan_grid(overlap: Window, spacing: int, window: int) -> list[Window]:
    """Template windows of a regular grid inside ``overlap`` (the search margin may reach outside)."""
    rows = _axis_nodes(overlap.row_off, overlap.height, window, spacing)
    cols = _axis_nodes(overlap.col_off, overlap.width, window, spacing)
    return [Window(r, c, window, window) for r in rows for c in cols]


def global_search_limit(overlap: Window) -> int:
    """Largest search radius global mode uses on ``overlap``: half its shorter side.

    A shift larger than that leaves less than half of the template over the
    reference, which no longer identifies the scene.
    """
    return max(1, min(overlap.height, overlap.width) // 2)


def plan_global(overlap: Window, max_shift: int, reference_extent: Window | None = None) -> list[Window]:
    """Global mode: one template covering the overlap (minus the search margin), or a sparse grid.

    The margin is only taken where the reference does not extend beyond the overlap.
    """
    ext = reference_extent or overlap
    r0 = max(overlap.row_off, ext.row_off + max_shift)
    c0 = max(overlap.col_off, ext.col_off + max_shift)
    r1 = min(overlap.row_end, ext.row_end - max_shift)
    c1 = min(overlap.col_end, ext.col_end - max_shift)
    h, w = r1 - r0, c1 - c0
    min_h = max(min(MIN_GLOBAL_TEMPLATE, overlap.height), int(overlap.height * MIN_TEMPLATE_SHARE))
    min_w = max(min(MIN_GLOBAL_TEMPLATE, overlap.width), int(overlap.width * MIN_TEMPLATE_SHARE))
    # where the search margin would eat the template, keep the whole overlap and let the search
    # reach beyond the reference (read as nodata, which lowers the score there)
    if h < min_h:
        h, r0 = overlap.height, overlap.row_off
    if w < min_w:
        w, c0 = overlap.width, overlap.col_off
    if max(h, w) <= GLOBAL_MAX_SIDE:
        return [Window(r0, c0, h, w)]
    inner = Window(r0, c0, h, w)
    win = min(GLOBAL_WINDOW, h, w)
    spacing = max(win // 2, max(h - win, w - win) // GLOBAL_POINTS_PER_SIDE)
    return plan_grid(inner, spacing, win)


def default_workers() -> int:
    """Threads measuring tie points in parallel (FFT and filters release the GIL); at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def _measure_one(
    extractor: FeatureExtractor,
    tw: Window,
    timg: np.ndarray,
    tvalid: np.ndarray,
    simg: np.ndarray,
    svalid: np.ndarray,
    max_shift: int,
) -> TiePoint:
    s = max(1, int(extractor.stride))
    m = match(extractor(timg, tvalid), extractor(simg, svalid), max_shift // s)
    return TiePoint(
        x=tw.col_off + tw.width / 2,
        y=tw.row_off + tw.height / 2,
        dx=m.dx * s,
        dy=m.dy * s,
        score=m.score,
        reliability=m.reliability,
        at_limit=m.at_limit,
        distinctness=m.distinctness,
    )


def measure(
    reader: PairReader,
    extractor: FeatureExtractor,
    templates: list[Window],
    max_shift: int,
    run: Run,
    workers: int | None = None,
) -> tuple[list[TiePoint], int]:
    """Measure every template; returns the tie points and the number of skipped (masked) windows.

    Windows are read in this thread (datasets are not thread-safe) and measured by
    ``workers`` threads; at most ``2 * workers`` windows are in flight, so memory
    stays bounded whatever the number of points.
    """
    points: list[TiePoint] = []
    skipped = 0
    n = max(1, len(templates))
    done = 0
    workers = workers or default_workers()
    pending: deque[Future[TiePoint]] = deque()

    def collect(limit: int) -> None:
        nonlocal done
        while len(pending) > limit:
            points.append(run.result(pending[0], "Co-registration"))
            pending.popleft()
            done += 1
            run.progress(done / n)

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="coreg")
    try:
        for tw in templates:
            run.check("Co-registration")
            sw = Window(
                tw.row_off - max_shift,
                tw.col_off - max_shift,
                tw.height + 2 * max_shift,
                tw.width + 2 * max_shift,
            )
            timg, tvalid = reader.read_input(tw)
            simg, svalid = reader.read_reference(sw)
            core = svalid[max_shift : max_shift + tw.height, max_shift : max_shift + tw.width]
            h4, w4 = tw.height // 4, tw.width // 4
            centre_ok = tvalid[h4 : tw.height - h4, w4 : tw.width - w4].mean() >= CENTRE_VALID_FRACTION
            if tvalid.mean() < MIN_VALID_FRACTION or core.mean() < MIN_VALID_FRACTION or not centre_ok:
                skipped += 1
                done += 1
                continue
            pending.append(
                pool.submit(_measure_one, extractor, tw, timg, tvalid, simg, svalid, max_shift)
            )
            collect(2 * workers)
        collect(0)
    finally:  # on cancel or error, windows being measured finish in their threads and are dropped
        pool.shutdown(wait=False, cancel_futures=True)
    logger.info("measured %d tie points, skipped %d masked windows", len(points), skipped)
    return points, skipped
