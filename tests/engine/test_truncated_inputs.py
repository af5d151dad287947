"""A truncated GeoTIFF (a partial download: its header reads, its pixels do not) fails in every
algorithm with an error that names the file and says what to do, and writes nothing (issue 24.5)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.codec.models import MODELS_ENV
from engine.errors import RasterIOError
from tests.conftest import truncate_file
from tests.engine.tiny_codec import build_pair
from tests.engine.tiny_translation import build_tiny_translation

WHAT = r"Reading .*'.*cut\.tif'.* failed \(.*\); the file is truncated, corrupted or unreadable"


@pytest.fixture
def cut(make_geotiff: Callable[..., Path]) -> Path:
    return truncate_file(make_geotiff(height=300, width=300, holes=0.0, name="cut.tif"))


@pytest.fixture
def reference(make_geotiff: Callable[..., Path]) -> Path:
    return make_geotiff(height=300, width=300, seed=3, holes=0.0, name="ref.tif")


def _todb(cut: Path, out: Path, ref: Path) -> Any:
    from engine.radiometry.convert import convert_db

    return convert_db(cut, out / "db.tif")


def _compress(cut: Path, out: Path, ref: Path) -> Any:
    from engine.codec.encode import compress_raster

    return compress_raster(cut, out / "c.sarz", rate="r1")


def _quality(cut: Path, out: Path, ref: Path) -> Any:
    from engine.codec.quality.metrics import assess

    return assess(cut, ref, reconstruction_kind="intensity", html_path=out / "q.html")


def _quality_of_a_cut_reconstruction(cut: Path, out: Path, ref: Path) -> Any:
    from engine.codec.quality.metrics import assess

    return assess(ref, cut, reconstruction_kind="intensity", html_path=out / "q.html")


def _translate(cut: Path, out: Path, ref: Path) -> Any:
    from engine.translation import translate

    return translate(cut, out / "rgb.tif", model=build_tiny_translation(ref.parent / "tiny.onnx"))


def _coregister(cut: Path, out: Path, ref: Path) -> Any:
    from engine.registration.shift.api import coregister

    return coregister(cut, ref, method="classical", output_path=out / "o.tif", report_path=out / "r.json")


def _keypointregister(cut: Path, out: Path, ref: Path) -> Any:
    from engine.registration.keypoints.api import keypoint_register

    return keypoint_register(cut, ref, output_path=out / "o.tif")


def _applytransform(cut: Path, out: Path, ref: Path) -> Any:
    import shutil

    from engine.registration.shift.api import apply_transform, coregister

    report = ref.parent / "r.json"
    coregister(ref, shutil.copy(ref, ref.parent / "same.tif"), method="classical", report_path=report)
    return apply_transform(report, cut, out / "o.tif", resample=True)


@pytest.mark.parametrize("entry", [_todb, _compress, _quality, _quality_of_a_cut_reconstruction, _translate,
                                   _coregister, _keypointregister, _applytransform],
                         ids=lambda f: f.__name__.strip("_"))
def test_a_truncated_input_names_the_file(entry: Callable[[Path, Path, Path], Any], cut: Path,
                                          reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          ) -> None:
    build_pair(tmp_path / "models", "r1")
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "models"))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(RasterIOError, match=WHAT):
        entry(cut, out, reference)
    assert list(out.iterdir()) == []


def test_a_truncated_input_to_applytransform_fails_when_gdal_reads_in_threads(
        cut: Path, reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``GDAL_NUM_THREADS`` set (the user's environment, a QGIS setting, or a benchmark run before in
    the same process), the system GDAL decodes blocks in worker threads, where a failed read is not raised:
    the corrected raster came out all nodata, with no error."""
    from osgeo import gdal

    monkeypatch.setenv("GDAL_NUM_THREADS", "ALL_CPUS")
    test_a_truncated_input_names_the_file(_applytransform, cut, reference, tmp_path, monkeypatch)
    assert gdal.GetThreadLocalConfigOption("GDAL_NUM_THREADS", None) is None  # restored after the run
