"""Quality metrics: PSNR, SSIM, ENL ratio, EPI, bits per pixel and the HTML report."""

from __future__ import annotations

import base64
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from engine.codec.quality import metrics as quality
from engine.codec.quality import report as quality_report
from engine.errors import InputError
from tests.conftest import write_test_geotiff


def speckled(
    shape: tuple[int, int] = (96, 96), looks: int = 4, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(clean dB scene with an edge, speckled dB scene)."""
    rng = np.random.default_rng(seed)
    clean = np.full(shape, -15.0, np.float32)
    clean[:, shape[1] // 2 :] = -5.0
    intensity = 10 ** (clean / 10) * rng.gamma(looks, 1.0 / looks, shape)
    return clean, (10 * np.log10(intensity)).astype(np.float32)


def test_psnr_known_value_and_peak() -> None:
    ref = np.array([[0.0, 10.0], [5.0, 5.0]], np.float32)
    rec = ref + 1.0
    assert quality.psnr(ref, rec) == pytest.approx(10 * math.log10(10.0**2 / 1.0))
    assert quality.psnr(ref, rec, peak=40.0) == pytest.approx(10 * math.log10(1600.0))
    assert quality.psnr(ref, ref) == math.inf


def test_metrics_ignore_invalid_pixels() -> None:
    _, ref = speckled()
    rec = ref.copy()
    rec[:10, :10] = 1000.0
    ref_masked = ref.copy()
    ref_masked[:10, :10] = np.nan
    assert quality.psnr(ref_masked, rec) == math.inf
    assert quality.ssim(ref_masked, rec) == pytest.approx(1.0)
    assert quality.epi(ref_masked, rec) == pytest.approx(1.0)


def test_ssim_and_epi_drop_with_blur() -> None:
    _, ref = speckled()
    light = ndimage.uniform_filter(ref, 3)
    heavy = ndimage.uniform_filter(ref, 9)
    assert 1.0 > quality.ssim(ref, light) > quality.ssim(ref, heavy)
    assert 1.0 > quality.epi(ref, light) > quality.epi(ref, heavy)


def test_enl_ratio_detects_smoothing() -> None:
    clean, ref = speckled(looks=2)
    same_statistics = speckled(looks=2, seed=1)[1]
    ratio_same, blocks = quality.enl_ratio(ref, same_statistics)
    ratio_smooth, _ = quality.enl_ratio(ref, ndimage.uniform_filter(ref, 5))
    assert blocks >= 1
    assert 0.6 < ratio_same < 1.6
    assert ratio_smooth > 3 * ratio_same
    assert quality.enl(10 ** (clean[:8, :8] / 10)) == math.inf


def test_enl_of_gamma_speckle_is_the_number_of_looks() -> None:
    rng = np.random.default_rng(3)
    assert quality.enl(rng.gamma(4, 0.25, 200_000)) == pytest.approx(4.0, rel=0.05)


def test_size_mismatch_and_empty_overlap() -> None:
    with pytest.raises(InputError, match="differ in size"):
        quality.psnr(np.zeros((2, 2)), np.zeros((3, 2)))
    with pytest.raises(InputError, match="no valid pixel"):
        quality.psnr(np.full((2, 2), np.nan), np.zeros((2, 2)))


def test_tiny_images() -> None:
    one = np.array([[1.0]], np.float32)
    assert math.isnan(quality.ssim(one, one + 1))
    report = quality.compare(one, one + 0.5)
    assert report.psnr == pytest.approx(20 * math.log10(1 / 0.5))


def test_assess_rasters_and_html_report(tmp_path: Path) -> None:
    _, ref_db = speckled((64, 80))
    ref_db[0, 0] = np.nan
    ref = write_test_geotiff(tmp_path / "ref.tif", (10 ** (ref_db / 10)).astype(np.float32), nodata=None)
    blurred = ndimage.uniform_filter(np.nan_to_num(ref_db, nan=-10.0), 3)
    rec = write_test_geotiff(tmp_path / "rec.tif", blurred)
    html_path = tmp_path / "report.html"
    report = quality.assess(ref, rec, reference_kind="intensity", reconstruction_kind="db",
                            html_path=html_path)
    assert report.bpp is None and report.valid_pixels == 64 * 80 - 1
    assert 0 < report.ssim < 1 and 0 < report.epi < 1 and report.enl_ratio > 1
    text = html_path.read_text()
    assert f"{report.psnr:.3f}" in text and "ENL ratio" in text
    pngs = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text)
    assert len(pngs) == 8  # 3 overview images, 3 full-resolution crops, 2 colour bars
    assert all(base64.b64decode(p).startswith(b"\x89PNG\r\n\x1a\n") for p in pngs)
    assert "Grey stretch" in text and "Difference scale: ±" in text
    assert "Reference band as stored (float32)" in text
    assert "Compression ratio" not in text  # a raster reconstruction has no compressed size


def test_png_writer_is_decodable(tmp_path: Path) -> None:
    from PIL import Image  # matplotlib's dependency, available in the dev environment

    rgb = np.random.default_rng(0).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    path = tmp_path / "x.png"
    path.write_bytes(quality_report.png(rgb))
    np.testing.assert_array_equal(np.asarray(Image.open(path)), rgb)


def test_assess_compressed_file_reports_bpp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.codec.encode import compress_raster
    from engine.codec.models import MODELS_ENV
    from tests.engine.tiny_codec import build_pair

    build_pair(tmp_path / "models", "r1")
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "models"))
    _, ref_db = speckled((48, 64))
    ref = write_test_geotiff(tmp_path / "ref.tif", ref_db)
    result = compress_raster(ref, tmp_path / "c.sarz", input_kind="db", rate="r1")
    page = tmp_path / "report.html"
    report = quality.assess(ref, result.path, reference_kind="db", html_path=page)
    assert report.bpp == pytest.approx(8 * result.bytes / (48 * 64))
    text = page.read_text()  # finding 15.9: model, sizes and ratio in the report
    ratio = 48 * 64 * 4 / result.bytes
    assert "sarcodec-r1" in text and f"{result.bytes:,} bytes" in text and f"{ratio:.1f} : 1" in text
    assert quality.bits_per_pixel(result.path) == report.bpp
    assert report.psnr > 5 and report.enl_ratio > 1  # the tiny codec keeps only 16 x 16 block means


def test_worst_window_finds_the_artefact() -> None:
    rng = np.random.default_rng(5)
    ref = rng.normal(-10, 2, (300, 220))
    rec = ref + rng.normal(0, 0.1, ref.shape)
    rec[200:232, 40:72] += 6.0  # a block artefact
    rec[:20, :20] = np.nan  # invalid pixels do not count
    row, col, side = quality_report.worst_window(ref, rec, side=64)
    assert side == 64 and row <= 200 and row + side >= 232 and col <= 40 and col + side >= 72
    assert quality_report.worst_window(ref[:30, :40], rec[:30, :40])[::2] == (0, 30)  # clipped to the image


def test_report_states_the_difference_scale_with_its_colour_bar(tmp_path: Path) -> None:
    ref = np.tile(np.linspace(-20, 0, 64), (48, 1))
    rec = ref.copy()
    rec[10:20, 10:20] += 1.5
    report = quality.compare(ref, rec)
    page = quality_report.render_html(ref, rec, report)
    limit = float(np.percentile(np.abs(rec - ref), 99))
    assert f"-{limit:.2f} dB" in page and f"+{limit:.2f} dB" in page
    lo, hi = np.percentile(ref, [1, 99])
    assert f"{lo:.1f} dB (black) to {hi:.1f} dB (white)" in page
    assert "Rows 0-47, columns 0-47 (48 x 48 pixels" in page


def test_unwritable_report_is_refused_before_any_work(tmp_path: Path) -> None:
    from engine.errors import RasterIOError

    with pytest.raises(RasterIOError, match="does not exist; create it"):
        quality.assess(tmp_path / "not-read.tif", tmp_path / "not-read-either.tif",
                       html_path=tmp_path / "missing" / "report.html")
