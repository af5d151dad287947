"""``sartoolbox:translate`` through processing.run: output, georeferencing, help text and every bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.metadata import Task
from tests.conftest import new_folder
from tests.engine.tiny_translation import build_tiny_translation, expected_display

NODATA = -9999.0


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_translation(tmp_path_factory.mktemp("models") / "tiny.onnx")


def _sar(shape: tuple[int, int] = (40, 45)) -> np.ndarray:
    return np.random.default_rng(4).gamma(2.0, 0.05, size=shape).astype(np.float32)


def test_translate_writes_a_georeferenced_synthetic_rgb(
    tmp_path: Path,
    tiny_model: Path,
    run_algorithm: Callable[..., dict[str, Any]],
    write_geotiff: Callable[..., Path],
    same_crs: Callable[[str, str], bool],
) -> None:
    import rasterio

    sar = _sar()
    sar[0, :5] = NODATA
    source = write_geotiff(tmp_path / "sar.tif", sar, nodata=NODATA)
    output = new_folder(tmp_path) / "rgb.tif"
    result = run_algorithm(
        "translate", {"INPUT": str(source), "INPUT_KIND": 0, "MODEL": str(tiny_model), "OUTPUT": str(output)}
    )
    assert Path(result["OUTPUT"]) == output and result["VALID_PIXELS"] == sar.size - 5
    with rasterio.open(output) as ds, rasterio.open(source) as src:
        assert ds.count == 3 and ds.dtypes[0] == "uint8" and ds.nodata == 0
        assert ds.transform == src.transform and same_crs(ds.crs.to_wkt(), src.crs.to_wkt())
        data = ds.read()
        assert ds.tags()["SAR_TOOLBOX_SYNTHETIC_IMAGERY"] == "true"
    assert (data[:, 0, :5] == 0).all()
    want = np.clip(np.rint(expected_display(sar) * 255), 1, 255)
    assert np.abs(data[:, 1:].astype(float) - want[:, 1:]).max() <= 1
    assert list(output.parent.iterdir()) == [output]


def test_help_says_it_is_a_synthetic_rendering(sar_provider: Any) -> None:
    alg = sar_provider.algorithm("translate")
    assert alg is not None
    assert "synthetic rendering, not a measurement" in alg.shortHelpString()
    names = {p.name() for p in alg.parameterDefinitions()}
    assert {"INPUT", "BAND", "INPUT_KIND", "MODEL", "OUTPUT"} <= names


def _assert_fails(
    run_algorithm: Callable[..., dict[str, Any]], parameters: dict[str, Any], match: str
) -> None:
    from qgis.core import QgsProcessingException

    output = Path(parameters["OUTPUT"])
    with pytest.raises(QgsProcessingException, match=match):
        run_algorithm("translate", parameters)
    assert list(output.parent.iterdir()) == [], "a failed run left files behind"


@pytest.mark.parametrize(
    ("name", "data", "nodata", "match"),
    [
        ("two.tif", lambda: np.stack([_sar(), _sar()]), None, "2 bands; choose the SAR band"),
        ("slc.tif", lambda: (_sar() + 1j * _sar()).astype(np.complex64), None, "complex"),
        ("empty.tif", lambda: np.full((20, 20), NODATA, np.float32), NODATA, "no valid pixel"),
    ],
    ids=["multiband_without_band", "complex_slc", "all_nodata"],
)
def test_input_refused(
    tmp_path: Path,
    tiny_model: Path,
    run_algorithm: Callable[..., dict[str, Any]],
    write_geotiff: Callable[..., Path],
    name: str,
    data: Callable[[], np.ndarray],
    nodata: float | None,
    match: str,
) -> None:
    """A multi-band raster without BAND, complex SLC data, a raster without a valid pixel."""
    source = write_geotiff(tmp_path / name, data(), nodata=nodata)
    out = new_folder(tmp_path) / "x.tif"
    _assert_fails(run_algorithm, {"INPUT": str(source), "MODEL": str(tiny_model), "OUTPUT": str(out)}, match)


def test_model_of_another_task(
    tmp_path: Path, run_algorithm: Callable[..., dict[str, Any]], write_geotiff: Callable[..., Path]
) -> None:
    wrong = build_tiny_translation(tmp_path / "embed.onnx", task=Task.EMBED)
    source = write_geotiff(tmp_path / "sar.tif", _sar())
    out = new_folder(tmp_path) / "x.tif"
    _assert_fails(
        run_algorithm,
        {"INPUT": str(source), "MODEL": str(wrong), "OUTPUT": str(out)},
        "needs a 'translate' model",
    )
