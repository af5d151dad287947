"""Issue 15 findings 1, 2, 8 and 9 for co-registration: wide default search, refusals instead of wrong
answers, fits that need agreeing and plausible tie points, INPUT = REFERENCE, the checkerboard."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.errors import InputError, RegistrationError
from engine.registration.shift import coregister as engine_coregister
from engine.registration.shift.fitting import FitLimits, FitRefusedError, fit_points
from engine.registration.tiepoints import TiePoint
from engine.synthetic import generate_scene_pair
from tests.conftest import coregistration_outputs, write_test_geotiff

coregister = partial(engine_coregister, method="classical")
"""These tests are about the search, the fits and the outputs: the fast classical method (the default,
``deep``, runs the same code on a learned embedding and has its own tests)."""

OS_SIFT_SAR = "os_sift/GF3_KAS_SL_015331_W95.9_N41.3_20190709_L1B_HH_L10004105495-1-L2.tiff"
OS_SIFT_OPT = "os_sift/18APR24174447-P2AS-013202438020_01_P001L1-1-L2.tiff"
OS_SIFT_SHIFT = (73.0, 13.8)
"""Where classical and deep agree at MAX_SHIFT 96 and beyond, confirmed by an edge overlay (issue 15)."""


def _write(
    path: Path, data: np.ndarray, pixel: float = 10.0, origin: tuple[float, float] = (0.0, 0.0)
) -> Path:
    """A float32 GeoTIFF in UTM 31N; ``origin`` = (columns, rows) of its top-left from a common origin."""
    g = (pixel, 0.0, 500000.0 + origin[0] * pixel, 0.0, -pixel, 5000000.0 - origin[1] * pixel)
    return write_test_geotiff(path, data.astype(np.float32), transform=g)


def _listing(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


# ------------------------------------------------------------------ finding 1: search range
@pytest.mark.slow
def test_os_sift_default_search_finds_the_shift_that_narrow_searches_got_wrong(
    real_data_dir: Path, tmp_path: Path
) -> None:
    sar, opt = real_data_dir / OS_SIFT_SAR, real_data_dir / OS_SIFT_OPT
    r = coregister(sar, opt)  # defaults: MAX_SHIFT_M 150 m = 150 px of ~1 m
    assert r.search_radius >= 140
    assert abs(r.shift_x - OS_SIFT_SHIFT[0]) < 1.0 and abs(r.shift_y - OS_SIFT_SHIFT[1]) < 1.0
    for narrow in (32, 64):  # answered (+27.8, +15.9) and (+60.4, -3.7) before: now refused
        with pytest.raises(RegistrationError, match="MAX_SHIFT"):
            coregister(sar, opt, max_shift=narrow, **coregistration_outputs(tmp_path, tiepoints=False))
    assert _listing(tmp_path) == set()


def _moved(image: np.ndarray, sx: float, sy: float) -> np.ndarray:
    ky = np.fft.fftfreq(image.shape[0])[:, None]
    kx = np.fft.fftfreq(image.shape[1])[None, :]
    spec = np.fft.fft2(image.astype(np.float64)) * np.exp(-2j * np.pi * (kx * sx + ky * sy))
    return np.fft.ifft2(spec).real.astype(np.float32)


def _found_or_refused(inp: Path, ref: Path, truth: tuple[float, float], **kw: Any) -> str:
    try:
        r = coregister(inp, ref, **kw)
    except RegistrationError:
        return "refused"
    err = float(np.hypot(r.shift_x - truth[0], r.shift_y - truth[1]))
    assert err < 3.0, f"wrong answer: ({r.shift_x:+.2f}, {r.shift_y:+.2f}) for truth {truth}"
    return "found"


def test_synthetic_shifts_beyond_the_search_are_found_or_refused(tmp_path: Path) -> None:
    outcomes = []
    rng = np.random.default_rng(7)
    for seed in range(4):
        mag, ang = rng.uniform(40, 70), rng.uniform(0, 2 * np.pi)
        sx, sy = mag * np.cos(ang), mag * np.sin(ang)
        pair = generate_scene_pair(256, 256, seed=seed, shift_x=sx, shift_y=sy)
        inp = _write(tmp_path / f"sar{seed}.tif", pair.sar)
        ref = _write(tmp_path / f"ref{seed}.tif", pair.optical)
        outcomes.append(_found_or_refused(inp, ref, (-sx, -sy), max_shift=24))
    assert "refused" in outcomes  # a shift beyond a 24 px search cannot be found in it


def test_3mos_shifts_beyond_the_search_are_found_or_refused(real_data_dir: Path, tmp_path: Path) -> None:
    from benchmarks.registration.shifted import _gray

    folder = real_data_dir / "opt_sar_3mos"
    rng = np.random.default_rng(3)
    outcomes = []
    m = 33
    for name in ("SEN_city_2", "SEN_plain_9", "SEN_rural_6", "SEN_water_6", "GF3_water_1"):
        sar, opt = _gray(folder / f"{name}_sar.png"), _gray(folder / f"{name}_opt.png")
        mag, ang = rng.uniform(45, 80), rng.uniform(0, 2 * np.pi)
        sx, sy = mag * np.cos(ang), mag * np.sin(ang)
        inp = _write(tmp_path / f"{name}_sar.tif", _moved(sar, sx, sy)[m:-m, m:-m], 1.0, (m, m))
        ref = _write(tmp_path / f"{name}_opt.tif", opt, 1.0)
        outcomes.append(_found_or_refused(inp, ref, (-sx, -sy), max_shift=32))
        outcomes.append(_found_or_refused(inp, ref, (-sx, -sy)))  # default search (limited by the tile)
    assert outcomes.count("refused") >= 5  # beyond +-32 px: never found in that search


def test_max_shift_in_pixels_wins_over_metres(tmp_path: Path) -> None:
    pair = generate_scene_pair(192, 192, seed=11, shift_x=4.0, shift_y=-3.0)
    inp, ref = _write(tmp_path / "s.tif", pair.sar), _write(tmp_path / "r.tif", pair.sigma0_aligned)
    assert coregister(inp, ref, max_shift=12).search_radius == 12
    assert coregister(inp, ref, max_shift_m=400.0).search_radius == 40  # 10 m pixels
    assert coregister(inp, ref, max_shift_m=50.0).search_radius == 32  # never below 32 px
    with pytest.raises(InputError, match="MAX_SHIFT_M"):
        coregister(inp, ref, max_shift_m=0.0)


# ------------------------------------------------------------------ finding 8: INPUT = REFERENCE
def test_input_equal_to_reference_is_refused(tmp_path: Path) -> None:
    pair = generate_scene_pair(128, 128, seed=1)
    same = _write(tmp_path / "same.tif", pair.sar)
    before = _listing(tmp_path)
    with pytest.raises(InputError, match="same raster"):
        coregister(same, same, **coregistration_outputs(tmp_path, tiepoints=False))
    assert _listing(tmp_path) == before


# ------------------------------------------------------------------ finding 2: local fits
def _points(src: np.ndarray, dst: np.ndarray, reliability: np.ndarray | None = None) -> list[TiePoint]:
    rel = np.full(len(src), 2.0) if reliability is None else reliability
    return [
        TiePoint(float(s[0]), float(s[1]), float(d[0] - s[0]), float(d[1] - s[1]), 0.3, float(r), False)
        for s, d, r in zip(src, dst, rel, strict=True)
    ]


def test_one_reliable_point_of_sixteen_is_no_fit() -> None:
    xs, ys = np.meshgrid(np.arange(4) * 256 + 128, np.arange(4) * 256 + 128)
    src = np.stack([xs.ravel(), ys.ravel()], 1).astype(float)
    rel = np.full(16, 1.02)
    rel[5] = 1.5  # one reliable point (it used to give a shift with RMSE 0.000)
    with pytest.raises(FitRefusedError, match=r"Only 1 of 1 reliable tie points \(16 measured\)") as info:
        fit_points(_points(src, src + np.array([5.0, -2.0]), rel), "shift", FitLimits(), (1024, 1024))
    assert info.value.status.count("ambiguous") == 15


def test_four_agreeing_points_of_49_with_a_4_percent_scale_are_refused() -> None:
    rng = np.random.default_rng(0)
    xs, ys = np.meshgrid(np.linspace(64, 960, 7), np.linspace(64, 960, 7))
    src = np.stack([xs.ravel(), ys.ravel()], 1)
    dst = src + rng.uniform(-30, 30, src.shape)  # 45 disagreeing (wrong) matches
    dst[:4] = src[:4] * 1.04 + [3.0, 1.0]  # 4 agreeing on a 4 % scale change
    with pytest.raises(FitRefusedError, match=r"Only \d of 49 reliable tie points"):
        fit_points(_points(src, dst), "affine", FitLimits(), (1024, 1024))


def test_implausible_scale_is_refused_unless_allowed() -> None:
    xs, ys = np.meshgrid(np.linspace(64, 960, 7), np.linspace(64, 960, 7))
    src = np.stack([xs.ravel(), ys.ravel()], 1)
    dst = src * 1.04 + [3.0, 1.0]  # all 49 agree on a 4 % scale change
    with pytest.raises(FitRefusedError, match=r"pixel size by up to 4\.0 %"):
        fit_points(_points(src, dst), "affine", FitLimits(), (1024, 1024))
    fit = fit_points(_points(src, dst), "affine", FitLimits(max_scale_change=0.05), (1024, 1024))
    assert fit.used.all() and fit.rmse < 1e-6
    rot = np.radians(3.0)
    turned = (src - 512) @ np.array([[np.cos(rot), -np.sin(rot)], [np.sin(rot), np.cos(rot)]]).T + 512
    with pytest.raises(FitRefusedError, match=r"rotates by up to 3\.0 degrees"):
        fit_points(_points(src, turned), "affine", FitLimits(), (1024, 1024))


def test_rmse_is_not_available_without_redundant_points(tmp_path: Path) -> None:
    pair = generate_scene_pair(192, 192, seed=11, shift_x=4.0, shift_y=-3.0)
    inp, ref = _write(tmp_path / "s.tif", pair.sar), _write(tmp_path / "r.tif", pair.sigma0_aligned)
    r = coregister(inp, ref, max_shift=16, report_path=tmp_path / "r.json")
    assert r.n_points == 1 and np.isnan(r.rmse) and r.rmse_text == "n/a"
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["rmse_after"] is None and report["n_points_used"] == 1


def test_refused_local_fit_writes_the_tie_points_only(tmp_path: Path) -> None:
    from osgeo import ogr

    pair = generate_scene_pair(192, 192, seed=5, shift_x=-4.0, shift_y=2.0)
    inp, ref = _write(tmp_path / "s.tif", pair.sar), _write(tmp_path / "r.tif", pair.optical)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(RegistrationError, match=r"tie points .* are in .*t\.gpkg"):
        coregister(
            inp, ref, mode="local", transform="poly3", grid_spacing=64, window=64, max_shift=12,
            **coregistration_outputs(out),
        )  # fmt: skip
    assert _listing(out) == {"t.gpkg"}
    ds = ogr.Open(str(out / "t.gpkg"))  # keep the dataset alive while its layer is read
    statuses = [f.GetField("status") for f in ds.GetLayer(0)]
    ds = None
    assert statuses and not any(f == "used" for f in statuses)


# ------------------------------------------------------------------ finding 9: checkerboard
def test_checkerboard_is_a_georeferenced_labelled_colour_geotiff(tmp_path: Path) -> None:
    import rasterio

    from engine.synthetic import write_scene_pair

    files = write_scene_pair(
        tmp_path / "sar.tif", tmp_path / "opt.tif", width=192, height=192, seed=5, shift_x=-6.0, shift_y=3.0
    )
    r = coregister(files.sar_path, files.optical_path, max_shift=16, checkerboard_path=tmp_path / "c.tif")
    with rasterio.open(tmp_path / "c.tif") as cb, rasterio.open(files.sar_path) as src:
        assert cb.count == 3 and cb.crs == src.crs
        img = cb.read()
        sep = cb.width - 2 * src.width
        assert sep > 0 and cb.height == src.height
        # the "after" panel (right) lies on the input's footprint, same pixel size
        right = cb.transform * (src.width + sep, 0)
        assert right == pytest.approx((src.transform.c, src.transform.f))
        assert cb.transform.a == pytest.approx(src.transform.a)
    yellow = (img[0] > 200) & (img[1] > 200) & (img[2] < 60)
    assert yellow[:40, :120].sum() > 20 and yellow[:40, src.width + sep : src.width + sep + 160].sum() > 20
    colour = (np.abs(img[0].astype(int) - img[2]) > 30)[60:, :]
    assert colour.mean() > 0.05  # optical cells keep their colour (the SAR cells are grey)
    assert abs(r.shift_x - 6.0) < 1.0
