"""Shared fixtures: tiny seeded georeferenced GeoTIFFs and an identity ONNX model."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from benchmarks.common import grd_gcps

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))



class PluginEngineIsEngine(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``sar_toolbox_plugin.engine[.x]`` is ``engine[.x]``: one copy of every engine module per test run.

    ``sar_toolbox_plugin/engine`` links to ``engine/`` so that the plugin zip carries the engine under
    the plugin's name (no clash with another plugin's ``engine``). Imported both ways, every engine
    class would exist twice and an error raised by one copy would not be an instance of the other's.
    """

    PREFIX = "sar_toolbox_plugin.engine"

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname == self.PREFIX or fullname.startswith(self.PREFIX + "."):
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module("engine" + spec.name[len(self.PREFIX):])

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module is the engine's, already executed."""


if not any(isinstance(finder, PluginEngineIsEngine) for finder in sys.meta_path):
    sys.meta_path.insert(0, PluginEngineIsEngine())

REAL_DATA = REPO_ROOT / ".." / "shared" / "data" / "real"
TEST_EPSG = 32631
TEST_TRANSFORM = (10.0, 0.0, 600000.0, 0.0, -10.0, 5000000.0)  # affine (a, b, c, d, e, f)
#: A well-formed weights hash for the model metadata the tests build.
FAKE_SHA256 = "0" * 64
#: Step-loop settings of the tests' tiny training runs: seeded, a log line and a checkpoint every step,
#: no progress bar (``TrainConfig(..., **TINY_RUN)``).
TINY_RUN: dict[str, Any] = {"seed": 0, "log_every": 1, "ckpt_every": 1, "progress": False}


def utm31_wkt() -> str:
    """WKT of the test CRS (WGS 84 / UTM zone 31N)."""
    from rasterio.crs import CRS

    return str(CRS.from_epsg(TEST_EPSG).to_wkt())




def new_folder(parent: Path, name: str = "out") -> Path:
    """A new, empty folder ``parent/name`` (an output folder that holds only what a run writes)."""
    folder = parent / name
    folder.mkdir()
    return folder

def coregistration_outputs(folder: Path, tiepoints: bool = True) -> dict[str, Path]:
    """Every optional output of ``coregister`` in ``folder``, as its keyword arguments (without the
    tie points when not ``tiepoints``)."""
    outputs = {
        "output_path": folder / "o.tif",
        "tiepoints_path": folder / "t.gpkg",
        "gcp_path": folder / "g.points",
        "report_path": folder / "r.json",
        "checkerboard_path": folder / "c.tif",
    }
    if not tiepoints:
        del outputs["tiepoints_path"]
    return outputs

def write_test_geotiff(
    path: Path,
    data: np.ndarray,
    nodata: float | None = None,
    crs_wkt: str | None = "default",
    transform: tuple[float, ...] = TEST_TRANSFORM,
    descriptions: tuple[str, ...] = (),
    gcps: list[Any] | None = None,
) -> Path:
    """Write ``(h, w)``/``(bands, h, w)`` data as a plain GeoTIFF with rasterio (any dtype, incl. complex).

    The test suite's one GeoTIFF writer (the plugin tests' ``write_geotiff`` fixture places it by
    origin and pixel size). ``crs_wkt=None`` writes no CRS. With ``gcps`` (rasterio
    ``GroundControlPoint``s, in ``crs_wkt``) the file has those and no geotransform.
    """
    import rasterio
    from affine import Affine

    arr = data if data.ndim == 3 else data[np.newaxis]
    wkt = utm31_wkt() if crs_wkt == "default" else crs_wkt
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": arr.shape[2],
        "height": arr.shape[1],
        "count": arr.shape[0],
        "dtype": arr.dtype.name,
        "crs": rasterio.crs.CRS.from_wkt(wkt) if wkt else None,
        "transform": Affine(*transform),
        "nodata": nodata,
    }
    if gcps is not None:
        del profile["transform"]
        profile["gcps"] = gcps
    with rasterio.open(path, "w", **profile) as dst:
        for i, text in enumerate(descriptions, start=1):  # before the pixels: the directory stays first
            dst.set_band_description(i, text)
        dst.write(arr)
    return path


@pytest.fixture
def make_geotiff(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_geotiff(height=40, width=50, bands=1, seed=0, nodata=-1.0, dtype="float32",
    kind="intensity", holes=0.05, name="in.tif")`` -> path of a seeded GeoTIFF (EPSG:32631, 10 m).

    ``kind="intensity"`` gives Gamma-distributed positive values; ``holes`` is the fraction of
    pixels set to ``nodata`` (when nodata is not None).
    """

    def make(
        height: int = 40,
        width: int = 50,
        bands: int = 1,
        seed: int = 0,
        nodata: float | None = -1.0,
        dtype: str = "float32",
        holes: float = 0.05,
        name: str = "in.tif",
        descriptions: tuple[str, ...] = (),
    ) -> Path:
        rng = np.random.default_rng(seed)
        data = rng.gamma(4.0, 0.05 / 4.0, size=(bands, height, width)).astype(dtype)
        if nodata is not None and holes > 0:
            data[rng.random(data.shape) < holes] = nodata
        return write_test_geotiff(tmp_path / name, data, nodata=nodata, descriptions=descriptions)

    return make


GRD_POLARISATIONS = ("VV", "VH")


def write_grd_like(path: Path, height: int = 96, width: int = 128, bands: int = 2, seed: int = 0) -> Path:
    """A GeoTIFF shaped like a Sentinel-1 GRD measurement: uint16 amplitude digital numbers (VV, VH
    with those band descriptions), georeferenced by GCPs in EPSG:4326 only (no geotransform), no
    nodata value, a zero border on the left as at a swath edge."""
    from rasterio.crs import CRS

    rng = np.random.default_rng(seed)
    gain = np.array([1.0, 0.35, 0.5, 0.25][:bands])[:, None, None]  # VH is ~9 dB below VV
    texture = 1.0 + 0.8 * np.sin(np.arange(width) / 9.0)[None, :] * np.cos(np.arange(height) / 13.0)[:, None]
    intensity = rng.gamma(4.0, 1.0 / 4.0, size=(bands, height, width)) * texture * gain
    dn = np.clip(np.round(300.0 * np.sqrt(intensity)), 1, 65535).astype(np.uint16)
    dn[:, :, :6] = 0
    return write_test_geotiff(path, dn, nodata=None, crs_wkt=str(CRS.from_epsg(4326).to_wkt()),
                              descriptions=GRD_POLARISATIONS[:bands], gcps=grd_gcps(height, width))


@pytest.fixture
def make_grd(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_grd(height=96, width=128, bands=2, seed=0, name="grd.tif")`` -> a GCP-only,
    uint16 dual-polarisation GeoTIFF shaped like a Sentinel-1 GRD (:func:`write_grd_like`)."""

    def make(height: int = 96, width: int = 128, bands: int = 2, seed: int = 0,
             name: str = "grd.tif") -> Path:
        return write_grd_like(tmp_path / name, height, width, bands, seed)

    return make


def assert_same_georeferencing(output: Path, source: Path) -> None:
    """``output`` has the GCPs (with their CRS) and RPCs of ``source`` and, like it, its CRS and
    geotransform (for a GCP-only source: none and the identity)."""
    import rasterio

    from engine.raster_io import ControlPoints

    with rasterio.open(output) as out, rasterio.open(source) as src:
        assert ControlPoints.of(out) == ControlPoints.of(src)
        assert out.gcps[1] == src.gcps[1]
        assert out.transform == src.transform and out.crs == src.crs


def truncate_file(path: Path, keep: float = 0.5) -> Path:
    """Cut ``path`` to the first ``keep`` share of its bytes (a partial download or copy); returns it."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


@pytest.fixture(scope="session")
def identity_model_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Factory: ``identity_model_factory(bands=1, tile_size=32, overlap=8)`` -> path of an identity ONNX."""
    from training.onnx_io import build_identity_model

    root = tmp_path_factory.mktemp("models")
    cache: dict[tuple[int, int, int], Path] = {}

    def make(bands: int = 1, tile_size: int = 32, overlap: int = 8) -> Path:
        key = (bands, tile_size, overlap)
        if key not in cache:
            cache[key] = build_identity_model(
                root / f"identity_b{bands}_t{tile_size}_o{overlap}.onnx", bands, tile_size, overlap
            )
        return cache[key]

    return make


@pytest.fixture(scope="session")
def identity_model(identity_model_factory: Callable[..., Path]) -> Path:
    """An identity ONNX model: 1 band, 32 px tiles, 8 px overlap."""
    return identity_model_factory()


@pytest.fixture
def real_data_dir() -> Path:
    """``../shared/data/real`` next to the repository; skips the test when it is absent."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real sample data not present at {REAL_DATA}")
    return REAL_DATA.resolve()
