"""The declared kind of SAR values is checked against the values and the band's metadata."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from engine.codec.encode import compress_raster
from engine.codec.quality.metrics import assess
from engine.errors import CancelledError, InputError
from engine.input_kind import SAMPLE_WINDOW, SAMPLE_WINDOWS, check_input_kind, sample_windows
from engine.radiometry.convert import convert_db
from engine.run import Run
from tests.conftest import write_test_geotiff
from tests.engine.test_codec_roundtrip import _use_tiny_models, tiny_models  # noqa: F401


def speckled_db(shape: tuple[int, int] = (64, 80), seed: int = 0) -> np.ndarray:
    """A land scene in dB (mean -11 dB, single-look speckle): nearly every value negative."""
    rng = np.random.default_rng(seed)
    return (-11.0 + 10 * np.log10(rng.exponential(1.0, shape))).astype(np.float32)


def test_db_values_given_to_compress_as_intensity_are_refused(tmp_path: Path) -> None:
    src = write_test_geotiff(tmp_path / "db.tif", speckled_db())
    with pytest.raises(InputError, match=r"% of the valid values .* negative.*look like dB.*INPUT_KIND=db"):
        compress_raster(src, tmp_path / "c.sarz", input_kind="intensity", rate="r1")
    assert not (tmp_path / "c.sarz").exists()
    compress_raster(src, tmp_path / "c.sarz", input_kind="db", rate="r1")  # the right kind passes


def test_db_values_given_to_todb_are_refused(tmp_path: Path) -> None:
    src = write_test_geotiff(tmp_path / "db.tif", speckled_db())
    for kind in ("intensity", "amplitude"):
        with pytest.raises(InputError, match=r"already in dB and needs no conversion.*INVERSE"):
            convert_db(src, tmp_path / "out.tif", input_kind=kind)
    assert not (tmp_path / "out.tif").exists()
    convert_db(src, tmp_path / "out.tif", input_kind="intensity", inverse=True)  # dB -> linear is fine


def test_linear_values_given_as_db_are_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    dn = np.clip(rng.exponential(1500.0, (64, 80)), 1, 65535).astype(np.uint16)  # amplitude numbers
    src = write_test_geotiff(tmp_path / "dn.tif", dn)
    with pytest.raises(InputError, match=r"above 100 dB.*look linear.*INPUT_KIND=intensity"):
        compress_raster(src, tmp_path / "c.sarz", input_kind="db", rate="r1")
    with pytest.raises(InputError, match="INVERSE off"):
        convert_db(src, tmp_path / "out.tif", input_kind="amplitude", inverse=True)
    assert not (tmp_path / "c.sarz").exists() and not (tmp_path / "out.tif").exists()


@pytest.mark.parametrize("description", ["sigma0_VV [dB]", "Sigma0 in decibels", "HH backscatter (dB)"])
def test_a_band_described_as_db_is_refused_as_intensity(tmp_path: Path, description: str) -> None:
    positive = speckled_db() + 40.0  # positive dB values: the values alone would pass
    src = write_test_geotiff(tmp_path / "d.tif", positive, descriptions=(description,))
    with pytest.raises(InputError, match=r"marked as decibels \(band description.*INPUT_KIND=db"):
        compress_raster(src, tmp_path / "c.sarz", input_kind="intensity", rate="r1")
    assert not (tmp_path / "c.sarz").exists()


def test_a_db_unit_tag_is_refused_and_other_words_are_not(tmp_path: Path) -> None:
    import rasterio

    values = (10 ** (speckled_db() / 10)).astype(np.float32)
    src = write_test_geotiff(tmp_path / "t.tif", values, descriptions=("dBZ-free feedback channel",))
    check_input_kind(src, 1, "intensity")  # "dB" only as a word of its own
    with rasterio.open(src, "r+") as ds:
        ds.update_tags(1, UNITS="dB")
    with pytest.raises(InputError, match="band tag UNITS: 'dB'"):
        check_input_kind(src, 1, "intensity")
    check_input_kind(src, 1, "db")


def test_a_few_negative_values_in_intensity_are_accepted(tmp_path: Path) -> None:
    intensity = (10 ** (speckled_db() / 10)).astype(np.float32)
    intensity.flat[::50] = -0.001  # 2 %: e.g. noise-subtracted sigma0
    src = write_test_geotiff(tmp_path / "i.tif", intensity)
    check_input_kind(src, 1, "intensity")
    compress_raster(src, tmp_path / "c.sarz", input_kind="intensity", rate="r1")


def test_quality_refuses_a_db_reference_declared_as_intensity(tmp_path: Path) -> None:
    db = speckled_db()
    ref = write_test_geotiff(tmp_path / "ref.tif", db)
    rec = write_test_geotiff(tmp_path / "rec.tif", db + 0.1)
    with pytest.raises(InputError, match="REFERENCE_KIND=db"):
        assess(ref, rec, reference_kind="intensity", html_path=tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def _rgb(seed: int, grey: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:64, 0:80]
    base = 120 + 60 * np.sin(xx / 9.0) * np.cos(yy / 11.0) + rng.normal(0, 8, (64, 80))
    if grey:
        return np.clip(np.stack([base] * 3), 0, 255).astype(np.uint8)
    bands = [base * g + rng.normal(0, 6, base.shape) for g in (1.0, 0.9, 0.7)]
    return np.clip(np.stack(bands), 0, 255).astype(np.uint8)


def test_an_optical_rgb_picture_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = write_test_geotiff(tmp_path / "rgb.tif", _rgb(2))
    messages: list[str] = []
    with caplog.at_level(logging.WARNING, logger="engine.input_kind"):
        convert_db(src, tmp_path / "out.tif", input_kind="amplitude", log=messages.append)
    assert any("looks like an optical picture" in m and "band correlation" in m for m in messages)
    assert any(r.levelno == logging.WARNING for r in caplog.records)


def test_a_grey_sar_picture_in_three_bands_and_sar_are_not_warned_about(tmp_path: Path) -> None:
    messages: list[str] = []
    amplitude = np.sqrt(10 ** (speckled_db() / 10))
    speckled_grey = np.clip(40 * amplitude / np.median(amplitude), 1, 255).astype(np.uint8)
    grey = write_test_geotiff(tmp_path / "grey.tif", np.stack([speckled_grey] * 3))  # a SAR display picture
    check_input_kind(grey, 1, "amplitude", run=Run.of(log=messages.append))
    sar = write_test_geotiff(tmp_path / "sar.tif", (10 ** (speckled_db() / 10)).astype(np.float32))
    check_input_kind(sar, 1, "intensity", run=Run.of(log=messages.append))
    assert not messages


def test_values_are_judged_on_a_bounded_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 24.5 / the progress work: the check reads at most SAMPLE_WINDOWS windows, whatever the size."""
    import engine.raster_io as raster_io

    big = np.tile(speckled_db((64, 64)), (40, 30))  # 2560 x 1920 px
    src = write_test_geotiff(tmp_path / "big.tif", big)
    windows = sample_windows(*big.shape)
    assert len(windows) == SAMPLE_WINDOWS and {(w.height, w.width) for w in windows} == {(SAMPLE_WINDOW,) * 2}
    assert max(w.row_end for w in windows) == big.shape[0] and max(w.col_end for w in windows) == big.shape[1]
    read: list[int] = []
    real_read = raster_io.read_window

    def counting(source, band, window, *args, **kwargs):  # type: ignore[no-untyped-def]
        read.append(window.height * window.width)
        return real_read(source, band, window, *args, **kwargs)

    monkeypatch.setattr(raster_io, "read_window", counting)
    with pytest.raises(InputError, match=r"judged on 16 window\(s\) of 256 x 256 px"):
        check_input_kind(src, 1, "intensity")
    assert sum(read) == SAMPLE_WINDOWS * SAMPLE_WINDOW**2 < big.size / 4
    assert len(sample_windows(100, 40)) == 1  # a small raster is read whole, once


def test_the_sample_read_polls_for_cancel(tmp_path: Path) -> None:
    src = write_test_geotiff(tmp_path / "s.tif", (10 ** (speckled_db((600, 600)) / 10)).astype(np.float32))
    polls: list[int] = []

    def cancelled() -> bool:
        polls.append(1)
        return len(polls) > 3

    with pytest.raises(CancelledError):
        check_input_kind(src, 1, "intensity", run=Run.of(is_cancelled=cancelled))
    assert len(polls) == 4  # polled before each window, stopped at the fourth


def test_translate_refuses_db_values_declared_as_intensity(tmp_path: Path) -> None:
    from engine.translation.api import translate
    from tests.engine.tiny_translation import build_tiny_translation

    model = build_tiny_translation(tmp_path / "tiny.onnx")
    src = write_test_geotiff(tmp_path / "db.tif", speckled_db())
    with pytest.raises(InputError, match=r"look like dB.*INPUT_KIND=db"):
        translate(src, tmp_path / "rgb.tif", input_kind="intensity", model=model)
    assert not (tmp_path / "rgb.tif").exists()
    translate(src, tmp_path / "rgb.tif", input_kind="db", model=model)


def test_heavy_tailed_is_the_one_linear_sar_rule_of_the_filled_image_and_the_checkerboard() -> None:
    """Linear speckle has SAR's bright tail; an 8-bit picture, dB values and nothing have not; the shift
    front's ``auto`` preparation and the checkerboard's display take the log exactly when it says so."""
    from engine.input_kind import heavy_tailed
    from engine.registration.outputs import _is_sar_like
    from engine.registration.prepare import prepare_image

    rng = np.random.default_rng(3)
    bright = rng.choice([1, 100], (64, 64), p=[0.99, 0.01])
    intensity = (rng.exponential(0.05, (64, 64)) * bright).astype(np.float32)
    picture = rng.integers(0, 256, (64, 64)).astype(np.float32)
    db = (10 * np.log10(intensity + 1e-6)).astype(np.float32)
    assert heavy_tailed(intensity) and not heavy_tailed(picture) and not heavy_tailed(db)
    assert not heavy_tailed(np.zeros(0, np.float32))
    for image in (intensity, picture, db):
        logged = not np.allclose(prepare_image(image, "auto"), prepare_image(image, "linear"))
        assert logged == heavy_tailed(image) == _is_sar_like(image)
