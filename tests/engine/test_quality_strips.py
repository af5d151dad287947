"""Streamed quality figures equal the whole-image ones (finding 24.7): PSNR, SSIM, ENL ratio, EPI, report."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from engine.codec.quality import metrics as quality
from engine.codec.quality import report as quality_report
from engine.codec.quality import strips as quality_strips
from tests.conftest import write_test_geotiff


def scene(shape: tuple[int, int], seed: int, holes: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(reference dB with edges, speckle and invalid pixels; a blurred, noisier reconstruction)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    clean = np.where(np.add.outer(np.arange(h), np.arange(w)) % 97 < 40, -14.0, -6.0)
    ref = (clean + 10 * np.log10(rng.gamma(4, 0.25, shape))).astype(np.float32)
    rec = (ndimage.uniform_filter(ref, 3) + rng.normal(0, 0.3, shape)).astype(np.float32)
    if holes:
        ref[:5, : w // 3] = np.nan  # a nodata border
        ref[rng.random(shape) < 0.002] = np.nan
        rec[rng.random(shape) < 0.002] = np.nan
    return ref, rec


def readers(ref: np.ndarray, rec: np.ndarray) -> tuple[quality_strips.RowReader, quality_strips.RowReader]:
    return (lambda top, bottom: ref[top:bottom]), (lambda top, bottom: rec[top:bottom])


def streamed(ref: np.ndarray, rec: np.ndarray, **kwargs: object) -> quality_strips.StreamedFigures:
    return quality_strips.stream_figures(*readers(ref, rec), ref.shape, **kwargs)  # type: ignore[arg-type]


def assert_same(figures: quality_strips.StreamedFigures, report: quality.QualityReport) -> None:
    assert figures.valid_pixels == report.valid_pixels
    assert figures.homogeneous_blocks == report.homogeneous_blocks
    assert figures.peak_db == pytest.approx(report.peak_db, abs=1e-6)
    assert figures.psnr == pytest.approx(report.psnr, abs=1e-6)  # the issue asks 0.01 dB
    assert figures.ssim == pytest.approx(report.ssim, abs=1e-6)
    assert figures.epi == pytest.approx(report.epi, abs=1e-9)
    assert figures.enl_ratio == pytest.approx(report.enl_ratio, rel=1e-9, nan_ok=True)


@pytest.mark.parametrize(("shape", "strip_rows"), [((301, 211), 16), ((300, 220), 32), ((97, 130), 48),
                                                   ((64, 64), 64)])
def test_streamed_figures_equal_the_whole_image_ones(monkeypatch: pytest.MonkeyPatch, shape: tuple[int, int],
                                                     strip_rows: int) -> None:
    ref, rec = scene(shape, seed=sum(shape))
    monkeypatch.setattr(quality_strips, "STRIP_PIXELS", strip_rows * shape[1])
    bounds = quality_strips.strip_bounds(shape[0], shape[1], 16, 16)
    assert bounds[0][0] == 0 and bounds[-1][1] == shape[0] and len(bounds) == max(1, shape[0] // strip_rows)
    whole = quality.compare(ref, rec)
    assert whole.homogeneous_blocks > 0 and 0 < whole.ssim < 1
    assert_same(streamed(ref, rec), whole)
    assert_same(streamed(ref, rec, peak=50.0), quality.compare(ref, rec, peak=50.0))


def test_ssim_needs_the_halo_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the neighbours' rows each strip's windows reflect at its edges: the test above would fail."""
    ref, rec = scene((200, 150), seed=4)
    monkeypatch.setattr(quality_strips, "STRIP_PIXELS", 16 * 150)
    whole = quality.compare(ref, rec)
    monkeypatch.setattr(quality_strips, "HALO", 0)
    cut = streamed(ref, rec)
    assert abs(cut.ssim - whole.ssim) > 1e-4 and abs(cut.epi - whole.epi) > 1e-4


def test_small_and_degenerate_images() -> None:
    tiny_ref, tiny_rec = scene((5, 6), seed=1, holes=False)
    assert_same(streamed(tiny_ref, tiny_rec), quality.compare(tiny_ref, tiny_rec))
    one = np.array([[1.0]], np.float32)
    figures = streamed(one, one + 0.5)
    assert math.isnan(figures.ssim) and figures.psnr == pytest.approx(20 * math.log10(1 / 0.5))
    same = streamed(*scene((40, 50), seed=2, holes=False)[:1] * 2)
    assert same.psnr == math.inf and same.epi == 1.0


def test_streamed_report_pictures_match_the_whole_image_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    ref, rec = scene((300, 2100), seed=5)  # wider than the thumbnail side: every 3rd pixel
    rec[200:232, 1040:1072] += 6.0  # an artefact for the crop
    monkeypatch.setattr(quality_strips, "STRIP_PIXELS", 32 * 2100)
    pictures = streamed(ref, rec, pictures=True).pictures
    whole = quality_report.Pictures.of_arrays(ref, rec)
    assert pictures is not None and pictures.step == whole.step == 3
    assert pictures.window == whole.window
    for a, b in ((pictures.ref_thumb, whole.ref_thumb), (pictures.rec_thumb, whole.rec_thumb),
                 (pictures.ref_crop, whole.ref_crop), (pictures.rec_crop, whole.rec_crop)):
        np.testing.assert_array_equal(a, b)
    span = float(np.nanmax(ref) - np.nanmin(ref))
    assert pictures.lo == pytest.approx(whole.lo, abs=2 * span / quality_strips.HISTOGRAM_BINS)
    assert pictures.hi == pytest.approx(whole.hi, abs=2 * span / quality_strips.HISTOGRAM_BINS)
    assert pictures.limit == pytest.approx(whole.limit, rel=0.01)


def test_assess_streams_files_to_the_in_memory_figures(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    ref_db, rec_db = scene((260, 190), seed=6)
    ref = write_test_geotiff(tmp_path / "ref.tif", (10 ** (ref_db / 10)).astype(np.float32), nodata=0.0)
    rec = write_test_geotiff(tmp_path / "rec.tif", np.nan_to_num(rec_db, nan=-9999.0), nodata=-9999.0)
    monkeypatch.setattr(quality_strips, "STRIP_PIXELS", 32 * 190)
    report = quality.assess(ref, rec, reference_kind="intensity", html_path=tmp_path / "q.html")
    whole = quality.compare(quality.read_db(ref, 1, "intensity"), quality.read_db(rec, 1, "db"))
    for name in ("psnr", "ssim", "epi", "enl_ratio"):
        assert getattr(report, name) == pytest.approx(getattr(whole, name), abs=1e-6), name
    assert report.valid_pixels == whole.valid_pixels and (tmp_path / "q.html").stat().st_size > 1000
