"""``sartoolbox:coregister`` and ``sartoolbox:applytransform`` through processing.run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, tuple[float, float]]:
    from engine.synthetic import write_scene_pair

    d = tmp_path_factory.mktemp("coreg")
    files = write_scene_pair(
        d / "sar.tif", d / "opt.tif", width=160, height=160, seed=5, shift_x=3.6, shift_y=-2.2
    )
    return files.sar_path, files.optical_path, (-3.6, 2.2)


@pytest.fixture
def coregister_pair(
    tmp_path: Path, pair: tuple[Path, Path, tuple[float, float]], run_algorithm: Callable[..., dict[str, Any]]
) -> Callable[..., dict[str, Any]]:
    """Runs ``coregister`` of the pair's SAR onto its optical image into ``tmp_path/out.tif``."""
    inp, ref, _ = pair

    def run(**parameters: Any) -> dict[str, Any]:
        rasters = {"INPUT": str(inp), "REFERENCE": str(ref), "OUTPUT": str(tmp_path / "out.tif")}
        return run_algorithm("coregister", {**rasters, **parameters})

    return run


def test_coregister_global_with_every_output(
    tmp_path: Path,
    pair: tuple[Path, Path, tuple[float, float]],
    run_algorithm: Callable[..., dict[str, Any]],
    read_geotiff: Callable[..., Any],
) -> None:
    inp, ref, (tx, ty) = pair
    params = {
        "INPUT": str(inp),
        "REFERENCE": str(ref),
        "METHOD": 1,
        "MODE": 0,
        "MAX_SHIFT": 12,
        "OUTPUT": str(tmp_path / "out.tif"),
        "TIEPOINTS": str(tmp_path / "tp.gpkg"),
        "GCP_FILE": str(tmp_path / "out.points"),
        "REPORT": str(tmp_path / "r.json"),
        "CHECKERBOARD": str(tmp_path / "c.tif"),
    }
    res = run_algorithm("coregister", params)
    # plumbing test on a tiny scene: accuracy is tested in tests/engine
    assert abs(res["SHIFT_X"] - tx) < 1.0 and abs(res["SHIFT_Y"] - ty) < 1.0
    assert res["N_POINTS"] == 1 and res["RMSE"] is None  # one window: no redundant point, no RMSE
    report = json.loads(Path(res["REPORT"]).read_text())
    assert res["CONFIDENCE"] == pytest.approx(report["confidence"]["distinctness"])  # issue 27
    assert res["CONFIDENCE"] >= report["confidence"]["min_distinctness"]
    for key in ("OUTPUT", "TIEPOINTS", "GCP_FILE", "REPORT", "CHECKERBOARD"):
        assert Path(res[key]).exists(), key
    out, info = read_geotiff(res["OUTPUT"])
    src, src_info = read_geotiff(inp)
    np.testing.assert_array_equal(out, src)  # shift without resampling keeps the pixels
    assert info["transform"][0] == pytest.approx(src_info["transform"][0] + 10 * res["SHIFT_X"])

    applied = run_algorithm(
        "applytransform", {"SOURCE": res["REPORT"], "INPUT": str(inp), "OUTPUT": str(tmp_path / "again.tif")}
    )
    _, again = read_geotiff(applied["OUTPUT"])
    np.testing.assert_allclose(again["transform"], info["transform"])


def test_coregister_local_affine(
    pair: tuple[Path, Path, tuple[float, float]], coregister_pair: Callable[..., dict[str, Any]]
) -> None:
    _, _, (tx, ty) = pair
    res = coregister_pair(
        METHOD=1, MODE=1, GRID_SPACING=32, WINDOW=64, MAX_SHIFT=8, TRANSFORM=1, RESAMPLE=True
    )
    assert res["N_POINTS"] >= 4 and res["RMSE"] < 1.5
    assert abs(res["SHIFT_X"] - tx) < 1.0 and abs(res["SHIFT_Y"] - ty) < 1.0


def test_deep_method_with_the_bundled_model(
    tmp_path: Path, pair: tuple[Path, Path, tuple[float, float]],
    coregister_pair: Callable[..., dict[str, Any]],
) -> None:
    from engine.registration.shift.deep import find_embed_model
    from engine.runtime import read_metadata

    model = find_embed_model()
    if model is None:
        pytest.skip("no registration model is bundled")
    _, _, (tx, ty) = pair
    res = coregister_pair(METHOD=0, MAX_SHIFT=12, REPORT=str(tmp_path / "r.json"))
    assert abs(res["SHIFT_X"] - tx) < 1.5 and abs(res["SHIFT_Y"] - ty) < 1.5
    report = json.loads(Path(res["REPORT"]).read_text())
    assert report["method"] == "deep" and report["model_id"] == read_metadata(model).model_id


def test_bad_input_becomes_processing_exception(
    tmp_path: Path, write_geotiff: Callable[..., Path], run_algorithm: Callable[..., dict[str, Any]]
) -> None:
    from qgis.core import QgsProcessingException

    rng = np.random.default_rng(0)
    a = write_geotiff(tmp_path / "a.tif", rng.random((64, 64)).astype(np.float32))
    b = write_geotiff(
        tmp_path / "b.tif", rng.random((64, 64)).astype(np.float32), origin=(900000.0, 5000000.0)
    )
    with pytest.raises(QgsProcessingException, match="do not overlap"):
        run_algorithm(
            "coregister",
            {"INPUT": str(a), "REFERENCE": str(b), "METHOD": 1, "OUTPUT": str(tmp_path / "out.tif")},
        )
    assert not (tmp_path / "out.tif").exists()


def _png(path: Path, image: np.ndarray) -> Path:
    """A plain 8-bit PNG: no CRS, no geotransform, no world file."""
    from osgeo import gdal

    mem = gdal.GetDriverByName("MEM").Create("", image.shape[1], image.shape[0], 1, gdal.GDT_Byte)
    mem.GetRasterBand(1).WriteArray(image)
    gdal.GetDriverByName("PNG").CreateCopy(str(path), mem)
    return path


def test_non_georeferenced_pair_lands_where_qgis_shows_the_input(
    tmp_path: Path, run_algorithm: Callable[..., dict[str, Any]]
) -> None:
    """Issue 15 finding 7: two PNGs; the corrected raster and the .points file in QGIS's frame."""
    from qgis.core import QgsRasterLayer

    from engine.synthetic import generate_scene_pair

    pair = generate_scene_pair(160, 160, seed=5, shift_x=5.0, shift_y=-3.0)

    def to8(a: np.ndarray) -> np.ndarray:
        b = np.log(np.maximum(a, 1e-6))
        lo, hi = np.percentile(b, [1, 99])
        return (np.clip((b - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)

    inp = _png(tmp_path / "sar.png", to8(pair.sar))
    ref = _png(tmp_path / "ref.png", to8(pair.sigma0_aligned))
    res = run_algorithm(
        "coregister",
        {
            "INPUT": str(inp),
            "REFERENCE": str(ref),
            "METHOD": 1,
            "MAX_SHIFT": 16,
            "OUTPUT": str(tmp_path / "out.tif"),
            "GCP_FILE": str(tmp_path / "out.points"),
            "MODE": 1,
            "GRID_SPACING": 32,
            "WINDOW": 64,
        },
    )
    assert abs(res["SHIFT_X"] + 5.0) < 1.0 and abs(res["SHIFT_Y"] - 3.0) < 1.0
    shown = QgsRasterLayer(str(inp), "input")
    corrected = QgsRasterLayer(res["OUTPUT"], "corrected")
    assert shown.isValid() and corrected.isValid()
    a, b = shown.extent(), corrected.extent()
    assert (a.xMinimum(), a.yMaximum(), a.yMinimum()) == (0.0, 0.0, -160.0)  # how QGIS shows a PNG
    # the corrected raster is the input moved by the shift (right = +x, down = -y), not flipped
    assert b.width() == pytest.approx(160.0) and b.height() == pytest.approx(160.0)
    assert b.xMinimum() == pytest.approx(a.xMinimum() + res["SHIFT_X"], abs=1e-6)
    assert b.yMaximum() == pytest.approx(a.yMaximum() - res["SHIFT_Y"], abs=1e-6)
    # .points: map coordinates in the same frame (y negative), pixel y negative as the Georeferencer writes
    lines = Path(res["GCP_FILE"]).read_text().splitlines()[1:]
    rows = np.array([[float(v) for v in line.split(",")] for line in lines])
    assert (rows[:, 1] < 0).all() and (rows[:, 3] < 0).all()
    np.testing.assert_allclose(np.median(rows[:, 0] - rows[:, 2]), res["SHIFT_X"], atol=1.0)
    np.testing.assert_allclose(np.median(rows[:, 1] - rows[:, 3]), -res["SHIFT_Y"], atol=1.0)


def test_input_equal_to_reference_is_refused(
    tmp_path: Path, write_geotiff: Callable[..., Path], run_algorithm: Callable[..., dict[str, Any]]
) -> None:
    from qgis.core import QgsProcessingException

    a = write_geotiff(tmp_path / "a.tif", np.random.default_rng(0).random((64, 64)).astype(np.float32))
    with pytest.raises(QgsProcessingException, match="same raster"):
        run_algorithm("coregister", {"INPUT": str(a), "REFERENCE": str(a), "OUTPUT": str(tmp_path / "o.tif")})
    assert not (tmp_path / "o.tif").exists()
