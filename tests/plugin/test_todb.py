"""``sartoolbox:todb`` through processing.run: values, georeferencing, nodata and every bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import new_folder

NODATA = -9999.0


@pytest.fixture
def intensity(tmp_path: Path, write_geotiff: Callable[..., Path]) -> tuple[Path, np.ndarray]:
    """A 2-band float32 intensity raster; band 1 has every kind of invalid pixel."""
    rng = np.random.default_rng(7)
    band1 = rng.gamma(4.0, 0.05, size=(37, 53)).astype(np.float32)
    band1[0, :6] = [0.0, -1.0, np.nan, np.inf, NODATA, 1e-9]  # 1e-9 is valid but below the noise floor
    band1[1, :3] = [1.0, 10.0, 0.01]
    band2 = (band1 * 2.0).astype(np.float32)
    path = write_geotiff(tmp_path / "sigma0.tif", np.stack([band1, band2]), nodata=NODATA)
    return path, band1


def _invalid(values: np.ndarray) -> np.ndarray:
    return ~np.isfinite(values) | (values <= 0) | (values == NODATA)


def test_intensity_to_db_values_nodata_and_georeferencing(
    tmp_path: Path,
    intensity: tuple[Path, np.ndarray],
    run_algorithm: Callable[..., dict[str, Any]],
    read_geotiff: Callable[..., Any],
    same_crs: Callable[[str, str], bool],
) -> None:
    source, band1 = intensity
    output = new_folder(tmp_path) / "db.tif"
    result = run_algorithm("todb", {"INPUT": str(source), "BAND": 1, "INPUT_KIND": 0, "OUTPUT": str(output)})

    assert Path(result["OUTPUT"]) == output
    db, info = read_geotiff(output)
    _, source_info = read_geotiff(source)
    assert info["dtype"] == "Float32" and info["count"] == 1
    assert info["size"] == source_info["size"]
    assert info["transform"] == pytest.approx(source_info["transform"])
    assert same_crs(info["crs"], source_info["crs"])

    invalid = _invalid(band1)
    out_nodata = info["nodata"]
    assert out_nodata is not None
    assert np.all(db[invalid] == out_nodata)
    valid = ~invalid
    expected = np.maximum(10.0 * np.log10(band1[valid].astype(np.float64)), -40.0)
    np.testing.assert_allclose(db[valid], expected, atol=1e-4)
    assert db[1, 0] == pytest.approx(0.0, abs=1e-6) and db[1, 1] == pytest.approx(10.0, abs=1e-5)
    assert db[1, 2] == pytest.approx(-20.0, abs=1e-5)
    assert db[0, 5] == pytest.approx(-40.0)  # floored, not masked
    assert list(output.parent.iterdir()) == [output]  # no temporary file left behind


def test_amplitude_band_two_and_inverse_round_trip(
    tmp_path: Path,
    intensity: tuple[Path, np.ndarray],
    run_algorithm: Callable[..., dict[str, Any]],
    read_geotiff: Callable[..., Any],
) -> None:
    source, band1 = intensity
    folder = new_folder(tmp_path)
    run_algorithm("todb", {"INPUT": str(source), "BAND": 2, "INPUT_KIND": 1, "OUTPUT": str(folder / "a.tif")})
    db, info = read_geotiff(folder / "a.tif")
    band2 = band1 * 2.0
    valid = ~_invalid(band1)
    floor_ok = band2 > 1e-2  # 20 log10(A) above the -40 dB floor
    np.testing.assert_allclose(db[valid & floor_ok], 20.0 * np.log10(band2[valid & floor_ok]), atol=1e-4)

    run_algorithm(
        "todb",
        {
            "INPUT": str(folder / "a.tif"),
            "BAND": None,  # "not set" in the dialog: band 1
            "INPUT_KIND": 1,
            "INVERSE": True,
            "OUTPUT": str(folder / "b.tif"),
        },
    )
    linear, info_back = read_geotiff(folder / "b.tif")
    np.testing.assert_allclose(linear[valid & floor_ok], band2[valid & floor_ok], rtol=1e-4)
    assert np.all(linear[~valid] == info_back["nodata"])
    assert info_back["transform"] == pytest.approx(info["transform"])


# Bad input: a QgsProcessingException with a useful message and nothing written ---------------------


def _assert_fails(
    run_algorithm: Callable[..., dict[str, Any]], parameters: dict[str, Any], match: str, feedback: Any = None
) -> None:
    from qgis.core import QgsProcessingException

    output = Path(parameters["OUTPUT"])
    before = set(output.parent.iterdir()) if output.parent.is_dir() else set()
    with pytest.raises(QgsProcessingException, match=match):
        run_algorithm("todb", parameters, feedback=feedback)
    assert not output.exists()
    if output.parent.is_dir():
        assert set(output.parent.iterdir()) == before, "a failed run left files behind"


def test_missing_file(tmp_path: Path, run_algorithm: Callable[..., dict[str, Any]]) -> None:
    out = new_folder(tmp_path) / "x.tif"
    _assert_fails(
        run_algorithm, {"INPUT": str(tmp_path / "nope.tif"), "OUTPUT": str(out)}, r"nope\.tif' does not exist"
    )


def test_not_a_raster(tmp_path: Path, run_algorithm: Callable[..., dict[str, Any]]) -> None:
    text = tmp_path / "notes.tif"
    text.write_text("this is not a raster\n")
    out = new_folder(tmp_path) / "x.tif"
    _assert_fails(run_algorithm, {"INPUT": str(text), "OUTPUT": str(out)}, r"notes\.tif' is not a raster")


def test_all_nodata(
    tmp_path: Path, run_algorithm: Callable[..., dict[str, Any]], write_geotiff: Callable[..., Path]
) -> None:
    source = write_geotiff(tmp_path / "empty.tif", np.full((8, 9), NODATA, np.float32), nodata=NODATA)
    out = new_folder(tmp_path) / "x.tif"
    _assert_fails(run_algorithm, {"INPUT": str(source), "OUTPUT": str(out)}, r"(?i)no valid pixel")


def test_complex_slc_is_refused(
    tmp_path: Path, run_algorithm: Callable[..., dict[str, Any]], write_geotiff: Callable[..., Path]
) -> None:
    slc = (np.ones((6, 7)) + 1j * np.ones((6, 7))).astype(np.complex64)
    source = write_geotiff(tmp_path / "slc.tif", slc)
    out = new_folder(tmp_path) / "x.tif"
    _assert_fails(run_algorithm, {"INPUT": str(source), "OUTPUT": str(out)}, r"(?i)complex.*not supported")


def test_band_out_of_range(
    tmp_path: Path, intensity: tuple[Path, np.ndarray], run_algorithm: Callable[..., dict[str, Any]]
) -> None:
    out = new_folder(tmp_path) / "x.tif"
    _assert_fails(
        run_algorithm, {"INPUT": str(intensity[0]), "BAND": 3, "OUTPUT": str(out)}, r"(?i)band 3 does not exi"
    )


def test_unwritable_output(
    tmp_path: Path, intensity: tuple[Path, np.ndarray], run_algorithm: Callable[..., dict[str, Any]]
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("a file where a folder should be")
    # The parent "folder" is a regular file: no user (root included) can write below it.
    _assert_fails(
        run_algorithm,
        {"INPUT": str(intensity[0]), "OUTPUT": str(blocker / "x.tif")},
        r"(?i)writ|folder|director",
    )
    assert blocker.read_text() == "a file where a folder should be"


def test_cancel_mid_run_leaves_nothing(
    tmp_path: Path, run_algorithm: Callable[..., dict[str, Any]], write_geotiff: Callable[..., Path]
) -> None:
    from qgis.core import QgsProcessingFeedback

    big = np.random.default_rng(1).gamma(1.0, 0.1, size=(700, 150)).astype(np.float32)
    source = write_geotiff(tmp_path / "big.tif", big)
    feedback = QgsProcessingFeedback()
    progress: list[float] = []

    def on_progress(value: float) -> None:
        progress.append(value)
        if 0.0 < value < 100.0:
            feedback.cancel()  # the user presses Cancel once the run is under way

    feedback.progressChanged.connect(on_progress)
    out = new_folder(tmp_path) / "x.tif"
    _assert_fails(run_algorithm, {"INPUT": str(source), "OUTPUT": str(out)}, r"(?i)cancel", feedback=feedback)
    assert feedback.isCanceled()
    assert progress and max(progress) < 100.0
