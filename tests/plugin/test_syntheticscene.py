"""``sartoolbox:syntheticscene`` through processing.run: georeferenced, seeded, safe on bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest


def _scene(run: Callable[..., dict[str, Any]], folder: Path, **overrides: Any) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    parameters = {
        "WIDTH": 64,
        "HEIGHT": 48,
        "PIXEL_SIZE": 5.0,
        "CRS": "EPSG:32632",
        "SEED": 3,
        "LOOKS": 4,
        "SHIFT_X": 0.0,
        "SHIFT_Y": 0.0,
        "OUTPUT_SAR": str(folder / "sar.tif"),
        "OUTPUT_OPTICAL": str(folder / "optical.tif"),
    }
    parameters.update(overrides)
    return run("syntheticscene", parameters)


def test_scene_pair_is_georeferenced_and_seeded(
    tmp_path: Path,
    run_algorithm: Callable[..., dict[str, Any]],
    read_geotiff: Callable[..., Any],
    same_crs: Callable[[str, str], bool],
) -> None:
    from osgeo import osr

    result = _scene(run_algorithm, tmp_path / "a")
    sar, sar_info = read_geotiff(result["OUTPUT_SAR"])
    optical, optical_info = read_geotiff(result["OUTPUT_OPTICAL"])
    assert sar_info["size"] == optical_info["size"] == (48, 64)
    assert sar_info["count"] == 1 and optical_info["count"] == 4
    assert sar_info["transform"] == optical_info["transform"]
    assert sar_info["transform"][1] == pytest.approx(5.0) and sar_info["transform"][5] == pytest.approx(-5.0)
    utm32 = osr.SpatialReference()
    utm32.ImportFromEPSG(32632)
    assert same_crs(sar_info["crs"], utm32.ExportToWkt()) and same_crs(
        optical_info["crs"], utm32.ExportToWkt()
    )
    assert np.all(np.isfinite(sar)) and np.all(sar >= 0) and sar.std() > 0
    assert np.all((optical >= 0) & (optical <= 1))

    again = _scene(run_algorithm, tmp_path / "b")
    np.testing.assert_array_equal(read_geotiff(again["OUTPUT_SAR"])[0], sar)
    other = _scene(run_algorithm, tmp_path / "c", SEED=4)
    assert not np.array_equal(read_geotiff(other["OUTPUT_SAR"])[0], sar)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"CRS": "EPSG:4326"}, r"(?i)geographic"),
        ({"SHIFT_X": 40.0}, r"(?i)shift_x.*out of range"),
    ],
)
def test_bad_parameters_write_nothing(
    tmp_path: Path, run_algorithm: Callable[..., dict[str, Any]], overrides: dict[str, Any], match: str
) -> None:
    from qgis.core import QgsProcessingException

    folder = tmp_path / "out"
    with pytest.raises(QgsProcessingException, match=match):
        _scene(run_algorithm, folder, **overrides)
    assert list(folder.iterdir()) == []


def test_cancel_writes_nothing(tmp_path: Path, run_algorithm: Callable[..., dict[str, Any]]) -> None:
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda value: feedback.cancel() if value > 0 else None)
    folder = tmp_path / "out"
    folder.mkdir()
    parameters = {
        "WIDTH": 32,
        "HEIGHT": 32,
        "OUTPUT_SAR": str(folder / "s.tif"),
        "OUTPUT_OPTICAL": str(folder / "o.tif"),
    }
    with pytest.raises(QgsProcessingException, match=r"(?i)cancel"):
        run_algorithm("syntheticscene", parameters, feedback=feedback)
    assert list(folder.iterdir()) == []
