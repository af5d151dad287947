"""Check the OSdataset homography against the valid area of the warped optical image.

    make bench-osdataset-check
    python -m benchmarks.investigations.osdataset_check [--data ../shared/data/real]

``VIS.png`` is the optical image warped by ``H_opt2_12.txt`` (OpenCV convention: a
point ``p`` of the original frame lands at ``H p``, bilinear, zero outside). A
warped pixel is non-zero when its centre maps to a source coordinate inside
``(-1, size)``, so if ``H`` produced ``VIS.png`` the last valid pixel centre lies,
on average, half a pixel inside the image of the source line ``size`` (and the
first one half a pixel inside the image of ``-1``). This prints, for the bottom,
right and left edges, the mean residual of the valid area's edge from that
prediction: residuals well under a pixel mean the un-warped image is exact and
any remaining misalignment against the SAR image belongs to the dataset's own
ground truth. (8-bit rounding of faint edge pixels to 0 can move an edge inwards
by a fraction of a pixel.)
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]


def _project(h: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pts = h @ np.stack([x, y, np.ones_like(x)])
    return pts[0] / pts[2], pts[1] / pts[2]


def edge_offsets(
    valid: np.ndarray, h: np.ndarray, frame: tuple[int, int], step: int = 20,
) -> dict[str, float]:
    """Mean residual (px) of the valid area's bottom, right and left edges from ``h``'s prediction.

    ``valid``: boolean mask of the warped image; ``h``: 3x3 homography (frame -> warped image);
    ``frame``: (height, width) of the original frame. Rows/columns are sampled every ``step``
    pixels where the edge is inside the image. 0 for the homography that made the mask.
    """
    fh, fw = frame
    rows, cols = valid.shape
    t = np.linspace(-1.0, max(fh, fw), 4000)
    out: dict[str, float] = {}
    bx, by = _project(h, np.clip(t, -1.0, fw), np.full_like(t, float(fh)))
    order = np.argsort(bx)
    bx, by = bx[order], by[order]
    diffs = []
    for c in range(0, cols, step):
        predicted = float(np.interp(c, bx, by))
        if valid[:, c].any() and bx[0] <= c <= bx[-1] and 0 < predicted < rows - 1:
            diffs.append(float(np.max(np.nonzero(valid[:, c])[0])) + 0.5 - predicted)
    out["bottom"] = float(np.mean(diffs)) if diffs else float("nan")
    for name, edge_x, last in (("right", float(fw), True), ("left", -1.0, False)):
        ex, ey = _project(h, np.full_like(t, edge_x), np.clip(t, -1.0, fh))
        order = np.argsort(ey)
        ex, ey = ex[order], ey[order]
        diffs = []
        for r in range(0, rows, step):
            predicted = float(np.interp(r, ey, ex))
            if not valid[r].any() or not ey[0] <= r <= ey[-1] or not 0 < predicted < cols - 1:
                continue
            idx = np.nonzero(valid[r])[0]
            diffs.append(float(idx.max()) + 0.5 - predicted if last else float(idx.min()) - 0.5 - predicted)
        out[name] = float(np.mean(diffs)) if diffs else float("nan")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from PIL import Image

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT / ".." / "shared" / "data" / "real")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    folder = args.data / "osdataset_hscp"
    vis = np.asarray(Image.open(folder / "VIS.png").convert("L"))
    h = np.loadtxt(folder / "H_opt2_12.txt").reshape(3, 3)
    offsets = edge_offsets(vis > 0, h, (vis.shape[0], vis.shape[1]))
    for name, value in offsets.items():
        logger.info("%s edge: residual %+.2f px", name, value)
    return 0


if __name__ == "__main__":
    sys.exit(main())
