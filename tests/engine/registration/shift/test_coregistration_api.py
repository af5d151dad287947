"""``coregister`` / ``apply_transform`` end to end on tiny seeded GeoTIFFs: results, outputs, bad inputs."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.errors import InputError, ModelError, RegistrationError
from engine.registration.shift import apply_transform
from engine.registration.shift import coregister as engine_coregister
from engine.synthetic import generate_scene_pair, write_scene_pair
from tests.conftest import FAKE_SHA256, coregistration_outputs, write_test_geotiff

coregister = partial(engine_coregister, method="classical")
"""These tests are about the search, the fits and the outputs: the fast classical method (the default,
``deep``, runs the same code on a learned embedding and has its own tests)."""

SIZE = 192


def _write(
    path: Path,
    data: np.ndarray,
    crs: str | None = "EPSG:32631",
    origin: tuple[float, float] = (0.0, 0.0),
    pixel: float = 10.0,
    nodata: float | None = None,
) -> Path:
    from rasterio.crs import CRS

    transform = (pixel, 0.0, 500000.0 + origin[0], 0.0, -pixel, 5000000.0 + origin[1])
    wkt = CRS.from_user_input(crs).to_wkt() if crs else None
    return write_test_geotiff(path, data.astype(np.float32), nodata, crs_wkt=wkt, transform=transform)


@pytest.fixture(scope="module")
def sar_sar(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, tuple[float, float]]:
    """Speckled SAR with known shift (input) and the clean aligned SAR (reference)."""
    d = tmp_path_factory.mktemp("sarsar")
    sx, sy = 4.37, -6.81  # synthetic convention: SAR content moved right/down
    pair = generate_scene_pair(SIZE, SIZE, seed=11, shift_x=sx, shift_y=sy)
    return _write(d / "sar.tif", pair.sar), _write(d / "ref.tif", pair.sigma0_aligned), (-sx, -sy)


@pytest.fixture(scope="module")
def sar_optical(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, tuple[float, float]]:
    d = tmp_path_factory.mktemp("saropt")
    files = write_scene_pair(
        d / "sar.tif", d / "opt.tif", width=SIZE, height=SIZE, seed=5, shift_x=-7.6, shift_y=3.25
    )
    return files.sar_path, files.optical_path, (7.6, -3.25)


def test_global_shift_recovered_within_0_2_px_sar_to_sar(
    sar_sar: tuple[Path, Path, tuple[float, float]],
) -> None:
    inp, ref, (tx, ty) = sar_sar
    r = coregister(inp, ref, max_shift=16)
    assert abs(r.shift_x - tx) < 0.2 and abs(r.shift_y - ty) < 0.2
    assert r.n_points == 1 and r.transform.kind == "shift"


def test_global_shift_sar_to_optical(sar_optical: tuple[Path, Path, tuple[float, float]]) -> None:
    inp, ref, (tx, ty) = sar_optical
    r = coregister(inp, ref, max_shift=16)
    assert abs(r.shift_x - tx) < 0.5 and abs(r.shift_y - ty) < 0.5
    assert r.method == "classical" and r.model_id


def test_local_grid_affine_fit_and_all_outputs(
    tmp_path: Path, sar_optical: tuple[Path, Path, tuple[float, float]]
) -> None:
    inp, ref, (tx, ty) = sar_optical
    out: dict[str, Any] = {
        k: tmp_path / n
        for k, n in [
            ("output_path", "out.tif"),
            ("tiepoints_path", "tp.gpkg"),
            ("gcp_path", "out.points"),
            ("report_path", "r.json"),
            ("checkerboard_path", "c.tif"),
        ]
    }
    r = coregister(
        inp,
        ref,
        mode="local",
        grid_spacing=40,
        window=80,
        max_shift=12,
        transform="affine",
        resample=True,
        **out,
    )
    assert r.n_measured == 9 and r.n_points >= 5
    assert abs(r.shift_x - tx) < 1.0 and abs(r.shift_y - ty) < 1.0  # 9 points on a 192 px scene
    assert r.rmse < r.rmse_before
    assert all(p.exists() for p in out.values())
    assert not list(tmp_path.glob(".*tmp*"))
    # GeoPackage fields
    from osgeo import ogr

    ds = ogr.Open(str(out["tiepoints_path"]))
    layer = ds.GetLayer(0)
    names = {
        layer.GetLayerDefn().GetFieldDefn(i).GetName() for i in range(layer.GetLayerDefn().GetFieldCount())
    }
    assert {"dx", "dy", "reliability", "residual", "used"} <= names
    assert layer.GetFeatureCount() == r.n_measured
    assert sum(f.GetField("used") for f in layer) == r.n_points
    # .points file (QGIS 3.22 Georeferencer)
    lines = out["gcp_path"].read_text().splitlines()
    assert lines[0].startswith("#CRS: ") and "UTM zone 31N" in lines[0]
    assert lines[1] == "mapX,mapY,pixelX,pixelY,enable,dX,dY,residual"
    rows = np.array([[float(v) for v in line.split(",")] for line in lines[2:]])
    assert rows.shape == (r.n_measured, 8)
    p = r.tiepoints[0]
    np.testing.assert_allclose(rows[0, 2:4], [p.x, -p.y])
    np.testing.assert_allclose(rows[0, 0:2], [500000.0 + 10 * p.ref_x, 5000000.0 - 10 * p.ref_y])
    assert set(rows[:, 4]) <= {0.0, 1.0} and rows[:, 4].sum() == r.n_points
    np.testing.assert_allclose(rows[:, 7], np.hypot(rows[:, 5], rows[:, 6]))
    # report
    rep = json.loads(out["report_path"].read_text())
    assert rep["transform"] == "affine" and rep["n_points_used"] == r.n_points
    assert rep["method"] == "classical" and rep["model_id"] == r.model_id
    assert rep["rmse_after"] == pytest.approx(r.rmse)
    # warped output on the input grid
    import rasterio

    with rasterio.open(out["output_path"]) as a, rasterio.open(inp) as b:
        assert a.transform == b.transform and a.crs == b.crs and a.shape == b.shape
    assert out["checkerboard_path"].read_bytes()[:4] == b"II*\x00"


def test_shift_only_output_keeps_pixels_and_updates_transform(
    tmp_path: Path, sar_sar: tuple[Path, Path, tuple[float, float]]
) -> None:
    import rasterio

    inp, ref, _ = sar_sar
    out = tmp_path / "shifted.tif"
    r = coregister(inp, ref, max_shift=16, output_path=out, report_path=tmp_path / "r.json")
    with rasterio.open(out) as a, rasterio.open(inp) as b:
        np.testing.assert_array_equal(a.read(), b.read())
        assert a.crs == b.crs
        # input pixel (0, 0) now sits where the reference shows its content
        assert a.transform.c == pytest.approx(b.transform.c + 10 * r.shift_x)
        assert a.transform.f == pytest.approx(b.transform.f - 10 * r.shift_y)
        assert a.transform.a == pytest.approx(10.0)
    # the saved report applies the same correction to another raster
    out2 = tmp_path / "again.tif"
    res = apply_transform(tmp_path / "r.json", inp, out2)
    assert res.written_as == "geotransform"
    with rasterio.open(out2) as a, rasterio.open(out) as b:
        assert a.transform.almost_equals(b.transform, precision=1e-6)


def test_reference_on_another_grid_is_resampled(tmp_path: Path) -> None:
    pair = generate_scene_pair(SIZE, SIZE, seed=8, shift_x=2.4, shift_y=-1.3)
    inp = _write(tmp_path / "sar.tif", pair.sar)
    # reference: same scene, 2x coarser pixels, other origin -> read through a WarpedVRT
    coarse = pair.sigma0_aligned.reshape(SIZE // 2, 2, SIZE // 2, 2).mean(axis=(1, 3))
    ref = _write(tmp_path / "ref.tif", coarse, pixel=20.0)
    r = coregister(inp, ref, max_shift=8)
    assert abs(r.shift_x + 2.4) < 0.5 and abs(r.shift_y - 1.3) < 0.5


def test_reference_in_another_crs_is_reprojected(tmp_path: Path) -> None:
    from osgeo import gdal

    pair = generate_scene_pair(SIZE, SIZE, seed=8, shift_x=-3.7, shift_y=2.2)
    inp = _write(tmp_path / "sar.tif", pair.sar)
    ref_utm = _write(tmp_path / "ref_utm.tif", pair.sigma0_aligned)
    ref = tmp_path / "ref_3857.tif"  # Web Mercator, other pixel size and orientation of the grid
    gdal.Warp(str(ref), str(ref_utm), dstSRS="EPSG:3857", resampleAlg="cubic")
    r = coregister(inp, ref, max_shift=8)
    assert abs(r.shift_x - 3.7) < 0.5 and abs(r.shift_y + 2.2) < 0.5


# ------------------------------------------------------------------ bad inputs
def _assert_nothing_written(folder: Path, before: set[str]) -> None:
    assert {p.name for p in folder.iterdir()} == before


def test_rasters_that_do_not_overlap(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.tif", np.random.default_rng(0).random((64, 64)))
    b = _write(tmp_path / "b.tif", np.random.default_rng(1).random((64, 64)), origin=(5000.0, 0.0))
    before = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(InputError, match="do not overlap"):
        coregister(a, b, **coregistration_outputs(tmp_path))
    _assert_nothing_written(tmp_path, before)


@pytest.mark.parametrize("missing", ["reference", "input"])
def test_crs_on_one_side_only(tmp_path: Path, missing: str) -> None:
    img = np.random.default_rng(0).random((64, 64))
    with_crs = _write(tmp_path / "with.tif", img)
    without = _write(tmp_path / "without.tif", img, crs=None)
    before = {p.name for p in tmp_path.iterdir()}
    args = (with_crs, without) if missing == "reference" else (without, with_crs)
    with pytest.raises(InputError, match=f"{missing} raster .* has no CRS"):
        coregister(*args, **coregistration_outputs(tmp_path))
    _assert_nothing_written(tmp_path, before)


def test_a_rotated_input_is_refused_before_any_search(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review finding 6: a warp GDAL cannot do is refused at planning, not after the measurement."""
    import engine.registration.shift.api as api

    def no_search(*args: Any) -> Any:
        raise AssertionError("the feature extractor was loaded: the refusal came after planning")

    pair = generate_scene_pair(SIZE, SIZE, seed=8, shift_x=2.4, shift_y=-1.3)
    rotated = (10.0, 0.5, 500000.0, 0.5, -10.0, 5000000.0)
    inp = write_test_geotiff(tmp_path / "in.tif", pair.sar.astype(np.float32), transform=rotated)
    ref = write_test_geotiff(tmp_path / "ref.tif", pair.sigma0_aligned.astype(np.float32), transform=rotated)
    monkeypatch.setattr(api, "make_extractor", no_search)
    out = tmp_path / "out.tif"
    with pytest.raises(InputError, match=r"rotated geotransform.*RESAMPLE=false"):
        coregister(inp, ref, output_path=out, resample=True)
    assert not out.exists()


def test_shift_beyond_max_shift(tmp_path: Path) -> None:
    pair = generate_scene_pair(SIZE, SIZE, seed=11, shift_x=20.0, shift_y=0.0)
    inp, ref = _write(tmp_path / "sar.tif", pair.sar), _write(tmp_path / "ref.tif", pair.sigma0_aligned)
    before = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(RegistrationError, match="MAX_SHIFT=6"):
        coregister(inp, ref, max_shift=6, **coregistration_outputs(tmp_path))
    _assert_nothing_written(tmp_path, before)


def test_too_few_reliable_tie_points(
    tmp_path: Path, sar_optical: tuple[Path, Path, tuple[float, float]]
) -> None:
    inp, ref, _ = sar_optical
    before = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(RegistrationError, match=r"Only \d+ reliable tie points .* poly3 .* TRANSFORM=poly2"):
        coregister(
            inp,
            ref,
            mode="local",
            grid_spacing=64,
            window=64,
            max_shift=12,
            transform="poly3",
            **coregistration_outputs(tmp_path),
        )
    _assert_nothing_written(tmp_path, before | {"t.gpkg"})  # only the tie points, to show why


def test_masked_areas_give_no_tie_points(tmp_path: Path) -> None:
    pair = generate_scene_pair(SIZE, SIZE, seed=11, shift_x=1.5, shift_y=0.5)
    sar = pair.sar.copy()
    sar[:, : SIZE // 2] = -9999.0  # left half nodata
    inp = _write(tmp_path / "sar.tif", sar, nodata=-9999.0)
    ref = _write(tmp_path / "ref.tif", pair.sigma0_aligned)
    r = coregister(inp, ref, mode="local", grid_spacing=40, window=64, max_shift=8, transform="shift")
    assert r.n_skipped > 0
    assert r.tiepoints and all(p.x - 16 >= SIZE // 2 for p in r.tiepoints)  # centre half valid


def test_deep_without_model_and_model_of_wrong_task(
    tmp_path: Path, identity_model: Path, sar_sar: tuple[Path, Path, tuple[float, float]]
) -> None:
    inp, ref, _ = sar_sar
    before = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(ModelError, match="'embed'"):
        coregister(inp, ref, method="deep", model_path=identity_model, **coregistration_outputs(tmp_path))
    _assert_nothing_written(tmp_path, before)


def test_deep_without_bundled_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sar_sar: tuple[Path, Path, tuple[float, float]]
) -> None:
    from engine.registration.shift import deep

    empty = tmp_path / "models"
    empty.mkdir()
    monkeypatch.setattr(deep, "models_dir", lambda: empty)
    inp, ref, _ = sar_sar
    expected = r"no registration .* model was found among the bundled models; use METHOD=classical"
    with pytest.raises(RegistrationError, match=expected):
        coregister(inp, ref, method="deep")


def test_bad_parameters(sar_sar: tuple[Path, Path, tuple[float, float]]) -> None:
    inp, ref, _ = sar_sar
    with pytest.raises(InputError, match="MODE=local"):
        coregister(inp, ref, transform="affine")
    with pytest.raises(InputError, match="WINDOW"):
        coregister(inp, ref, mode="local", window=8)
    with pytest.raises(InputError, match="METHOD"):
        coregister(inp, ref, method="magic")


@pytest.mark.slow
def test_poly2_warp_and_apply_from_tiepoints(
    tmp_path: Path, sar_optical: tuple[Path, Path, tuple[float, float]]
) -> None:
    import rasterio

    inp, ref, (tx, ty) = sar_optical
    tp = tmp_path / "tp.gpkg"
    r = coregister(
        inp,
        ref,
        mode="local",
        grid_spacing=24,
        window=64,
        max_shift=12,
        transform="poly2",
        output_path=tmp_path / "poly.tif",
        tiepoints_path=tp,
        report_path=tmp_path / "r.json",
    )
    assert r.transform.kind == "poly2" and r.n_points >= 8
    assert abs(r.shift_x - tx) < 1.0 and abs(r.shift_y - ty) < 1.0
    with rasterio.open(tmp_path / "poly.tif") as a, rasterio.open(inp) as b:
        assert a.transform == b.transform and a.shape == b.shape  # warped onto the input's grid
    again = coregister(tmp_path / "poly.tif", ref, max_shift=12)  # the warped raster now matches
    assert np.hypot(again.shift_x, again.shift_y) < 1.0 < np.hypot(tx, ty) / 5
    res = apply_transform(tp, inp, tmp_path / "from_tp.tif", transform="shift")
    assert res.transform == "shift" and res.written_as == "geotransform"
    with rasterio.open(tmp_path / "from_tp.tif") as a, rasterio.open(inp) as b:
        assert abs((a.transform.c - b.transform.c) / 10 - r.shift_x) < 1.0
    with pytest.raises(InputError, match="poly2"):
        apply_transform(tmp_path / "r.json", inp, tmp_path / "x.tif", transform="affine")
    assert not (tmp_path / "x.tif").exists()


def test_cancel_writes_nothing(tmp_path: Path, sar_sar: tuple[Path, Path, tuple[float, float]]) -> None:
    from engine.errors import CancelledError

    inp, ref, _ = sar_sar
    before = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(CancelledError):
        coregister(
            inp,
            ref,
            mode="local",
            window=64,
            grid_spacing=32,
            is_cancelled=lambda: True,
            **coregistration_outputs(tmp_path),
        )
    _assert_nothing_written(tmp_path, before)


def test_apply_transform_refuses_another_crs(
    tmp_path: Path, sar_sar: tuple[Path, Path, tuple[float, float]]
) -> None:
    inp, ref, _ = sar_sar
    coregister(inp, ref, max_shift=16, report_path=tmp_path / "r.json")
    other = _write(tmp_path / "other.tif", np.ones((32, 32)), crs="EPSG:4326", pixel=0.001)
    with pytest.raises(InputError, match="another CRS"):
        apply_transform(tmp_path / "r.json", other, tmp_path / "o.tif")
    assert not (tmp_path / "o.tif").exists()


def _tiny_embed_model(path: Path) -> Path:
    """A ``Task.EMBED`` ONNX model: 4 fixed oriented-gradient filters, |.|, 3x3 average (no training)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from engine.metadata import InputTransform, ModelMetadata, Normalisation, Task

    k = np.zeros((4, 1, 3, 3), np.float32)
    k[0, 0, 1] = [-1, 0, 1]
    k[1, 0, :, 1] = [-1, 0, 1]
    k[2, 0] = np.diag([-1, 0, 1])
    k[3, 0] = np.fliplr(np.diag([-1, 0, 1]))
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["g"], pads=[1, 1, 1, 1]),
        helper.make_node("Abs", ["g"], ["a"]),
        helper.make_node("AveragePool", ["a"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_embed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, "H", "W"])],
        [numpy_helper.from_array(k, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = ModelMetadata(
        task=Task.EMBED,
        model_id="tiny-embed",
        weights_sha256=FAKE_SHA256,
        input_bands=1,
        input_transform=InputTransform.INTENSITY_TO_DB,
        normalisation=Normalisation.MINMAX,
        db_min=-30.0,
        db_max=10.0,
        tile_size=64,
        overlap=8,
        latent_channels=4,
    )
    for key, value in meta.to_props().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


def test_learned_embedding_model_plugs_into_the_same_search(
    tmp_path: Path, sar_sar: tuple[Path, Path, tuple[float, float]]
) -> None:
    inp, ref, (tx, ty) = sar_sar
    model = _tiny_embed_model(tmp_path / "embed.onnx")
    r = coregister(inp, ref, method="deep", model_path=model, max_shift=16, report_path=tmp_path / "r.json")
    assert abs(r.shift_x - tx) < 0.5 and abs(r.shift_y - ty) < 0.5
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["method"] == "deep" and rep["model_id"] == "tiny-embed"
