"""The Processing-path SAR-SAR investigation: other cases than the benchmark's, dB GeoTIFFs, the summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio

from benchmarks.common import GRD_GCP_GRID
from benchmarks.investigations.keypoints_processing import NODATA, SEED, summary, write_db, write_product
from benchmarks.keypoints import GF3_SEED


def test_its_seed_is_not_the_benchmarks() -> None:
    assert SEED != GF3_SEED


def test_written_in_db_with_nodata_outside_the_valid_area(tmp_path: Path) -> None:
    amplitude = np.full((3, 4), 10.0, np.float32)
    valid = np.ones((3, 4), bool)
    valid[0, 0] = False
    write_db(tmp_path / "a.tif", amplitude, valid)
    with rasterio.open(tmp_path / "a.tif") as src:
        values = src.read(1)
        assert src.nodata == NODATA and src.crs is not None
    assert values[0, 0] == NODATA
    np.testing.assert_allclose(values[1:, :], 20.0)


def test_summary_counts_refusals_apart_from_wrong_answers() -> None:
    rows = [{"error": 0.5, "seconds": 2.0}, {"error": 1.5, "seconds": 4.0}, {"error": 7.0, "seconds": 3.0},
            {"refused": "Only 3 inliers", "seconds": 1.0}]
    assert summary(rows) == ("4 cases: answered 3, correct 2, wrong 1, corner error mean 1.00 px, "
                             "median 1.00, max 1.50; median 2.5 s per pair")


def test_a_product_side_has_two_bands_gcps_only_and_zero_borders(tmp_path: Path) -> None:
    amplitude = np.full((8, 10), 400.0, np.float32)
    valid = np.ones((8, 10), bool)
    valid[:, :2] = False
    write_product(tmp_path / "p.tif", amplitude, valid, seed=1)
    with rasterio.open(tmp_path / "p.tif") as src:
        values, gcps = src.read(), src.gcps
        assert src.count == 2 and src.dtypes[0] == "uint16" and src.nodata is None
        assert src.descriptions == ("VV", "VH") and src.transform.is_identity
    assert len(gcps[0]) == GRD_GCP_GRID**2 and gcps[1].to_epsg() == 4326
    assert (values[:, :, :2] == 0).all() and (values[0, :, 2:] == 400).all()
    assert 0 < values[1, :, 2:].mean() < 400
