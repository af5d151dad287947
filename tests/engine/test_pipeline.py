"""Tiled pipeline: identity property test, streaming, masks, callbacks and bad inputs."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import CancelledError, InputError, ModelError, RasterIOError, UnsupportedDataError
from engine.metadata import InputTransform, Normalisation, Task
from engine.pipeline import apply_tiled, run_model
from engine.raster_io import OUTPUT_NODATA, inspect_raster, read_window
from engine.runtime import OnnxModel
from engine.tiling import BLEND_MODES, Window
from tests.conftest import write_test_geotiff
from tests.engine.strategies import Tiling, tilings
from training.onnx_io import attach_metadata, build_identity_model, identity_metadata


def identity(batch: np.ndarray) -> np.ndarray:
    return batch.copy()


TileFn = Callable[[np.ndarray], np.ndarray]


@pytest.fixture(scope="module")
def onnx_identity_runs(identity_model_factory: Callable[..., Path]) -> dict[int, TileFn]:
    """``{bands: OnnxModel(identity).run}`` (dynamic tile size, so any tile size works)."""
    return {b: OnnxModel(identity_model_factory(bands=b), intra_op_threads=1).run for b in (1, 2)}


@settings(max_examples=50, deadline=None)
@given(tiling=tilings((8, 64)), bands=st.integers(1, 2), batch_size=st.integers(1, 5),
       blend=st.sampled_from(BLEND_MODES), seed=st.integers(0, 2**16))
def test_identity_model_through_tiles_reproduces_input(
    onnx_identity_runs: dict[int, TileFn], tiling: Tiling, bands: int, batch_size: int, blend: str, seed: int
) -> None:
    height, width, tile_size, overlap = tiling
    x = np.random.default_rng(seed).uniform(-50.0, 50.0, (bands, height, width)).astype(np.float32)
    y = apply_tiled(x, onnx_identity_runs[bands], tile_size=tile_size, overlap=overlap,
                    batch_size=batch_size, blend=blend)
    assert y is not None and y.shape == x.shape
    assert float(np.abs(y - x).max()) <= 1e-5


def test_invalid_pixels_are_masked_and_not_propagated() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((1, 30, 41)).astype(np.float32)
    x[0, 5, 7] = np.nan
    x[0, 20:23, 30:40] = np.nan
    seen = []

    def blur(batch: np.ndarray) -> np.ndarray:
        seen.append(np.isfinite(batch).all())
        return np.repeat(batch.mean(axis=(2, 3), keepdims=True), batch.shape[2], 2).repeat(batch.shape[3], 3)

    y = apply_tiled(x, blur, tile_size=16, overlap=4)
    assert y is not None and all(seen)  # the model never sees NaN
    assert np.isnan(y[0, 5, 7]) and np.isnan(y[0, 20:23, 30:40]).all()
    assert np.isfinite(y).sum() == x.size - 31


def test_streaming_writes_strips_top_to_bottom_from_a_reader() -> None:
    x = np.random.default_rng(1).random((2, 53, 37)).astype(np.float32)
    reads: list[Window] = []
    strips: list[tuple[Window, np.ndarray]] = []

    def read(window: Window) -> np.ndarray:
        reads.append(window)
        out = np.full((2, window.height, window.width), np.nan, np.float32)
        inside = window.intersection(Window(0, 0, 53, 37))
        out[(slice(None), *inside.relative_to(window).slices())] = x[(slice(None), *inside.slices())]
        return out

    def two_channels(batch: np.ndarray) -> np.ndarray:
        return np.concatenate([batch[:, :1], 2 * batch[:, 1:]], axis=1)

    result = apply_tiled(read, two_channels, tile_size=16, overlap=6, shape=(53, 37),
                         write=lambda w, d: strips.append((w, d.copy())))
    assert result is None
    assert all(w.height == 16 for w in reads)  # one strip of tile height per tile row
    rows = [w.row_off for w, _ in strips]
    assert rows == sorted(rows) and rows[0] == 0
    assert sum(w.height for w, _ in strips) == 53 and all(w.width == 37 for w, _ in strips)
    stitched = np.concatenate([d for _, d in strips], axis=1)
    np.testing.assert_allclose(stitched[0], x[0], atol=1e-6)
    np.testing.assert_allclose(stitched[1], 2 * x[1], atol=1e-5)


def test_progress_and_cancellation_between_batches() -> None:
    x = np.ones((40, 40), np.float32)
    values: list[float] = []
    apply_tiled(x, identity, tile_size=8, overlap=2, batch_size=3, progress=values.append)
    assert values[0] == 0.0 and values[-1] == 100.0 and values == sorted(values)
    calls = iter(range(100))
    with pytest.raises(CancelledError):
        apply_tiled(x, identity, tile_size=8, overlap=2, is_cancelled=lambda: next(calls) >= 2)


def test_non_dense_model_output_is_refused() -> None:
    with pytest.raises(ModelError, match="dense"):
        apply_tiled(np.ones((20, 20), np.float32), lambda b: b[:, :, ::2, ::2], tile_size=8, overlap=2)


def test_bad_arguments() -> None:
    with pytest.raises(InputError, match="shape"):
        apply_tiled(lambda w: np.zeros((1, w.height, w.width)), identity, tile_size=8, overlap=0)
    with pytest.raises(InputError, match="Batch size"):
        apply_tiled(np.ones((4, 4)), identity, tile_size=8, overlap=0, batch_size=0)
    with pytest.raises(InputError, match="blend"):
        apply_tiled(np.ones((4, 4)), identity, tile_size=8, overlap=0, blend="max")


# ----------------------------------------------------------------------------- run_model
def test_run_model_identity_keeps_values_and_georeferencing(
    make_geotiff: Callable[..., Path], identity_model: Path, tmp_path: Path
) -> None:
    src = make_geotiff(height=45, width=70, nodata=-1.0, holes=0.1, descriptions=("sigma0 VV",))
    out = tmp_path / "out.tif"
    progress: list[float] = []
    messages: list[str] = []
    result = run_model(identity_model, src, out, batch_size=3, progress=progress.append, log=messages.append)
    raw = read_window(src, 1, Window(0, 0, 45, 70))
    got = read_window(out, 1, Window(0, 0, 45, 70))
    valid = raw != -1.0
    np.testing.assert_allclose(got[valid], raw[valid], atol=1e-5)
    assert (got[~valid] == OUTPUT_NODATA).all()
    a, b = inspect_raster(src), inspect_raster(out)
    assert (b.crs_wkt, b.transform, b.shape) == (a.crs_wkt, a.transform, a.shape)
    assert b.nodata == OUTPUT_NODATA and b.descriptions == ("sigma0 VV",) and b.dtypes == ("float32",)
    assert result.valid_pixels == int(valid.sum()) and result.bands == 1 and result.tiles > 1
    assert result.provider == "CPUExecutionProvider" and progress[-1] == 100.0 and messages
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "out.tif"]


def test_run_model_applies_the_models_db_normalisation(
    make_geotiff: Callable[..., Path], tmp_path: Path
) -> None:
    model_path = build_identity_model(tmp_path / "db.onnx", tile_size=16, overlap=4)
    attach_metadata(model_path, identity_metadata(tile_size=16, overlap=4).with_updates(
        task=Task.TRANSLATE, input_transform=InputTransform.INTENSITY_TO_DB,
        normalisation=Normalisation.MINMAX, db_min=-25.0, db_max=5.0))
    src = make_geotiff(height=20, width=30, nodata=None, holes=0)
    raw = read_window(src, 1, Window(0, 0, 20, 30))
    model = OnnxModel(model_path)
    run_model(model, src, tmp_path / "db.tif", blend="feather")
    expected = np.clip(10 * np.log10(raw), -25.0, 5.0)
    np.testing.assert_allclose(read_window(tmp_path / "db.tif", 1, Window(0, 0, 20, 30)), expected, atol=1e-4)
    run_model(model, src, tmp_path / "lin.tif", output_transform="linear", input_kind="intensity")
    lin = read_window(tmp_path / "lin.tif", 1, Window(0, 0, 20, 30))
    np.testing.assert_allclose(lin, 10 ** (expected / 10), rtol=1e-4)
    run_model(model, src, tmp_path / "raw.tif", output_transform="none")
    np.testing.assert_allclose(read_window(tmp_path / "raw.tif", 1, Window(0, 0, 20, 30)),
                               (expected + 25) / 30, atol=1e-5)


def test_run_model_multiband_input(make_geotiff: Callable[..., Path],
                                   identity_model_factory: Callable[..., Path], tmp_path: Path) -> None:
    src = make_geotiff(height=18, width=25, bands=3, nodata=None, holes=0)
    result = run_model(identity_model_factory(bands=2, tile_size=16, overlap=4), src, tmp_path / "o.tif",
                       band=[3, 1])
    assert result.bands == 2
    got = read_window(tmp_path / "o.tif", [1, 2], Window(0, 0, 18, 25))
    np.testing.assert_allclose(got, read_window(src, [3, 1], Window(0, 0, 18, 25)), atol=1e-6)
    with pytest.raises(InputError, match="2 input band"):
        run_model(identity_model_factory(bands=2, tile_size=16, overlap=4), src, tmp_path / "x.tif", band=1)


# ----------------------------------------------------------------------------- bad inputs
def assert_nothing_written(folder: Path, *allowed: str) -> None:
    assert sorted(p.name for p in folder.iterdir()) == sorted(allowed)


def test_missing_input(identity_model: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        run_model(identity_model, tmp_path / "missing.tif", tmp_path / "o.tif")
    assert_nothing_written(tmp_path)


def test_text_file_input(identity_model: Path, tmp_path: Path) -> None:
    (tmp_path / "a.tif").write_text("hello")
    with pytest.raises(InputError, match="not a raster"):
        run_model(identity_model, tmp_path / "a.tif", tmp_path / "o.tif")
    assert_nothing_written(tmp_path, "a.tif")


def test_truncated_input(identity_model: Path, tmp_path: Path) -> None:
    data = np.random.default_rng(0).random((200, 300)).astype(np.float32)
    src = write_test_geotiff(tmp_path / "in.tif", data)
    src.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(RasterIOError, match="truncated"):
        run_model(identity_model, src, tmp_path / "o.tif")
    assert_nothing_written(tmp_path, "in.tif")


def test_all_nodata_input(identity_model: Path, tmp_path: Path) -> None:
    src = write_test_geotiff(tmp_path / "in.tif", np.full((20, 30), -1.0, np.float32), nodata=-1.0)
    with pytest.raises(InputError, match="no valid pixel"):
        run_model(identity_model, src, tmp_path / "o.tif")
    assert_nothing_written(tmp_path, "in.tif")


def test_complex_input(identity_model: Path, tmp_path: Path) -> None:
    src = write_test_geotiff(tmp_path / "in.tif", np.ones((8, 8), np.complex64))
    with pytest.raises(UnsupportedDataError, match="intensity"):
        run_model(identity_model, src, tmp_path / "o.tif")
    assert_nothing_written(tmp_path, "in.tif")


def test_band_out_of_range(identity_model: Path, make_geotiff: Callable[..., Path], tmp_path: Path) -> None:
    src = make_geotiff()
    with pytest.raises(InputError, match="Band 2 does not exist"):
        run_model(identity_model, src, tmp_path / "o.tif", band=2)
    assert_nothing_written(tmp_path, "in.tif")


def test_unwritable_output(identity_model: Path, make_geotiff: Callable[..., Path], tmp_path: Path) -> None:
    src = make_geotiff()
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(RasterIOError, match="not a folder"):
        run_model(identity_model, src, tmp_path / "file.txt" / "out.tif")
    assert_nothing_written(tmp_path, "in.tif", "file.txt")


def test_model_without_metadata_or_wrong_task(make_geotiff: Callable[..., Path], tmp_path: Path) -> None:
    import onnx

    src = make_geotiff()
    models = tmp_path / "models"
    models.mkdir()
    bare = build_identity_model(models / "bare.onnx")
    proto = onnx.load(str(bare))
    del proto.metadata_props[:]
    onnx.save(proto, str(bare))
    with pytest.raises(ModelError, match="no SAR Toolbox metadata"):
        run_model(bare, src, tmp_path / "o.tif")
    encoder = build_identity_model(models / "enc.onnx")
    attach_metadata(encoder, identity_metadata().with_updates(task=Task.COMPRESS_ENCODER))
    with pytest.raises(ModelError, match="compress-encoder"):
        run_model(encoder, src, tmp_path / "o.tif")
    assert_nothing_written(tmp_path, "in.tif", "models")


def test_cancellation_mid_run_leaves_nothing(identity_model: Path, make_geotiff: Callable[..., Path],
                                             tmp_path: Path) -> None:
    src = make_geotiff(height=100, width=100)
    progress: list[float] = []
    with pytest.raises(CancelledError):
        run_model(identity_model, src, tmp_path / "o.tif", batch_size=1, progress=progress.append,
                  is_cancelled=lambda: len(progress) > 10)
    assert 0 < progress[-1] < 100
    assert_nothing_written(tmp_path, "in.tif")


def test_failure_keeps_an_existing_output(identity_model: Path, make_geotiff: Callable[..., Path],
                                          tmp_path: Path) -> None:
    src = make_geotiff()
    shutil.copy(src, tmp_path / "o.tif")
    before = (tmp_path / "o.tif").read_bytes()
    with pytest.raises(CancelledError):
        run_model(identity_model, src, tmp_path / "o.tif", is_cancelled=lambda: True)
    assert (tmp_path / "o.tif").read_bytes() == before
    assert_nothing_written(tmp_path, "in.tif", "o.tif")


def test_nodata_override_masks_that_value(identity_model: Path, tmp_path: Path) -> None:
    data = np.full((12, 12), 0.5, np.float32)
    data[2:4, 5:9] = 7.0
    src = write_test_geotiff(tmp_path / "in.tif", data, nodata=None)
    result = run_model(identity_model, src, tmp_path / "o.tif", nodata=7.0, blend="none")
    out = read_window(tmp_path / "o.tif", 1, Window(0, 0, 12, 12))
    assert (out[2:4, 5:9] == OUTPUT_NODATA).all() and result.valid_pixels == 144 - 8
    np.testing.assert_allclose(out[data == 0.5], 0.5)
