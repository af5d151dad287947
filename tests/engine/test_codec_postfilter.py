"""The restoration filter: streaming padding, least-squares fit, header, and the engine round trip."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.codec import fileformat
from engine.codec.decode import decompress_file
from engine.codec.encode import compress_raster
from engine.codec.models import MODELS_ENV
from engine.codec.postfilter import (
    VALUE_BINS,
    NormalEquations,
    PaddedRows,
    PostFilter,
    free_weights,
    taps,
)
from engine.errors import CancelledError, CompressedFileError
from engine.raster_io import OUTPUT_NODATA
from tests.conftest import FAKE_SHA256, write_test_geotiff
from tests.engine.tiny_codec import build_pair


def _stream(image: np.ndarray, splits: list[int], radius: int = 3) -> list[tuple[int, np.ndarray]]:
    rows = PaddedRows(image.shape[0], radius)
    out: list[tuple[int, np.ndarray]] = []
    for start, stop in zip([0, *splits], [*splits, image.shape[0]], strict=True):
        out += rows.push(image[start:stop])
    return out


@pytest.mark.parametrize(("height", "splits"), [(1, []), (2, [1]), (3, []), (5, [1, 2, 4]), (40, [7, 8, 30])])
def test_padded_rows_equal_numpy_symmetric_padding(height: int, splits: list[int]) -> None:
    image = np.random.default_rng(height).normal(size=(height, 6))
    expected = np.pad(image, 3, mode="symmetric")
    blocks = _stream(image, splits)
    tops = [top for top, _ in blocks]
    assert tops[0] == 0 and tops == sorted(tops)
    rebuilt = np.concatenate([padded[3:-3] for _, padded in blocks])
    np.testing.assert_array_equal(rebuilt, expected[3:-3])
    for top, padded in blocks:
        np.testing.assert_array_equal(padded, expected[top : top + padded.shape[0]])


def random_weights(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    weights = rng.normal(scale=0.05, size=free_weights())
    weights[-2] += 0.6  # a dominant centre, like a real restoration filter
    return weights


def random_filter(seed: int) -> PostFilter:
    return PostFilter.from_weights([random_weights(seed)])


def test_filter_is_point_symmetric_and_is_a_correlation() -> None:
    from scipy import ndimage

    filt = random_filter(1)
    kernel = filt.kernel().reshape(7, 7)
    np.testing.assert_array_equal(kernel, kernel[::-1, ::-1])
    assert filt.kernel().size == taps() and len(filt.coefficients[0]) == free_weights() == 26
    image = np.random.default_rng(2).normal(size=(20, 17))
    out = filt.apply(np.pad(image, 3, mode="symmetric"))
    reference = ndimage.correlate(image, kernel, mode="reflect") + filt.weights()[-1]
    np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-5)
    identity = PostFilter.identity()
    np.testing.assert_allclose(identity.apply(np.pad(image, 3, mode="symmetric")), image, rtol=1e-6)


def test_least_squares_recovers_a_known_filter_from_streamed_blocks() -> None:
    rng = np.random.default_rng(3)
    decoded = rng.normal(size=(50, 40))
    truth = random_filter(4)
    target = truth.apply(np.pad(decoded, 3, mode="symmetric")).astype(np.float64)
    valid = rng.random(decoded.shape) > 0.2
    target[~valid] = 1e6  # invalid pixels must not enter the fit
    stats = NormalEquations()
    for top, padded in _stream(decoded, [9, 10, 33]):
        n = padded.shape[0] - 6
        stats.add(padded, target[top : top + n], valid[top : top + n])
    assert stats.count == int(valid.sum())
    fitted = stats.best_filter(lam=None)
    assert fitted is not None and fitted.classes == 1
    np.testing.assert_allclose(fitted.weights(), truth.weights(), atol=2.0 ** -14)
    assert stats.squared_error(fitted.weights()) < 1e-6 < stats.squared_error(PostFilter.identity().weights())
    assert stats.best_filter(lam=1e12, max_classes=1) == fitted
    assert stats.best_filter(lam=1e-9) is None, "a filter that does not pay for its header bits is dropped"


def test_classes_by_decoded_value_are_found_where_the_best_filter_changes() -> None:
    """Dark pixels should be halved, bright ones kept: the fit splits the value bins at 0.5."""
    rng = np.random.default_rng(6)
    decoded = rng.uniform(0.0, 1.0, size=(60, 70))
    target = np.where(decoded < 0.5, 0.5 * decoded, decoded)
    stats = NormalEquations()
    for top, padded in _stream(decoded, [30]):
        n = padded.shape[0] - 6
        stats.add(padded, target[top : top + n], np.ones((n, 70), bool))
    single = stats.best_filter(lam=1e9, max_classes=1)
    split = stats.best_filter(lam=1e9, max_classes=4)
    assert single is not None and split is not None
    assert split.classes == 2 and split.bin_classes == (0,) * (VALUE_BINS // 2) + (1,) * (VALUE_BINS // 2)
    padded = np.pad(decoded, 3, mode="symmetric")
    np.testing.assert_allclose(split.apply(padded), target, atol=1e-3)
    assert np.abs(single.apply(padded) - target).max() > 0.05
    back = PostFilter.from_header(split.to_header())
    assert back == split


def test_too_few_pixels_give_no_filter() -> None:
    stats = NormalEquations()
    stats.add(np.zeros((7, 9)), np.zeros((1, 3)), np.ones((1, 3), bool))
    assert stats.best_filter(lam=None) is None


def test_header_keeps_the_filter_and_refuses_a_malformed_one() -> None:
    filt = random_filter(5)
    header = fileformat.CompressedHeader(
        width=4, height=3, crs_wkt=None, transform=(1.0, 0.0, 0.0, 0.0, -1.0, 0.0), source_dtype="float32",
        source_nodata=None, band=1, input_kind="db", db_min=-30.0, db_max=10.0, noise_floor_db=-40.0,
        model_id="m", weights_sha256=FAKE_SHA256, entropy_sha256="1" * 64, latent_channels=1, latent_height=1,
        latent_width=1, scale_factor=16, tile_size=64, overlap=32, valid_pixels=12,
        post_filter=filt.to_header(),
    )
    back = fileformat.CompressedHeader.from_json(header.to_json())
    assert PostFilter.from_header(back.post_filter) == filt
    broken = dict(filt.to_header(), coefficients=[list(filt.coefficients[0][:-1])])
    import dataclasses

    data = fileformat.pack(dataclasses.replace(header, post_filter=broken), b"", b"")
    with pytest.raises(CompressedFileError, match="restoration filter is malformed"):
        fileformat.unpack(data)


# ------------------------------------------------------------------ engine round trip
@pytest.fixture
def filter_models(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny codec with a training lambda large enough for a filter to pay on a small scene."""
    folder = tmp_path_factory.mktemp("codec_models_filter")
    build_pair(folder, "r1", lam="1e7")
    monkeypatch.setenv(MODELS_ENV, str(folder))
    return folder


def textured_db(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth dB field plus fine detail the tiny codec (16 x 16 means) blurs away."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    field = -12.0 + 8.0 * np.sin(xx / 23.0) * np.cos(yy / 19.0) + 3.0 * np.sin(xx / 5.0 + yy / 7.0)
    return (field + rng.normal(scale=0.3, size=field.shape)).astype(np.float32)


def _decoded(tmp_path: Path, name: str, src: Path, **kwargs: Any,
             ) -> tuple[np.ndarray, fileformat.CompressedFile]:
    import rasterio

    compress_raster(src, tmp_path / f"{name}.sarz", input_kind="db", rate="r1", **kwargs)
    decompress_file(tmp_path / f"{name}.sarz", tmp_path / f"{name}.tif")
    with rasterio.open(tmp_path / f"{name}.tif") as ds:
        return ds.read(1), fileformat.read_compressed(tmp_path / f"{name}.sarz")


def test_filter_lowers_the_error_and_is_stored_only_when_asked(tmp_path: Path, filter_models: Path) -> None:
    db = textured_db(150, 170, seed=1)
    db[:20, :30] = np.nan  # nodata stays nodata and is not fitted
    src = write_test_geotiff(tmp_path / "in.tif", np.nan_to_num(db, nan=-9999.0), nodata=-9999.0)
    plain, plain_file = _decoded(tmp_path, "plain", src, post_filter=False)
    filtered, filtered_file = _decoded(tmp_path, "filtered", src)
    assert not plain_file.header.post_filter
    assert PostFilter.from_header(filtered_file.header.post_filter) != PostFilter.identity()
    assert filtered_file.payload == plain_file.payload, "the filter changes no latent"
    valid = np.isfinite(db)
    assert np.all(filtered[~valid] == OUTPUT_NODATA) and np.all(plain[~valid] == OUTPUT_NODATA)
    assert np.all(filtered[valid] != OUTPUT_NODATA)
    plain_mse = float(np.mean((plain[valid] - db[valid]) ** 2))
    filtered_mse = float(np.mean((filtered[valid] - db[valid]) ** 2))
    assert filtered_mse < 0.9 * plain_mse, (plain_mse, filtered_mse)


def test_filter_is_skipped_when_it_does_not_pay(tmp_path: Path) -> None:
    """The default tiny model's lambda is small: ~800 header bits outweigh the error saved."""
    from tests.engine.tiny_codec import build_pair as build

    folder = tmp_path / "models"
    build(folder, "r1")
    messages: list[str] = []
    src = write_test_geotiff(tmp_path / "in.tif", textured_db(64, 64))
    compress_raster(src, tmp_path / "c.sarz", input_kind="db",
                    encoder_path=folder / "sarcodec-r1-encoder.onnx", log=messages.append)
    assert not fileformat.read_compressed(tmp_path / "c.sarz").header.post_filter
    assert any("would not pay" in m for m in messages)


def test_cancel_during_the_fitting_pass_writes_nothing(tmp_path: Path, filter_models: Path) -> None:
    src = write_test_geotiff(tmp_path / "in.tif", textured_db(150, 170))
    seen: list[float] = []

    def in_fitting_pass() -> bool:  # encoding reports up to 50 %, the fitting pass 50-95 %
        return bool(seen) and seen[-1] > 50.0

    with pytest.raises(CancelledError, match="Compression was cancelled"):
        compress_raster(src, tmp_path / "c.sarz", input_kind="db", rate="r1", is_cancelled=in_fitting_pass,
                        progress=seen.append)
    assert 50.0 < max(seen) < 95.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def test_decoded_pixels_do_not_depend_on_the_block_size(tmp_path: Path, filter_models: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows are converted, filtered and written in blocks; smaller blocks give the same bits."""
    import rasterio

    from engine.codec import decode

    src = write_test_geotiff(tmp_path / "in.tif", textured_db(150, 170, seed=2))
    compress_raster(src, tmp_path / "c.sarz", input_kind="db", rate="r1")
    assert fileformat.read_compressed(tmp_path / "c.sarz").header.post_filter
    images = []
    for rows in (decode.FLUSH_ROWS, 5):
        monkeypatch.setattr(decode, "FLUSH_ROWS", rows)
        decompress_file(tmp_path / "c.sarz", tmp_path / f"d{rows}.tif")
        with rasterio.open(tmp_path / f"d{rows}.tif") as ds:
            images.append(ds.read(1))
    np.testing.assert_array_equal(images[0], images[1])


def test_optimised_quantisation_lets_the_filter_use_value_classes(tmp_path: Path, filter_models: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.codec import encode, fit_filter

    asked: list[int] = []
    real = fit_filter.fit_post_filter

    def spy(*args: Any, **kwargs: Any) -> PostFilter | None:
        asked.append(kwargs["max_classes"])
        return real(*args, **kwargs)

    monkeypatch.setattr(encode, "fit_post_filter", spy)
    src = write_test_geotiff(tmp_path / "in.tif", textured_db(96, 96))
    compress_raster(src, tmp_path / "a.sarz", input_kind="db", rate="r1")
    compress_raster(src, tmp_path / "b.sarz", input_kind="db", rate="r1", rdo=True)
    assert asked == [1, encode.FILTER_CLASSES_RDO]


def test_without_the_decoder_beside_a_custom_encoder_no_filter_is_stored(tmp_path: Path,
                                                                          filter_models: Path) -> None:
    import shutil

    alone = tmp_path / "alone"
    alone.mkdir()
    encoder = shutil.copy(filter_models / "sarcodec-r1-encoder.onnx", alone / "custom-encoder.onnx")
    messages: list[str] = []
    src = write_test_geotiff(tmp_path / "in.tif", textured_db(96, 96))
    compress_raster(src, tmp_path / "c.sarz", input_kind="db", encoder_path=encoder, log=messages.append)
    assert not fileformat.read_compressed(tmp_path / "c.sarz").header.post_filter
    assert any("decoder was not found" in m for m in messages)
    decompress_file(tmp_path / "c.sarz", tmp_path / "d.tif")  # the bundled decoder (same model) decodes it


@pytest.mark.parametrize("shape", [(1, 1), (10, 10), (257, 3), (3, 257)])
def test_tiny_scenes_round_trip_with_a_filter(tmp_path: Path, shape: tuple[int, int],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """With a huge lambda every filter pays, even on a 1 x 1 scene: padding and streaming still hold."""
    import rasterio

    folder = tmp_path / "models"
    build_pair(folder, "r1", lam="1e15")
    monkeypatch.setenv(MODELS_ENV, str(folder))
    db = textured_db(*shape, seed=7)
    src = write_test_geotiff(tmp_path / "in.tif", db)
    compress_raster(src, tmp_path / "c.sarz", input_kind="db", rate="r1")
    header = fileformat.read_compressed(tmp_path / "c.sarz").header
    enough = shape[0] * shape[1] > free_weights()  # more pixels than unknowns
    assert bool(header.post_filter) == enough
    decompress_file(tmp_path / "c.sarz", tmp_path / "d.tif")
    with rasterio.open(tmp_path / "d.tif") as ds:
        values = ds.read(1)
    assert values.shape == shape and np.all(np.isfinite(values)) and np.all(values != OUTPUT_NODATA)
    assert float(np.mean(np.abs(values - db))) < 6.0


@pytest.mark.slow
def test_shipped_model_on_a_real_scene_stores_a_filter_that_lowers_the_error(
    tmp_path: Path, real_data_dir: Path,
) -> None:
    """The shipped r2 codec on a 384 x 384 crop of the real GF-3 sample (uint16 amplitude, zeros = nodata)."""
    import rasterio
    from rasterio.windows import Window as RioWindow

    from engine.codec.models import shipped_rates
    from engine.codec.quality.metrics import read_db

    if "r2" not in shipped_rates():
        pytest.skip("the r2 codec is not installed")
    scene = next((real_data_dir / "os_sift").glob("GF3*HH*.tif*"), None)
    if scene is None:
        pytest.skip("GF-3 sample not present")
    with rasterio.open(scene) as src:
        window = RioWindow(src.width // 2 - 192, src.height // 2 - 192, 384, 384)
        data = src.read(1, window=window)
        profile = dict(src.profile, width=384, height=384, transform=src.window_transform(window))
    crop = tmp_path / "gf3_crop.tif"
    with rasterio.open(crop, "w", **profile) as dst:
        dst.write(data, 1)
    reference = read_db(crop, 1, "amplitude", -35.0)
    errors = {}
    for post_filter in (False, True):
        sarz = tmp_path / f"pf{int(post_filter)}.sarz"
        compress_raster(crop, sarz, input_kind="amplitude", rate="r2", post_filter=post_filter)
        assert bool(fileformat.read_compressed(sarz).header.post_filter) == post_filter
        decompress_file(sarz, tmp_path / f"pf{int(post_filter)}.tif")
        decoded = read_db(tmp_path / f"pf{int(post_filter)}.tif", 1, "db")
        valid = np.isfinite(reference) & np.isfinite(decoded)
        assert valid.mean() > 0.9
        errors[post_filter] = float(np.mean((reference - decoded)[valid] ** 2))
    assert errors[True] < 0.995 * errors[False], errors


@pytest.fixture
def narrow_overlap_models(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The filter-friendly tiny codec with a 25 % tile overlap (like the shipped 512 / 64), so that each
    tile has an interior no other tile blends into."""
    folder = tmp_path_factory.mktemp("codec_models_narrow")
    build_pair(folder, "r1", lam="1e7", overlap=16)
    monkeypatch.setenv(MODELS_ENV, str(folder))
    return folder


def test_a_tile_decoded_alone_equals_the_blended_image_where_its_weight_is_one(
    tmp_path: Path, narrow_overlap_models: Path,
) -> None:
    """What the sampled fit of large scenes relies on."""
    from engine.codec.decode import _checked_table, decoded_blocks, decoded_tiles
    from engine.codec.layout import default_tiling
    from engine.codec.models import find_decoder

    src = write_test_geotiff(tmp_path / "in.tif", textured_db(300, 340, seed=4))
    compress_raster(src, tmp_path / "c.sarz", input_kind="db", rate="r1", post_filter=False)
    cf = fileformat.read_compressed(tmp_path / "c.sarz")
    decoder = find_decoder(cf.header.model_id, cf.header.weights_sha256)
    table = _checked_table(cf, decoder)
    tile, overlap = default_tiling(decoder.metadata, None, None)
    image = np.concatenate([v for _, v in decoded_blocks(cf, decoder, table, tile, overlap)])
    checked = 0
    for t, x, weights in decoded_tiles(cf, decoder, table, tile, overlap):
        rows = slice(t.read.row_off, min(t.read.row_end, image.shape[0]))
        cols = slice(t.read.col_off, min(t.read.col_end, image.shape[1]))
        alone = (weights == 1.0)[: rows.stop - rows.start, : cols.stop - cols.start]
        part = x[: rows.stop - rows.start, : cols.stop - cols.start]
        np.testing.assert_array_equal(part[alone], image[rows, cols][alone])
        checked += int(alone.sum())
    assert checked > 0.3 * image.size


def test_large_scenes_are_fitted_on_sampled_tiles(tmp_path: Path, narrow_overlap_models: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.codec import fit_filter

    db = textured_db(300, 340, seed=4)
    src = write_test_geotiff(tmp_path / "in.tif", db)
    whole, whole_file = _decoded(tmp_path, "whole", src)
    monkeypatch.setattr(fit_filter, "FIT_SAMPLE_PIXELS", 300 * 340 // 3)  # every 3rd tile
    monkeypatch.setattr(fit_filter, "MIN_SAMPLED_PIXELS", 1000)
    sampled, sampled_file = _decoded(tmp_path, "sampled", src)
    plain, _ = _decoded(tmp_path, "plain", src, post_filter=False)
    whole_filter = PostFilter.from_header(whole_file.header.post_filter)
    sampled_filter = PostFilter.from_header(sampled_file.header.post_filter)
    assert sampled_filter != whole_filter, "the sample, not the whole scene, was fitted"
    mse = {name: float(np.mean((values - db) ** 2)) for name, values in
           (("plain", plain), ("whole", whole), ("sampled", sampled))}
    assert mse["sampled"] < 0.9 * mse["plain"] and mse["sampled"] < 1.05 * mse["whole"], mse


def test_a_sample_that_falls_on_nodata_is_replaced_by_the_whole_scene(
    tmp_path: Path, narrow_overlap_models: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from engine.codec import fit_filter

    db = textured_db(300, 340, seed=5)
    src = write_test_geotiff(tmp_path / "in.tif", db)
    whole, whole_file = _decoded(tmp_path, "whole", src)
    monkeypatch.setattr(fit_filter, "FIT_SAMPLE_PIXELS", 300 * 340 // 3)
    monkeypatch.setattr(fit_filter, "MIN_SAMPLED_PIXELS", 10**9)  # no sample is ever enough
    fallback, fallback_file = _decoded(tmp_path, "fallback", src)
    assert fallback_file.header.post_filter == whole_file.header.post_filter
    np.testing.assert_array_equal(fallback, whole)


def test_the_tile_sample_walks_across_the_columns(tmp_path: Path, narrow_overlap_models: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15.10: every k-th tile with k a multiple of the tiles per row took one column of tiles only
    (at 2048 x 2048 and a 1 Mpix sample: the left edge), which fitted a worse filter."""
    from engine.codec import fit_filter
    from engine.codec.decode import _decoding_plan
    from engine.codec.layout import default_tiling
    from engine.runtime import read_metadata

    db = textured_db(300, 340, seed=6)
    src = write_test_geotiff(tmp_path / "in.tif", db)
    compress_raster(src, tmp_path / "c.sarz", input_kind="db", rate="r1", post_filter=False)
    header = fileformat.read_compressed(tmp_path / "c.sarz").header
    decoder_meta = read_metadata(narrow_overlap_models / "sarcodec-r1-decoder.onnx")
    tile, overlap = default_tiling(decoder_meta, None, None)
    plan = _decoding_plan(header, tile, overlap)
    columns = 1 + max(t.index[1] for t in plan)
    assert columns > 2
    monkeypatch.setattr(fit_filter, "FIT_SAMPLE_PIXELS", math.ceil(300 * 340 / columns))  # k = columns
    step = fit_filter._sampling_step(header, tile, overlap)
    sampled_columns = {t.index[1] for t in plan[::step]}
    assert step >= columns and len(sampled_columns) > 1


def test_the_fit_decodes_the_encoder_s_own_latents_into_the_same_file(
    tmp_path: Path, narrow_overlap_models: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 25.3: the sampled fit takes the sampled tiles' latents from the encoder instead of
    range-decoding the whole payload again; the file is byte for byte the one decoding gives."""
    from engine.codec import decode, encode, fit_filter

    src = write_test_geotiff(tmp_path / "in.tif", textured_db(300, 340, seed=7))
    monkeypatch.setattr(fit_filter, "FIT_SAMPLE_PIXELS", 300 * 340 // 3)  # every 3rd tile
    monkeypatch.setattr(fit_filter, "MIN_SAMPLED_PIXELS", 1000)
    strips = {"n": 0}
    real_strip = decode.LatentRows._decode_strip

    def counting(self: Any) -> np.ndarray:
        strips["n"] += 1
        return real_strip(self)

    monkeypatch.setattr(decode.LatentRows, "_decode_strip", counting)
    compress_raster(src, tmp_path / "own.sarz", input_kind="db", rate="r1")
    assert strips["n"] == 0, "the payload was range-decoded although the encoder had the latents"
    monkeypatch.setattr(encode, "_fit_sample", lambda job: None)
    compress_raster(src, tmp_path / "decoded.sarz", input_kind="db", rate="r1")
    assert strips["n"] > 0
    assert fileformat.read_compressed(tmp_path / "own.sarz").header.post_filter
    assert (tmp_path / "own.sarz").read_bytes() == (tmp_path / "decoded.sarz").read_bytes()
