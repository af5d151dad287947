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
        "CHECKERBOARD": str(tmp_path / "c.png"),
    }
    res = run_algorithm("coregister", params)
    # plumbing test on a tiny scene: accuracy is tested in tests/engine
    assert abs(res["SHIFT_X"] - tx) < 1.0 and abs(res["SHIFT_Y"] - ty) < 1.0
    assert res["N_POINTS"] == 1
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
    tmp_path: Path, pair: tuple[Path, Path, tuple[float, float]], run_algorithm: Callable[..., dict[str, Any]]
) -> None:
    inp, ref, (tx, ty) = pair
    res = run_algorithm(
        "coregister",
        {
            "INPUT": str(inp),
            "REFERENCE": str(ref),
            "METHOD": 1,
            "MODE": 1,
            "GRID_SPACING": 32,
            "WINDOW": 64,
            "MAX_SHIFT": 8,
            "TRANSFORM": 1,
            "RESAMPLE": True,
            "OUTPUT": str(tmp_path / "out.tif"),
        },
    )
    assert res["N_POINTS"] >= 4 and res["RMSE"] < 1.5
    assert abs(res["SHIFT_X"] - tx) < 1.0 and abs(res["SHIFT_Y"] - ty) < 1.0


def test_deep_method_with_the_bundled_model(
    tmp_path: Path, pair: tuple[Path, Path, tuple[float, float]], run_algorithm: Callable[..., dict[str, Any]]
) -> None:
    from engine.coregistration.deep import find_embed_model
    from engine.runtime import read_metadata

    model = find_embed_model()
    if model is None:
        pytest.skip("no registration model is bundled")
    inp, ref, (tx, ty) = pair
    res = run_algorithm(
        "coregister",
        {
            "INPUT": str(inp),
            "REFERENCE": str(ref),
            "METHOD": 0,
            "MAX_SHIFT": 12,
            "OUTPUT": str(tmp_path / "out.tif"),
            "REPORT": str(tmp_path / "r.json"),
        },
    )
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
