"""Encode -> file -> decode with tiny onnx.helper codec models (no torch, no trained weights)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.codec import fileformat
from engine.codec.decode import decompress_file
from engine.codec.encode import compress_raster
from engine.codec.models import MODELS_ENV, bundled_codec, shipped_rates
from engine.errors import (
    CancelledError,
    CompressedFileError,
    InputError,
    ModelError,
    UnsupportedDataError,
)
from tests.conftest import TEST_TRANSFORM, utm31_wkt, write_test_geotiff
from tests.engine.tiny_codec import DB_MAX, DB_MIN, build_pair

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("codec_models")
    build_pair(folder, "r1")
    return folder


@pytest.fixture(autouse=True)
def _use_tiny_models(tiny_models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODELS_ENV, str(tiny_models))


def smooth_db(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth dB field inside the model range."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    phase = rng.uniform(0, 6, 2)
    return (-12.0 + 9.0 * np.sin(xx / 37.0 + phase[0]) * np.cos(yy / 29.0 + phase[1])).astype(np.float32)


def read(path: Path) -> tuple[np.ndarray, Any]:
    import rasterio

    with rasterio.open(path) as src:
        return src.read(1), src.profile


def roundtrip(tmp_path: Path, data: np.ndarray, nodata: float | None = None, kind: str = "intensity",
              output_kind: str = "db", **kwargs: Any) -> tuple[np.ndarray, Any, fileformat.CompressedFile]:
    src = write_test_geotiff(tmp_path / "in.tif", data, nodata=nodata)
    result = compress_raster(src, tmp_path / "out.sarz", input_kind=kind, rate="r1", **kwargs)
    assert result.path.stat().st_size == result.bytes
    assert result.bpp == pytest.approx(8 * result.bytes / (data.shape[0] * data.shape[1]))
    decompress_file(tmp_path / "out.sarz", tmp_path / "dec.tif", output_kind=output_kind)
    values, profile = read(tmp_path / "dec.tif")
    return values, profile, fileformat.read_compressed(tmp_path / "out.sarz")


def test_bundled_codec_lookup(tiny_models: Path) -> None:
    assert shipped_rates() == ["r1"]
    enc, dec = bundled_codec("r1")
    assert enc.parent == tiny_models and dec.name == "sarcodec-r1-decoder.onnx"
    with pytest.raises(InputError, match=r"r9.*r1"):
        bundled_codec("r9")


@pytest.mark.parametrize("shape", [(1, 1), (10, 10), (257, 3), (3, 257)])
def test_tiny_inputs_round_trip_with_georeferencing(tmp_path: Path, shape: tuple[int, int]) -> None:
    db = smooth_db(*shape)
    values, profile, cf = roundtrip(tmp_path, (10 ** (db / 10)).astype(np.float32))
    assert values.shape == shape
    assert profile["dtype"] == "float32"
    assert tuple(profile["transform"])[:6] == TEST_TRANSFORM
    from rasterio.crs import CRS

    assert profile["crs"] == CRS.from_wkt(utm31_wkt())
    assert cf.header.width == shape[1] and cf.header.height == shape[0]
    assert np.all((values >= DB_MIN) & (values <= DB_MAX))


def test_reconstruction_is_close_on_a_smooth_scene(tmp_path: Path) -> None:
    db = smooth_db(150, 170)
    values, _, _ = roundtrip(tmp_path, db, kind="db")
    assert np.abs(values - db).mean() < 0.5  # 16x16 block means, 40/60 dB quantisation step


def test_invalid_pixels_become_nodata_exactly(tmp_path: Path) -> None:
    from engine.raster_io import OUTPUT_NODATA

    data = (10 ** (smooth_db(40, 70) / 10)).astype(np.float32)
    data[3, 4] = 0.0
    data[10, 11:20] = -2.5
    data[20:25, 30] = np.nan
    data[0, :] = -1.0  # the nodata value
    data[30:40, 60:70] = np.inf
    invalid = ~(np.isfinite(data) & (data > 0))
    values, profile, cf = roundtrip(tmp_path, data, nodata=-1.0)
    assert profile["nodata"] == OUTPUT_NODATA
    np.testing.assert_array_equal(values == OUTPUT_NODATA, invalid)
    assert np.all(np.isfinite(values))
    assert cf.header.valid_pixels == int((~invalid).sum())
    assert cf.header.source_nodata == -1.0


def test_db_input_keeps_negative_values(tmp_path: Path) -> None:
    db = smooth_db(33, 40)
    db[5, 5] = np.nan
    values, _, _ = roundtrip(tmp_path, db, kind="db")
    assert values[5, 5] == -9999.0
    assert np.sum(values == -9999.0) == 1
    assert values.min() < 0


@pytest.mark.parametrize(("kind", "factor"), [("intensity", 10.0), ("amplitude", 20.0)])
def test_linear_outputs_match_db(tmp_path: Path, kind: str, factor: float) -> None:
    db = smooth_db(20, 30)
    src = write_test_geotiff(tmp_path / "in.tif", db)
    compress_raster(src, tmp_path / "out.sarz", input_kind="db", rate="r1")
    decompress_file(tmp_path / "out.sarz", tmp_path / "db.tif", output_kind="db")
    decompress_file(tmp_path / "out.sarz", tmp_path / "lin.tif", output_kind=kind)
    in_db, _ = read(tmp_path / "db.tif")
    lin, _ = read(tmp_path / "lin.tif")
    np.testing.assert_allclose(factor * np.log10(lin), in_db, atol=1e-3)


def _compressed(tmp_path: Path) -> Path:
    src = write_test_geotiff(tmp_path / "in.tif", (10 ** (smooth_db(30, 40) / 10)).astype(np.float32))
    compress_raster(src, tmp_path / "c.sarz", rate="r1")
    return tmp_path / "c.sarz"


def _damaged(tmp_path: Path, how: str) -> Path:
    data = bytearray(_compressed(tmp_path).read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "corrupted":
        data[len(data) - 10] ^= 0xFF
    elif how == "foreign":
        data = bytearray(b"II*\x00" + bytes(data[4:]))
    elif how == "version":
        import struct
        import zlib

        struct.pack_into("<H", data, 8, 7)
        data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])) & 0xFFFFFFFF)
    path = tmp_path / f"{how}.sarz"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(("how", "message"), [("truncated", "truncated"), ("corrupted", "corrupted"),
                                              ("foreign", "not a SAR Toolbox"), ("version", "version 7")])
def test_bad_files_fail_clearly_and_write_nothing(tmp_path: Path, how: str, message: str) -> None:
    bad = _damaged(tmp_path, how)
    out = tmp_path / "out" / "dec.tif"
    out.parent.mkdir()
    with pytest.raises(CompressedFileError, match=message):
        decompress_file(bad, out)
    assert list(out.parent.iterdir()) == []


def test_decoder_not_available(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compressed = _compressed(tmp_path)
    empty = tmp_path / "empty_models"
    empty.mkdir()
    monkeypatch.setenv(MODELS_ENV, str(empty))
    with pytest.raises(CompressedFileError, match="not available"):
        decompress_file(compressed, tmp_path / "dec.tif")
    assert not (tmp_path / "dec.tif").exists()


def test_hash_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compressed = _compressed(tmp_path)
    other = tmp_path / "other_models"
    build_pair(other, "r1", weights=b"retrained")
    monkeypatch.setenv(MODELS_ENV, str(other))
    with pytest.raises(CompressedFileError, match="not available"):
        decompress_file(compressed, tmp_path / "dec.tif")
    with pytest.raises(CompressedFileError, match="weights hash differs"):
        decompress_file(compressed, tmp_path / "dec.tif", decoder_path=other / "sarcodec-r1-decoder.onnx")
    assert not (tmp_path / "dec.tif").exists()


def test_wrong_decoder_model(tmp_path: Path, tiny_models: Path) -> None:
    compressed = _compressed(tmp_path)
    other = tmp_path / "other_models"
    _, dec = build_pair(other, "r1", model_id="sarcodec-x")
    with pytest.raises(CompressedFileError, match="model id differs"):
        decompress_file(compressed, tmp_path / "dec.tif", decoder_path=dec)
    with pytest.raises(ModelError, match="compress-decoder"):
        encoder = tiny_models / "sarcodec-r1-encoder.onnx"
        decompress_file(compressed, tmp_path / "dec.tif", decoder_path=encoder)
    assert not (tmp_path / "dec.tif").exists()


def test_complex_slc_is_refused(tmp_path: Path) -> None:
    slc = (np.ones((8, 8)) + 1j * np.ones((8, 8))).astype(np.complex64)
    src = write_test_geotiff(tmp_path / "slc.tif", slc)
    with pytest.raises(UnsupportedDataError, match="complex"):
        compress_raster(src, tmp_path / "c.sarz", rate="r1")
    assert not (tmp_path / "c.sarz").exists()


def test_band_out_of_range(tmp_path: Path) -> None:
    src = write_test_geotiff(tmp_path / "in.tif", np.ones((8, 8), np.float32))
    with pytest.raises(InputError, match="Band 3"):
        compress_raster(src, tmp_path / "c.sarz", band=3, rate="r1")
    assert not (tmp_path / "c.sarz").exists()


def test_bad_input_kind_and_cancel(tmp_path: Path) -> None:
    src = write_test_geotiff(tmp_path / "in.tif", np.ones((8, 8), np.float32))
    with pytest.raises(InputError, match="input kind"):
        compress_raster(src, tmp_path / "c.sarz", input_kind="sigma", rate="r1")
    with pytest.raises(CancelledError):
        compress_raster(src, tmp_path / "c.sarz", rate="r1", is_cancelled=lambda: True)
    assert list(tmp_path.iterdir()) == [src]


def _decode_digest(compressed: Path, out: Path) -> str:
    import hashlib

    decompress_file(compressed, out)
    values, _ = read(out)
    return hashlib.sha256(values.tobytes()).hexdigest()


@pytest.mark.slow
def test_decoding_is_deterministic_also_in_another_process(tmp_path: Path, tiny_models: Path) -> None:
    data = (10 ** (smooth_db(90, 120, seed=3) / 10)).astype(np.float32)
    src = write_test_geotiff(tmp_path / "in.tif", data)
    compress_raster(src, tmp_path / "c.sarz", rate="r1")
    first = _decode_digest(tmp_path / "c.sarz", tmp_path / "a.tif")
    assert first == _decode_digest(tmp_path / "c.sarz", tmp_path / "b.tif")
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[1]);"
        "from tests.engine.test_codec_roundtrip import _decode_digest; from pathlib import Path;"
        "print(json.dumps(_decode_digest(Path(sys.argv[2]), Path(sys.argv[3]))))"
    )
    env = {"PATH": "/usr/bin:/bin", MODELS_ENV: str(tiny_models), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code, str(REPO_ROOT), str(tmp_path / "c.sarz"),
                           str(tmp_path / "c.tif")], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == first


def test_no_seams_along_tile_boundaries(tmp_path: Path) -> None:
    """Tiles of 64 px with 32 px overlap: error near boundaries is not above the interior error."""
    height, width = 200, 232
    db = smooth_db(height, width, seed=5)
    src = write_test_geotiff(tmp_path / "in.tif", db)
    compress_raster(src, tmp_path / "c.sarz", input_kind="db", rate="r1", tile_size=64, overlap=32)
    decompress_file(tmp_path / "c.sarz", tmp_path / "tiled.tif", tile_size=64, overlap=32)
    decompress_file(tmp_path / "c.sarz", tmp_path / "whole.tif", tile_size=256, overlap=0)
    tiled, _ = read(tmp_path / "tiled.tif")
    whole, _ = read(tmp_path / "whole.tif")
    error = np.abs(tiled - db)
    band = np.zeros_like(error, dtype=bool)
    stride = 64 - 32
    for edge in range(stride + 16, max(height, width), stride):  # core boundaries of the decoder tiles
        band[max(edge - 2, 0) : edge + 2, :] = True
        band[:, max(edge - 2, 0) : edge + 2] = True
    assert band.any() and (~band).any()
    assert error[band].mean() <= 1.05 * error[~band].mean()
    assert np.abs(tiled - whole).max() < 0.5


def test_file_is_smaller_than_raw_and_holds_the_model(tmp_path: Path) -> None:
    db = smooth_db(128, 128)
    src = write_test_geotiff(tmp_path / "in.tif", db)
    result = compress_raster(src, tmp_path / "c.sarz", input_kind="db", rate="r1")
    assert result.bpp < 4.0
    header = fileformat.read_compressed(result.path).header
    assert header.model_id == "sarcodec-r1"
    assert (header.db_min, header.db_max) == (DB_MIN, DB_MAX)
    assert header.latent_shape == (4, 8, 8)
    assert header.input_kind == "db"


def test_progress_reaches_100(tmp_path: Path) -> None:
    seen: list[float] = []
    messages: list[str] = []
    src = write_test_geotiff(tmp_path / "in.tif", np.ones((70, 90), np.float32))
    compress_raster(src, tmp_path / "c.sarz", rate="r1", progress=seen.append, log=messages.append)
    decompress_file(tmp_path / "c.sarz", tmp_path / "d.tif", progress=seen.append)
    assert seen[-1] == 100.0 and all(0 <= p <= 100 for p in seen)
    assert messages




def test_uncalibrated_numbers_are_shifted_into_the_model_range(tmp_path: Path) -> None:
    """uint16 digital numbers (dB ~ 40-60) are shifted, not clipped, and come back at their level."""
    db = smooth_db(64, 64) + 62.0  # far above DB_MAX
    amplitude = np.round(10 ** (db / 20)).astype(np.uint16)
    amplitude[0, :5] = 0
    src = write_test_geotiff(tmp_path / "dn.tif", amplitude, nodata=None)
    compress_raster(src, tmp_path / "c.sarz", input_kind="amplitude", rate="r1")
    header = fileformat.read_compressed(tmp_path / "c.sarz").header
    assert header.shift_db < -50 and header.source_dtype == "uint16"
    decompress_file(tmp_path / "c.sarz", tmp_path / "d.tif", output_kind="amplitude")
    values, _ = read(tmp_path / "d.tif")
    assert np.all(values[0, :5] == -9999.0)
    ref = 20 * np.log10(amplitude[1:].astype(np.float64))
    assert np.abs(20 * np.log10(values[1:]) - ref).mean() < 0.6
    # an explicit shift of 0 puts every pixel above the model's range: none is clipped, each is coded
    # apart (engine.codec.bright_pixels), to within a quarter dB, at a far higher cost
    unshifted = compress_raster(src, tmp_path / "z.sarz", input_kind="amplitude", rate="r1", shift_db=0.0)
    assert unshifted.exceptions == amplitude.size - 5
    decompress_file(tmp_path / "z.sarz", tmp_path / "z.tif")
    kept, _ = read(tmp_path / "z.tif")
    assert kept[1:].min() > DB_MAX + 30
    assert np.abs(kept[1:] - ref).max() <= 0.25 + 1e-3
    assert unshifted.bytes > 2 * (tmp_path / "c.sarz").stat().st_size


def test_classified_table_decodes_the_same_pixels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A classified entropy table changes only the bits: same latents, same reconstruction."""
    from tests.engine.tiny_codec import tiny_table

    base = tiny_table()
    calm = [np.asarray(p) ** 4 for p in base.pmfs]  # sharper: cheap for cells near the medians
    classified = base.with_classes([calm, base.pmfs], [0.5, 0.5])
    folder = tmp_path / "classified"
    build_pair(folder, "r1", table=classified)
    db = smooth_db(96, 160, seed=7)
    src = write_test_geotiff(tmp_path / "in.tif", db)
    plain = compress_raster(src, tmp_path / "plain.sarz", input_kind="db", rate="r1")
    decompress_file(plain.path, tmp_path / "plain.tif")
    monkeypatch.setenv(MODELS_ENV, str(folder))
    result = compress_raster(src, tmp_path / "classified.sarz", input_kind="db", rate="r1")
    decompress_file(result.path, tmp_path / "classified.tif")
    np.testing.assert_array_equal(read(tmp_path / "classified.tif")[0], read(tmp_path / "plain.tif")[0])
    header = fileformat.read_compressed(result.path).header
    assert header.entropy_sha256 == classified.sha256() != base.sha256()
    with pytest.raises(CompressedFileError, match="entropy"):
        decompress_file(plain.path, tmp_path / "refused.tif")  # written with the factorised table
    assert not (tmp_path / "refused.tif").exists()


def test_optimised_quantisation_is_smaller_and_can_be_switched_off(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.engine.tiny_codec import tiny_table

    folder = tmp_path / "rdo"
    build_pair(folder, "r1", table=tiny_table().with_rdo([0.05, 0.05, 0.05, 0.05], 1.0))
    monkeypatch.setenv(MODELS_ENV, str(folder))
    db = smooth_db(96, 160, seed=8)
    src = write_test_geotiff(tmp_path / "in.tif", db)
    plain = compress_raster(src, tmp_path / "plain.sarz", input_kind="db", rate="r1", rdo=False)
    optimised = compress_raster(src, tmp_path / "rdo.sarz", input_kind="db", rate="r1", rdo=True)
    default = compress_raster(src, tmp_path / "default.sarz", input_kind="db", rate="r1")
    assert default.bytes == plain.bytes, "plain rounding is the default"
    assert optimised.bytes < plain.bytes
    for name in ("plain", "rdo"):
        decompress_file(tmp_path / f"{name}.sarz", tmp_path / f"{name}.tif")
    plain_error = np.abs(read(tmp_path / "plain.tif")[0] - db).mean()
    rdo_error = np.abs(read(tmp_path / "rdo.tif")[0] - db).mean()
    assert plain_error <= rdo_error < plain_error + 2.0, "fewer bits for a bounded loss in dB"


def test_strips_keep_memory_flat_and_version_1_files_still_decode(tmp_path: Path, tiny_models: Path) -> None:
    """A tall scene is coded in several strips; the same latents as one strip (format 1) decode alike."""
    import dataclasses
    import struct
    import zlib

    from engine.codec.decode import decode_latents
    from engine.codec.encode import STRIP_ROWS
    from engine.codec.models import find_decoder

    db = smooth_db(16 * (2 * STRIP_ROWS + 5), 48, seed=9)  # 2 full strips and a remainder
    src = write_test_geotiff(tmp_path / "in.tif", db)
    compress_raster(src, tmp_path / "new.sarz", input_kind="db", rate="r1", tile_size=64, overlap=32)
    cf = fileformat.read_compressed(tmp_path / "new.sarz")
    assert cf.header.strip_heights() == [STRIP_ROWS, STRIP_ROWS, 5]
    decoder = find_decoder(cf.header.model_id, cf.header.weights_sha256)
    grid, table = decode_latents(cf, decoder)
    old_header = dataclasses.replace(cf.header, strip_rows=0)
    data = bytearray(fileformat.pack(old_header, cf.mask_bytes, table.encode(grid), version=1))
    struct.pack_into("<H", data, 8, 1)
    data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])) & 0xFFFFFFFF)
    (tmp_path / "old.sarz").write_bytes(bytes(data))
    decompress_file(tmp_path / "new.sarz", tmp_path / "new.tif", tile_size=64, overlap=32)
    decompress_file(tmp_path / "old.sarz", tmp_path / "old.tif", tile_size=64, overlap=32)
    np.testing.assert_array_equal(read(tmp_path / "new.tif")[0], read(tmp_path / "old.tif")[0])
    assert abs(len(data) - cf.size_bytes) < 64, "strips cost (almost) no extra bytes"


def test_cells_far_from_valid_pixels_are_coded_as_zeros(tmp_path: Path, tiny_models: Path) -> None:
    from engine.codec.decode import decode_latents
    from engine.codec.encode import near_valid_cells
    from engine.codec.models import find_decoder

    valid = np.zeros((64, 80), bool)
    valid[20, 70] = True  # one valid pixel in cell (1, 4)
    near = near_valid_cells(valid, 16)
    expected = np.zeros((4, 5), bool)
    expected[0:3, 3:5] = True  # the cell and its 8 neighbours (inside the grid)
    np.testing.assert_array_equal(near, expected)

    intensity = (10 ** (smooth_db(96, 160, seed=10) / 10)).astype(np.float32)
    intensity[:, :96] = -1.0  # nodata: the left 6 cell columns
    src = write_test_geotiff(tmp_path / "in.tif", intensity, nodata=-1.0)
    compress_raster(src, tmp_path / "c.sarz", rate="r1")
    cf = fileformat.read_compressed(tmp_path / "c.sarz")
    grid, _ = decode_latents(cf, find_decoder(cf.header.model_id, cf.header.weights_sha256))
    assert np.all(grid[:, :, :5] == 0), "cells 2+ columns from data are zeros"
    assert np.any(grid[:, :, 6:] != 0)
    decompress_file(tmp_path / "c.sarz", tmp_path / "d.tif")
    values, profile = read(tmp_path / "d.tif")
    assert np.all(values[:, :96] == profile["nodata"]) and np.all(values[:, 96:] != profile["nodata"])


def test_decoded_geotiff_is_written_in_whole_compressed_blocks(tmp_path: Path) -> None:
    """Issue 15.5: the decoded GeoTIFF uses the one output profile and is no bigger than the same values
    written by :func:`engine.raster_io.write_raster` (writing 64-row blocks through 256-row compressed
    tiles made GDAL rewrite them and keep the dead copies: 3 x the size)."""
    import rasterio

    from engine.raster_io import write_raster

    rng = np.random.default_rng(5)
    db = smooth_db(600, 300) + rng.normal(0.0, 2.0, (600, 300)).astype(np.float32)
    values, profile, _ = roundtrip(tmp_path, (10 ** (db / 10)).astype(np.float32))
    assert profile["compress"] == "deflate" and profile["tiled"] and profile["blockysize"] == 256
    with rasterio.open(tmp_path / "dec.tif") as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR") == "3"
    rewritten = write_raster(tmp_path / "again.tif", values, None, TEST_TRANSFORM, nodata=profile["nodata"])
    decoded_size, rewritten_size = (tmp_path / "dec.tif").stat().st_size, rewritten.stat().st_size
    assert decoded_size <= 1.02 * rewritten_size, (decoded_size, rewritten_size)
