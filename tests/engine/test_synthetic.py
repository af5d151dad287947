"""Tests of the synthetic SAR/optical scene generator (tiny, seeded scenes)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from engine.errors import CancelledError, InputError
from engine.synthetic import (
    METADATA_TAG,
    OPTICAL_BANDS,
    SAR_DESCRIPTION,
    LandCover,
    ScenePair,
    generate_scene_pair,
    generate_training_batch,
    generate_training_pair,
    iter_training_pairs,
    write_scene_pair,
)

# Documented per-class ranges of the mean of 10 log10(noise-free sigma0) over interior pixels of each
# class at 10 m pixels (docs/SYNTHETIC.md).
CLASS_DB_RANGES = {
    LandCover.WATER: (-25.0, -18.0),
    LandCover.FIELD: (-13.0, -8.0),
    LandCover.FOREST: (-8.5, -5.5),
}
URBAN_DB_RANGE = (0.0, 5.0)  # URBAN and BUILDING pixels together


def uniform_patch_for_test(size: int, *, seed: int, looks: float = 4,
                           landcover: LandCover = LandCover.FIELD) -> ScenePair:
    """A homogeneous single-class scene (no texture): its speckled SAR has ENL = ``looks``."""
    return generate_scene_pair(size, size, seed=seed, looks=looks, texture=False, single_class=landcover)


@pytest.fixture(scope="module")
def scene():
    return generate_scene_pair(256, 256, seed=11)


def _db(x: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(x)


def _interior(mask: np.ndarray) -> np.ndarray:
    """Pixels whose 4 neighbours share the class (pure pixels, away from mixed edges)."""
    return mask & np.roll(mask, 1, 0) & np.roll(mask, -1, 0) & np.roll(mask, 1, 1) & np.roll(mask, -1, 1)


def test_same_seed_same_scene_and_other_seed_differs():
    a = generate_scene_pair(64, 48, seed=3, shift_x=0.4)
    b = generate_scene_pair(64, 48, seed=3, shift_x=0.4)
    c = generate_scene_pair(64, 48, seed=4, shift_x=0.4)
    for name in ("landcover", "sigma0", "sar", "optical", "building_height"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert not np.array_equal(a.sar, c.sar)
    assert a.sar.shape == (48, 64) and a.optical.shape == (4, 48, 64)
    assert a.sar.dtype == np.float32 and a.optical.dtype == np.float32 and a.landcover.dtype == np.uint8


def test_shift_does_not_change_the_world():
    a = generate_scene_pair(96, 96, seed=5)
    b = generate_scene_pair(96, 96, seed=5, shift_x=3.3, shift_y=-2.1)
    assert np.array_equal(a.landcover, b.landcover)
    # bit-identical: the value noise is interpolated element-wise, so a pixel's rounding does not depend
    # on the padded grid's size (which follows the shift)
    assert np.array_equal(a.optical, b.optical)
    np.testing.assert_array_equal(a.sigma0_aligned, b.sigma0_aligned)


@pytest.mark.parametrize("looks", [1, 4, 10])
def test_enl_of_homogeneous_area_equals_looks(looks):
    pair = uniform_patch_for_test(256, seed=21, looks=looks)
    assert np.unique(pair.landcover).tolist() == [LandCover.FIELD]
    np.testing.assert_allclose(pair.sigma0, pair.sigma0[0, 0], rtol=1e-4)
    enl = pair.sar.mean() ** 2 / pair.sar.var()
    assert enl == pytest.approx(looks, rel=0.1)
    assert pair.sar.mean() == pytest.approx(pair.sigma0.mean(), rel=0.02)  # speckle has unit mean


def test_speckle_is_multiplicative_gamma_on_a_textured_scene(scene):
    ratio = scene.sar / scene.sigma0
    assert ratio.mean() == pytest.approx(1.0, abs=0.02)
    assert 1.0 / ratio.var() == pytest.approx(scene.looks, rel=0.1)


def test_every_class_is_present(scene):
    counts = np.bincount(scene.landcover.ravel(), minlength=7)
    for cls in LandCover:
        assert counts[cls] > 30, cls.name
    assert scene.building_height[scene.landcover == LandCover.BUILDING].min() >= 6.0
    assert scene.building_height[scene.landcover != LandCover.BUILDING].max() == 0.0


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_class_mean_db_in_documented_ranges(seed):
    pair = generate_scene_pair(256, 256, seed=seed)
    db = _db(pair.sigma0_aligned)
    means = {cls: float(db[pair.landcover == cls].mean()) for cls in LandCover}
    for cls, (low, high) in CLASS_DB_RANGES.items():
        interior = float(db[_interior(pair.landcover == cls)].mean())
        assert low <= interior <= high, (cls.name, interior)
    urban = _interior(np.isin(pair.landcover, [LandCover.URBAN, LandCover.BUILDING]))
    assert URBAN_DB_RANGE[0] <= float(db[urban].mean()) <= URBAN_DB_RANGE[1]
    assert means[LandCover.WATER] < means[LandCover.FIELD] < means[LandCover.FOREST]
    assert means[LandCover.WATER] < means[LandCover.ROAD]
    assert means[LandCover.FIELD] < float(db[urban].mean())


@pytest.mark.parametrize(("shift_x", "shift_y"), [(0.3, -0.7), (2.25, 1.5), (-3.6, 0.45)])
def test_shift_is_recovered_with_the_documented_sign(shift_x, shift_y):
    from skimage.registration import phase_cross_correlation

    ref = generate_scene_pair(128, 128, seed=7)
    moved = generate_scene_pair(128, 128, seed=7, shift_x=shift_x, shift_y=shift_y)
    found, _, _ = phase_cross_correlation(ref.sigma0, moved.sigma0, upsample_factor=100, normalization=None)
    # phase_cross_correlation returns the (dy, dx) that moves `moved` back onto `ref`
    np.testing.assert_allclose(found, (-shift_y, -shift_x), atol=0.05)
    assert moved.shift == (shift_x, shift_y)
    assert moved.sar_from_optical[0][2] == pytest.approx(shift_x)
    assert moved.sar_from_optical[1][2] == pytest.approx(shift_y)


def test_integer_shift_moves_content_right_and_down():
    ref = generate_scene_pair(64, 64, seed=9)
    moved = generate_scene_pair(64, 64, seed=9, shift_x=3, shift_y=2)
    np.testing.assert_allclose(moved.sigma0[10:50, 10:50], ref.sigma0[8:48, 7:47], rtol=1e-3, atol=1e-6)


def test_affine_maps_optical_pixels_to_sar_pixels():
    from skimage.registration import phase_cross_correlation

    ref = generate_scene_pair(128, 128, seed=7)
    same = generate_scene_pair(128, 128, seed=7, shift_x=1.3, shift_y=-0.4, affine=[[1, 0], [0, 1]])
    found, _, _ = phase_cross_correlation(ref.sigma0, same.sigma0, upsample_factor=100, normalization=None)
    np.testing.assert_allclose(found, (0.4, -1.3), atol=0.05)

    # a rotation: local shifts measured on patches follow M (optical -> SAR), not its inverse
    a = math.radians(1.5)
    ref = generate_scene_pair(256, 256, seed=8)
    rot = generate_scene_pair(256, 256, seed=8, affine=[[math.cos(a), -math.sin(a), 0.5],
                                                        [math.sin(a), math.cos(a), -0.3]])
    m = np.vstack([np.array(rot.sar_from_optical), [0.0, 0.0, 1.0]])
    centres, measured = [], []
    for cy in range(48, 209, 40):
        for cx in range(48, 209, 40):
            sl = (slice(cy - 32, cy + 32), slice(cx - 32, cx + 32))
            dydx, _, _ = phase_cross_correlation(ref.sigma0[sl], rot.sigma0[sl], upsample_factor=20,
                                                 normalization=None)
            centres.append((cx - 0.5, cy - 0.5, 1.0))
            measured.append(-dydx[::-1])
    p = np.array(centres)
    err = np.median(np.abs(np.array(measured) - ((m @ p.T).T[:, :2] - p[:, :2])))
    err_inverse = np.median(np.abs(np.array(measured) - ((np.linalg.inv(m) @ p.T).T[:, :2] - p[:, :2])))
    assert err < 0.5 and err_inverse > 3 * err


@pytest.mark.parametrize(("direction", "near_side"), [("east", (0, -1)), ("west", (0, 1)),
                                                       ("south", (-1, 0)), ("north", (1, 0))])
def test_double_bounce_on_the_near_range_side_of_buildings(direction, near_side):
    pair = generate_scene_pair(192, 192, seed=3, look_direction=direction, texture=False, psf_sigma=0.0)
    bld = pair.landcover == LandCover.BUILDING
    sides = {}
    for side in ((0, -1), (0, 1), (-1, 0), (1, 0)):
        beside = np.roll(bld, side, axis=(0, 1)) & ~bld  # ground pixel one step from a building
        sides[side] = float(np.median(_db(pair.sigma0[beside])))
    assert sides[near_side] > 10.0
    assert all(sides[near_side] > v + 5.0 for k, v in sides.items() if k != near_side)


def test_radar_shadow_is_dark_behind_tall_buildings():
    pair = generate_scene_pair(192, 192, seed=3, texture=False, psf_sigma=0.0, incidence_angle=60.0)
    bld = pair.landcover == LandCover.BUILDING
    # ground directly east (far range) of a wall taller than 20 m lies in radar shadow ...
    tall = bld & (pair.building_height > 20.0)
    behind = np.roll(tall, 1, axis=1) & ~bld
    assert behind.sum() > 5
    # ... unless the next building's layover covers it: most pixels stay near the noise floor
    assert np.median(_db(pair.sigma0[behind])) < -18.0


def test_optical_ndvi_separates_vegetation_from_urban_and_water(scene):
    red, nir = scene.optical[0].astype(np.float64), scene.optical[3].astype(np.float64)
    ndvi = (nir - red) / (nir + red + 1e-6)
    mean = {cls: float(ndvi[scene.landcover == cls].mean()) for cls in LandCover}
    assert min(mean[LandCover.FIELD], mean[LandCover.FOREST]) > 0.5
    assert max(mean[LandCover.URBAN], mean[LandCover.BUILDING], mean[LandCover.ROAD]) < 0.3
    assert mean[LandCover.WATER] < 0.0
    assert scene.optical.min() >= 0.0 and scene.optical.max() <= 1.0
    # water is the darkest class in the near infrared
    nir_means = {cls: float(nir[scene.landcover == cls].mean()) for cls in LandCover}
    assert min(nir_means, key=nir_means.__getitem__) == LandCover.WATER


def test_building_shadows_fall_away_from_the_sun():
    south_sun = generate_scene_pair(128, 128, seed=3, sun_azimuth=180.0, texture=False)
    bld = south_sun.landcover == LandCover.BUILDING
    ground = (south_sun.landcover == LandCover.URBAN)
    north_of = np.roll(bld, -1, axis=0) & ground  # ground just north of a building
    south_of = np.roll(bld, 1, axis=0) & ground
    nir = south_sun.optical[3]
    assert nir[north_of].mean() < 0.6 * nir[south_of].mean()


def test_training_pairs_are_reproducible_and_carry_the_shift():
    a = generate_training_pair(64, seed=5, max_shift=3.0)
    b = next(iter_training_pairs(1, 64, first_seed=5, max_shift=3.0))
    assert np.array_equal(a.sar_db, b.sar_db) and a.shift == b.shift
    assert all(abs(s) <= 3.0 for s in a.shift)
    assert a.sar_db.dtype == np.float32 and np.isfinite(a.sar_db).all()
    assert a.optical.shape == (4, 64, 64)
    shifts = [p.shift for p in iter_training_pairs(3, 32, first_seed=0)]
    assert len(set(shifts)) == 3
    batch = generate_training_batch(3, 32, seed=4, max_shift=0.0, looks=4.0)
    assert len(batch) == 3 and all(p.shift == (0.0, 0.0) and p.sar_db.shape == (32, 32) for p in batch)
    assert not np.array_equal(batch[0].optical, batch[1].optical)
    assert len(list(iter_training_pairs(5, 32, patches_per_scene=2))) == 5


def test_write_scene_pair_georeferenced_geotiffs(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    sar_p, opt_p = tmp_path / "sar.tif", tmp_path / "opt.tif"
    calls: list[float] = []
    out = write_scene_pair(sar_p, opt_p, width=80, height=64, pixel_size=5.0, seed=2, looks=3,
                           shift_x=1.25, shift_y=-0.5, progress=calls.append)
    assert out.sar_path == sar_p and calls[-1] == 100.0
    pair = generate_scene_pair(80, 64, seed=2, looks=3, shift_x=1.25, shift_y=-0.5, pixel_size=5.0)
    with rasterio.open(sar_p) as sar, rasterio.open(opt_p) as opt:
        for ds in (sar, opt):
            assert ds.crs.to_epsg() == 32631 and "UTM zone 31N" in ds.crs.to_wkt()
            assert tuple(ds.transform)[:6] == (5.0, 0.0, 500000.0, 0.0, -5.0, 5000000.0)
            assert (ds.width, ds.height) == (80, 64)
            truth = json.loads(ds.tags()[METADATA_TAG])
            assert (truth["shift_x"], truth["shift_y"], truth["seed"], truth["looks"]) == (1.25, -0.5, 2, 3.0)
        assert sar.descriptions == (SAR_DESCRIPTION,)
        assert opt.descriptions == OPTICAL_BANDS
        np.testing.assert_array_equal(sar.read(1), pair.sar)
        np.testing.assert_array_equal(opt.read(), pair.optical)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["opt.tif", "sar.tif"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 8}, "between 16 and 20000"),
        ({"height": 20001}, "between 16 and 20000"),
        ({"looks": 0.5}, "looks"),
        ({"width": 20000, "height": 20000}, "GB"),
        ({"crs": "EPSG:99999999"}, "EPSG:32631"),
        ({"crs": "EPSG:4326"}, "projected"),
        ({"shift_x": float("nan")}, "shift_x"),
        ({"shift_y": 100.0}, "shift_y"),
        ({"pixel_size": 0.0}, "pixel_size"),
        ({"seed": -1}, "seed"),
        ({"look_direction": "up"}, "east"),
    ],
)
def test_bad_parameters_raise_and_write_nothing(tmp_path, kwargs, message):
    args = {"width": 32, "height": 32} | kwargs
    with pytest.raises(InputError, match=message):
        write_scene_pair(tmp_path / "s.tif", tmp_path / "o.tif", **args)
    assert list(tmp_path.iterdir()) == []


def test_bad_generator_parameters():
    with pytest.raises(InputError, match="determinant"):
        generate_scene_pair(32, 32, seed=0, affine=[[3, 0], [0, 3]])
    with pytest.raises(InputError, match="2x2 or 2x3"):
        generate_scene_pair(32, 32, seed=0, affine=[[1, 0, 0, 0]])
    with pytest.raises(InputError, match="land-cover class"):
        generate_scene_pair(32, 32, seed=0, single_class=42)
    with pytest.raises(InputError, match="whole number"):
        generate_scene_pair(32.5, 32, seed=0)  # type: ignore[arg-type]


def test_cancel_and_unwritable_output_leave_nothing(tmp_path):
    with pytest.raises(CancelledError):
        write_scene_pair(tmp_path / "s.tif", tmp_path / "o.tif", width=32, height=32,
                         is_cancelled=lambda: True)
    assert list(tmp_path.iterdir()) == []
    calls = iter([False, False, True])  # cancel after generation, before the files are renamed
    with pytest.raises(CancelledError):
        write_scene_pair(tmp_path / "s.tif", tmp_path / "o.tif", width=32, height=32,
                         is_cancelled=lambda: next(calls, True))
    assert list(tmp_path.iterdir()) == []
    from engine.errors import RasterIOError

    with pytest.raises(RasterIOError):
        write_scene_pair(tmp_path / "missing" / "s.tif", tmp_path / "o.tif", width=32, height=32)
    with pytest.raises(InputError, match="different files"):
        write_scene_pair(tmp_path / "s.tif", tmp_path / "s.tif", width=32, height=32)
    assert list(tmp_path.iterdir()) == []
    assert not Path(tmp_path / "missing").exists()
