"""``sartoolbox:compress``, ``decompress`` and ``compressionquality`` through processing.run (tiny models)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.engine.tiny_codec import build_pair

NODATA = -1.0


@pytest.fixture(autouse=True)
def tiny_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    build_pair(folder, "r1")
    monkeypatch.setenv("SAR_TOOLBOX_MODELS_DIR", str(folder))
    return folder


@pytest.fixture
def scene(tmp_path: Path, write_geotiff: Callable[..., Path]) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[0:45, 0:70]
    db = -12 + 6 * np.sin(xx / 9.0) * np.cos(yy / 7.0)
    intensity = (10 ** (db / 10) * rng.gamma(8, 1 / 8, db.shape)).astype(np.float32)
    intensity[0, :4] = [0.0, -3.0, np.nan, NODATA]
    return write_geotiff(tmp_path / "sigma0.tif", intensity, nodata=NODATA), intensity


def _invalid(values: np.ndarray) -> np.ndarray:
    return ~np.isfinite(values) | (values <= 0)


def test_compress_decompress_quality(
    tmp_path: Path,
    scene: tuple[Path, np.ndarray],
    run_algorithm: Callable[..., dict[str, Any]],
    read_geotiff: Callable[..., Any],
    same_crs: Callable[[str, str], bool],
) -> None:
    source, intensity = scene
    sarz = tmp_path / "scene.sarz"
    result = run_algorithm("compress", {"INPUT": str(source), "BAND": 1, "INPUT_KIND": 0, "RATE": 0,
                                        "OUTPUT": str(sarz)})
    assert Path(result["OUTPUT"]) == sarz
    assert result["BYTES"] == sarz.stat().st_size
    assert result["BPP"] == pytest.approx(8 * sarz.stat().st_size / (45 * 70))
    assert (result["N_EXCEPTIONS"], result["EXCEPTION_BYTES"], result["DARK_PIXELS"]) == (0, 0, 0)  # in range

    decoded = tmp_path / "decoded.tif"
    run_algorithm("decompress", {"INPUT": str(sarz), "OUTPUT_KIND": 0, "OUTPUT": str(decoded)})
    values, info = read_geotiff(decoded)
    _, source_info = read_geotiff(source)
    assert info["size"] == (45, 70) and info["dtype"] == "Float32"
    assert info["transform"] == pytest.approx(source_info["transform"])
    assert same_crs(info["crs"], source_info["crs"])
    np.testing.assert_array_equal(values == info["nodata"], _invalid(intensity) | (intensity == NODATA))

    report = tmp_path / "report.html"
    quality = run_algorithm("compressionquality", {"REFERENCE": str(source), "BAND": 1, "REFERENCE_KIND": 0,
                                                   "INPUT": str(sarz), "OUTPUT_HTML": str(report)})
    assert quality["BPP"] == pytest.approx(result["BPP"])
    assert np.isfinite(quality["PSNR"]) and quality["PSNR"] > 0
    assert -1 <= quality["SSIM"] <= 1 and -1 <= quality["EPI"] <= 1 and quality["ENL_RATIO"] > 0
    assert "PSNR" in report.read_text()

    from_raster = run_algorithm("compressionquality", {"REFERENCE": str(source), "BAND": 1,
                                                       "REFERENCE_KIND": 0, "INPUT": str(decoded)})
    assert from_raster["PSNR"] == pytest.approx(quality["PSNR"], abs=1e-6)
    assert from_raster["BPP"] is None


def test_decompress_foreign_file_fails_and_writes_nothing(
    tmp_path: Path, scene: tuple[Path, np.ndarray], run_algorithm: Callable[..., dict[str, Any]]
) -> None:
    from qgis.core import QgsProcessingException

    source, _ = scene
    foreign = tmp_path / "renamed_geotiff.sarz"
    foreign.write_bytes(source.read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(QgsProcessingException, match="not a SAR Toolbox compressed file"):
        run_algorithm("decompress", {"INPUT": str(foreign), "OUTPUT_KIND": 0, "OUTPUT": str(out / "d.tif")})
    assert list(out.iterdir()) == []


def test_compress_band_out_of_range_and_complex(
    tmp_path: Path, scene: tuple[Path, np.ndarray], run_algorithm: Callable[..., dict[str, Any]],
    write_geotiff: Callable[..., Path],
) -> None:
    from qgis.core import QgsProcessingException

    source, _ = scene
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(QgsProcessingException, match=r"(?i)band 2 does not exist"):
        run_algorithm("compress", {"INPUT": str(source), "BAND": 2, "INPUT_KIND": 0, "RATE": 0,
                                   "OUTPUT": str(out / "c.sarz")})
    slc = write_geotiff(tmp_path / "slc.tif", np.ones((6, 6), np.complex64))
    with pytest.raises(QgsProcessingException, match="complex"):
        run_algorithm("compress", {"INPUT": str(slc), "BAND": 1, "INPUT_KIND": 0, "RATE": 0,
                                   "OUTPUT": str(out / "c.sarz")})
    assert list(out.iterdir()) == []


def test_compress_with_custom_encoder(
    tmp_path: Path, scene: tuple[Path, np.ndarray], tiny_models: Path,
    run_algorithm: Callable[..., dict[str, Any]],
) -> None:
    source, _ = scene
    sarz = tmp_path / "custom.sarz"
    result = run_algorithm("compress", {"INPUT": str(source), "BAND": 1, "INPUT_KIND": 0, "RATE": 0,
                                        "MODEL": str(tiny_models / "sarcodec-r1-encoder.onnx"),
                                        "OUTPUT": str(sarz)})
    assert result["BYTES"] == sarz.stat().st_size


def test_optimised_quantisation_parameter(
    tmp_path: Path, write_geotiff: Callable[..., Path], run_algorithm: Callable[..., dict[str, Any]],
) -> None:
    from tests.engine.tiny_codec import tiny_table

    build_pair(tmp_path / "models", "r1", table=tiny_table().with_rdo([0.05] * 4, 1.0))  # replaces the pair
    from tests.engine.test_codec_roundtrip import smooth_db

    source = write_geotiff(tmp_path / "smooth.tif", smooth_db(96, 160, seed=8))  # dB values
    sizes = {}
    for optimise in (False, True):
        out = tmp_path / f"o{int(optimise)}.sarz"
        result = run_algorithm("compress", {"INPUT": str(source), "BAND": 1, "INPUT_KIND": 2, "RATE": 0,
                                            "OPTIMISE": optimise, "OUTPUT": str(out)})
        sizes[optimise] = result["BYTES"]
    assert sizes[True] < sizes[False]


def test_restoration_filter_parameter(
    tmp_path: Path, write_geotiff: Callable[..., Path], run_algorithm: Callable[..., dict[str, Any]],
) -> None:
    from engine.codec import fileformat
    from tests.engine.test_codec_postfilter import textured_db

    build_pair(tmp_path / "models", "r1", lam="1e7")  # replaces the pair: a filter pays at this lambda
    source = write_geotiff(tmp_path / "textured.tif", textured_db(96, 160, seed=8))  # dB values
    stored = {}
    for post_filter in (False, True):
        out = tmp_path / f"f{int(post_filter)}.sarz"
        run_algorithm("compress", {"INPUT": str(source), "BAND": 1, "INPUT_KIND": 2, "RATE": 0,
                                   "POST_FILTER": post_filter, "OUTPUT": str(out)})
        stored[post_filter] = bool(fileformat.read_compressed(out).header.post_filter)
    assert stored == {False: False, True: True}


def test_dual_pol_gcp_product_round_trip(
    tmp_path: Path, make_grd: Callable[..., Path], run_algorithm: Callable[..., dict[str, Any]],
) -> None:
    """A GCP-only VV+VH product (Sentinel-1 GRD shape): compress without BAND codes both bands into one
    file, decompress restores both with their descriptions and the GCPs (issue 24.1, 24.2)."""
    import rasterio

    from tests.conftest import assert_same_georeferencing

    grd = make_grd()
    sarz, decoded = tmp_path / "s1.sarz", tmp_path / "s1.tif"
    result = run_algorithm("compress", {"INPUT": str(grd), "INPUT_KIND": 1, "RATE": 0, "OUTPUT": str(sarz)})
    assert result["BANDS"].startswith("band 1 (VV): ") and "; band 2 (VH): " in result["BANDS"]
    run_algorithm("decompress", {"INPUT": str(sarz), "OUTPUT_KIND": 0, "OUTPUT": str(decoded)})
    assert_same_georeferencing(decoded, grd)
    with rasterio.open(decoded) as ds:
        assert ds.descriptions == ("VV", "VH")
    vh = run_algorithm("compressionquality", {"REFERENCE": str(grd), "BAND": 2, "REFERENCE_KIND": 1,
                                              "INPUT": str(sarz)})
    vh_decoded = run_algorithm("compressionquality", {"REFERENCE": str(grd), "BAND": 2, "REFERENCE_KIND": 1,
                                                      "INPUT": str(decoded)})
    assert vh["PSNR"] == pytest.approx(vh_decoded["PSNR"], abs=1e-6)
    assert vh["BPP"] < result["BPP"]  # the VH band's share of the file


@pytest.mark.parametrize("algorithm", ["compress", "todb"])
def test_a_truncated_raster_is_named_not_an_unexpected_error(
    algorithm: str, tmp_path: Path, make_geotiff: Callable[..., Path],
    run_algorithm: Callable[..., dict[str, Any]],
) -> None:
    """Issue 24.5: the input-kind check's decimated read of a truncated GeoTIFF said "Unexpected error
    (RasterioIOError: Read failed...)"; it names the file and what to do, and writes nothing."""
    from qgis.core import QgsProcessingException

    from tests.conftest import truncate_file

    cut = truncate_file(make_geotiff(height=300, width=300, holes=0.0, name="cut.tif"))
    out = tmp_path / ("out.sarz" if algorithm == "compress" else "out.tif")
    with pytest.raises(QgsProcessingException) as caught:
        rate = {"RATE": 0} if algorithm == "compress" else {}  # r1: the one tiny model installed here
        run_algorithm(algorithm, {"INPUT": str(cut), "INPUT_KIND": 0, "OUTPUT": str(out), **rate})
    message = str(caught.value)
    assert "cut.tif' failed" in message and "truncated" in message and "Unexpected" not in message
    assert not out.exists()


def test_compress_offers_quality_rate_and_targets(sar_provider: Any) -> None:
    from qgis.core import QgsProcessingParameterDefinition as Definition

    compress = next(a for a in sar_provider.algorithms() if a.name() == "compress")
    quality, rate = compress.parameterDefinition("QUALITY"), compress.parameterDefinition("RATE")
    assert quality.options() == ["as Rate says", "archive", "high", "balanced", "compact", "smallest"]
    assert quality.defaultValue() == 0
    assert [o.split(" ")[0] for o in rate.options()] == ["r1", "r2", "r3", "h1", "h4", "h5"]
    assert rate.defaultValue() == 1 and rate.options()[5] == "h5 - retired, runs h1"
    for name in ("TARGET_BPP", "TARGET_PSNR"):
        target = compress.parameterDefinition(name)
        assert target.flags() & Definition.FlagOptional and target.defaultValue() is None
    help_text = compress.shortHelpString()
    for word, point in (("archive", "h4"), ("balanced", "r2"), ("smallest", "h1")):
        assert f"  {word} | {point} | " in help_text
    assert "{QUALITY_TABLE}" not in help_text and "make bench-rate-points" in help_text


def test_quality_overrides_rate_and_a_retired_index_runs_its_successor(
    tmp_path: Path, tiny_models: Path, scene: tuple[Path, np.ndarray],
    run_algorithm: Callable[..., dict[str, Any]], recording_feedback: Callable[[], Any],
) -> None:
    build_pair(tiny_models, "h1")
    source, _ = scene
    base = {"INPUT": str(source), "BAND": 1, "INPUT_KIND": 0, "OUTPUT": str(tmp_path / "c.sarz")}
    feedback = recording_feedback()
    assert run_algorithm("compress", {**base, "RATE": 5}, feedback)["MODEL_ID"] == "sarcodec-h1"
    assert any("Deprecated: rate point 'h5' (RATE=5)" in s for s in feedback.lines)
    assert run_algorithm("compress", {**base, "RATE": 0, "QUALITY": 5})["MODEL_ID"] == "sarcodec-h1"
    assert run_algorithm("compress", {**base, "RATE": 0})["MODEL_ID"] == "sarcodec-r1"
