"""benchmarks.keypoints_memory: the SAR-SAR pair it measures (two amplitudes, own speckle each, one grid)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.keypoints_memory import Row, main, markdown_section


def test_sar_sar_pair_is_two_amplitudes_with_independent_speckle_on_one_grid(tmp_path: Path) -> None:
    import rasterio

    assert main(["--write", str(tmp_path), "128", "sar-sar"]) == 0
    with rasterio.open(tmp_path / "sar.tif") as a, rasterio.open(tmp_path / "sar_ref.tif") as b:
        assert a.shape == b.shape == (128, 128) and a.transform == b.transform and a.crs == b.crs
        inp, ref = a.read(1).astype(np.float64), b.read(1).astype(np.float64)
    assert inp.min() >= 0 and ref.min() >= 0 and inp.mean() > 0
    # the same scene, the INPUT shifted by (3, -2) px (sar[r, c] = aligned[r + 2, c - 3]); once aligned,
    # the two sides must still differ by their own speckle
    log_ratio = np.log(np.maximum(inp[:126, 3:], 1e-6) / np.maximum(ref[2:, :125], 1e-6))
    assert log_ratio.std() > 0.5  # single-look speckle on each side (shared speckle would give about 0)


def test_markdown_names_the_kind_of_pair() -> None:
    row = Row(2000, "SAR / SAR, 1-look amplitudes", "classical", 80.0, 750.0, "ok")
    text = markdown_section([row], "cmd")
    assert "| 2000 x 2000 | SAR / SAR, 1-look amplitudes | classical | 80 | 750 | ok |" in text
