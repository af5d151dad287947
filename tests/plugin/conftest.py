"""Fixtures of the plugin tests: the registered provider, tiny GeoTIFFs, a qgis_process.bin runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.conftest import write_test_geotiff  # noqa: E402

QGIS_PROCESS = Path("/usr/bin/qgis_process.bin")
ORIGIN = (600000.0, 5000000.0)
PIXEL = 10.0
CRS = "EPSG:32631"


@pytest.fixture(scope="session")
def sar_provider(qgis_processing: None) -> Iterator[Any]:
    """The SAR Toolbox provider, registered in the Processing registry for the whole session."""
    from qgis.core import QgsApplication

    from sar_toolbox_plugin.provider import PROVIDER_ID, SarToolboxProvider

    registry = QgsApplication.processingRegistry()
    existing = registry.providerById(PROVIDER_ID)
    if existing is not None:
        yield existing
        return
    provider = SarToolboxProvider()
    assert registry.addProvider(provider)
    yield provider
    registry.removeProvider(provider)


@pytest.fixture
def run_algorithm(sar_provider: Any) -> Callable[..., dict[str, Any]]:
    """``run_algorithm("todb", {...}, feedback=None)`` through ``processing.run`` (raises on error)."""
    import processing
    from qgis.core import QgsProcessingFeedback

    def run(name: str, parameters: dict[str, Any], feedback: Any = None) -> dict[str, Any]:
        result: dict[str, Any] = processing.run(
            f"sartoolbox:{name}", parameters, feedback=feedback or QgsProcessingFeedback()
        )
        return result

    return run


def _recording_feedback() -> Any:
    from qgis.core import QgsProcessingFeedback

    class RecordingFeedback(QgsProcessingFeedback):
        """Keeps what it shows in the Processing log: ``messages`` as (kind, text) pairs."""

        def __init__(self) -> None:
            super().__init__()
            self.messages: list[tuple[str, str]] = []

        @property
        def lines(self) -> list[str]:
            return [text for _, text in self.messages]

        def pushInfo(self, text: str) -> None:
            self.messages.append(("info", text))
            super().pushInfo(text)

        def pushWarning(self, text: str) -> None:
            self.messages.append(("warning", text))
            super().pushWarning(text)

        def pushDebugInfo(self, text: str) -> None:
            self.messages.append(("debug", text))
            super().pushDebugInfo(text)

    return RecordingFeedback()


@pytest.fixture
def recording_feedback(qgis_app: Any) -> Callable[[], Any]:
    """``recording_feedback()``: a new QgsProcessingFeedback that records its info, warning and debug
    messages (``messages``: (kind, text) pairs; ``lines``: the texts) as it shows them."""
    return _recording_feedback


def _write_geotiff(
    path: Path,
    bands: np.ndarray,
    nodata: float | None = None,
    crs: str = CRS,
    origin: tuple[float, float] = ORIGIN,
    pixel: float = PIXEL,
) -> Path:
    """Write a (bands, rows, cols) or (rows, cols) array as a north-up GeoTIFF; return the path.

    The suite's one writer (:func:`tests.conftest.write_test_geotiff`), placed at ``origin`` with
    square ``pixel`` size in ``crs`` (an authority code or WKT).
    """
    import rasterio.crs

    transform = (pixel, 0.0, origin[0], 0.0, -pixel, origin[1])
    wkt = str(rasterio.crs.CRS.from_user_input(crs).to_wkt())
    return write_test_geotiff(path, bands, nodata=nodata, crs_wkt=wkt, transform=transform)


def _read_geotiff(path: Path | str, band: int = 1) -> tuple[np.ndarray, dict[str, Any]]:
    """Array of one band and the georeferencing (``crs`` WKT, ``transform``, ``nodata``, ``dtype``)."""
    from osgeo import gdal

    dataset = gdal.Open(str(path))
    assert dataset is not None, f"cannot open {path}"
    raster_band = dataset.GetRasterBand(band)
    info = {
        "crs": dataset.GetProjection(),
        "transform": dataset.GetGeoTransform(),
        "nodata": raster_band.GetNoDataValue(),
        "dtype": gdal.GetDataTypeName(raster_band.DataType),
        "count": dataset.RasterCount,
        "size": (dataset.RasterYSize, dataset.RasterXSize),
    }
    array = raster_band.ReadAsArray()
    dataset = None
    return array, info


def _same_crs(wkt_a: str, wkt_b: str) -> bool:
    """True when two WKT strings describe the same CRS."""
    from osgeo import osr

    a, b = osr.SpatialReference(), osr.SpatialReference()
    a.ImportFromWkt(wkt_a)
    b.ImportFromWkt(wkt_b)
    return bool(a.IsSame(b))


@pytest.fixture(scope="session")
def write_geotiff() -> Callable[..., Path]:
    """``write_geotiff(path, array, nodata=None, crs=..., origin=..., pixel=...)``."""
    return _write_geotiff


@pytest.fixture(scope="session")
def read_geotiff() -> Callable[..., tuple[np.ndarray, dict[str, Any]]]:
    """``read_geotiff(path, band=1)`` -> (array, georeferencing info)."""
    return _read_geotiff


@pytest.fixture(scope="session")
def same_crs() -> Callable[[str, str], bool]:
    """``same_crs(wkt_a, wkt_b)``: True when both describe the same CRS."""
    return _same_crs


# qgis_process.bin -------------------------------------------------------------------------------


class QgisProcess:
    """Runs ``/usr/bin/qgis_process.bin`` in a fresh profile (HOME) with a given QGIS_PLUGINPATH."""

    def __init__(self, home: Path, plugin_path: Path) -> None:
        runtime = home / "runtime"
        runtime.mkdir(parents=True, exist_ok=True)
        runtime.chmod(0o700)
        self.env = {
            "HOME": str(home),
            # QGIS's embedded Python finds its standard library through the first python3 on PATH.
            "PATH": "/usr/bin:/bin:" + os.environ.get("PATH", ""),
            "QT_QPA_PLATFORM": "offscreen",
            "QGIS_PLUGINPATH": str(plugin_path),
            "PYTHONPATH": sysconfig.get_path("purelib"),
            "XDG_RUNTIME_DIR": str(runtime),
            "LANG": "C.UTF-8",
        }

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``qgis_process.bin ARGS``; the completed process (a failure does not raise)."""
        return subprocess.run(
            [str(QGIS_PROCESS), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def enable(self, *plugins: str) -> None:
        """``plugins enable NAME`` for each plugin (writes the profile's settings)."""
        for plugin in plugins:
            completed = self("plugins", "enable", plugin)
            assert completed.returncode == 0, completed.stdout + completed.stderr

    def run_json(self, algorithm: str, **parameters: Any) -> dict[str, Any]:
        """``run ALGORITHM --json -- KEY=VALUE ...``; the ``results`` dictionary (asserts success)."""
        arguments = [f"{key}={value}" for key, value in parameters.items()]
        completed = self("run", algorithm, "--json", "--", *arguments)
        assert completed.returncode == 0, completed.stdout + completed.stderr
        start = completed.stdout.index("{")
        results: dict[str, Any] = json.loads(completed.stdout[start:])["results"]
        return results


@pytest.fixture
def make_qgis_process(tmp_path: Path) -> Callable[[Path], QgisProcess]:
    """Factory: ``make_qgis_process(plugin_path)`` -> runner with a fresh HOME under tmp_path."""
    if not QGIS_PROCESS.is_file():
        pytest.skip(f"{QGIS_PROCESS} is not installed (Debian package qgis)")

    def make(plugin_path: Path) -> QgisProcess:
        return QgisProcess(tmp_path / "home", plugin_path)

    return make


@pytest.fixture
def qgis_process(tmp_path: Path, make_qgis_process: Callable[[Path], QgisProcess]) -> QgisProcess:
    """A runner with the source plugin (linked into a fresh plugin folder) enabled."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "sar_toolbox_plugin").symlink_to(REPO_ROOT / "sar_toolbox_plugin", target_is_directory=True)
    runner = make_qgis_process(plugins)
    runner.enable("sar_toolbox_plugin")
    return runner
