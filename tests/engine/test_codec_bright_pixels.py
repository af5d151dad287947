"""Pixels outside the codec model's range: bright ones kept within 0.5 dB, dark ones reported."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from engine.codec import fileformat
from engine.codec.bright_pixels import STEP_DB, BrightPixels, _classes
from engine.codec.decode import decompress_file
from engine.codec.encode import compress_raster
from engine.errors import CompressedFileError
from engine.tiling import Window
from tests.conftest import write_test_geotiff
from tests.engine.test_codec_roundtrip import _use_tiny_models, read, smooth_db, tiny_models  # noqa: F401
from tests.engine.tiny_codec import DB_MAX, DB_MIN

TARGET_DB = 30.0
"""Planted point targets: 20 dB above the tiny model's top (DB_MAX = 10)."""


def scene_with_targets(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Intensity of a smooth scene in range, with single-pixel and 3 x 3 targets at +25..+35 dB."""
    db = smooth_db(96, 128, seed=seed).astype(np.float64)
    rng = np.random.default_rng(seed)
    targets = np.zeros(db.shape, bool)
    for r, c in zip(rng.integers(2, 94, 12), rng.integers(2, 126, 12), strict=True):
        targets[r, c] = True
    targets[40:43, 60:63] = True
    db[targets] = TARGET_DB + rng.uniform(-5.0, 5.0, int(targets.sum()))
    return (10 ** (db / 10)).astype(np.float32), targets


def encode(tmp_path: Path, intensity: np.ndarray, **kwargs: object) -> tuple[Path, object, list[str]]:
    src = write_test_geotiff(tmp_path / "in.tif", intensity)
    messages: list[str] = []
    result = compress_raster(src, tmp_path / "c.sarz", rate="r1", shift_db=0.0, log=messages.append,
                             **kwargs)  # type: ignore[arg-type]
    return tmp_path / "c.sarz", result, messages


@pytest.mark.parametrize("output_kind", ["db", "intensity"])
def test_planted_bright_targets_come_back_within_half_a_db(tmp_path: Path, output_kind: str) -> None:
    intensity, targets = scene_with_targets()
    sarz, result, messages = encode(tmp_path, intensity)
    decompress_file(sarz, tmp_path / "d.tif", output_kind=output_kind)
    decoded = read(tmp_path / "d.tif")[0].astype(np.float64)
    decoded_db = decoded if output_kind == "db" else 10 * np.log10(decoded)
    source_db = 10 * np.log10(intensity.astype(np.float64))
    error = np.abs(decoded_db - source_db)[targets]
    assert error.max() <= STEP_DB / 2 + 1e-3 < 0.5
    assert result.exceptions == int(targets.sum())  # type: ignore[attr-defined]
    assert any(f"{int(targets.sum())} bright pixels" in m for m in messages)
    # elsewhere the codec's own (lossy) reconstruction: pixels next to the targets are not overwritten
    assert np.all(decoded_db[~targets] <= DB_MAX + 1e-4)


def test_the_bright_layer_is_counted_in_the_bits_per_pixel(tmp_path: Path) -> None:
    intensity, _ = scene_with_targets(seed=4)
    sarz, result, messages = encode(tmp_path, intensity)
    cf = fileformat.read_compressed(sarz)
    size = sarz.stat().st_size
    assert result.bytes == size == cf.size_bytes  # type: ignore[attr-defined]
    assert result.bpp == pytest.approx(8 * size / intensity.size)  # type: ignore[attr-defined]
    assert result.exception_bytes == len(cf.exceptions) > 0  # type: ignore[attr-defined]
    without = fileformat.pack(cf.header, cf.mask_bytes, cf.payload)
    assert size - len(without) == len(cf.exceptions)
    assert any(f"{len(cf.exceptions)} bytes" in m for m in messages)


def test_a_scene_inside_the_range_has_an_empty_section(tmp_path: Path) -> None:
    intensity = (10 ** (smooth_db(64, 64, seed=5) / 10)).astype(np.float32)
    sarz, result, messages = encode(tmp_path, intensity)
    assert result.exceptions == 0 and result.exception_bytes == 0  # type: ignore[attr-defined]
    assert fileformat.read_compressed(sarz).exceptions == b""
    assert any("No pixel above" in m for m in messages)


def test_dark_pixels_are_counted_and_reported_not_coded(tmp_path: Path) -> None:
    db = smooth_db(64, 64, seed=6).astype(np.float64)
    db[:8, :] = DB_MIN - 12.0  # 12.5 % far below the model's floor
    _, result, messages = encode(tmp_path, (10 ** (db / 10)).astype(np.float32))
    assert result.dark_pixels == 8 * 64 and result.exceptions == 0  # type: ignore[attr-defined]
    assert any("512 dark pixels" in m and f"{DB_MIN:.1f} dB" in m for m in messages)


def _rewrite(data: bytes, version: int, exceptions: bytes) -> bytes:
    cf = fileformat.unpack(data)
    return fileformat.pack(cf.header, cf.mask_bytes, cf.payload, exceptions, version=version)


def test_version_3_files_still_decode(tmp_path: Path) -> None:
    intensity, targets = scene_with_targets(seed=7)
    sarz, _, _ = encode(tmp_path, intensity)
    old = tmp_path / "old.sarz"
    old.write_bytes(_rewrite(sarz.read_bytes(), 3, b""))
    assert struct.unpack_from("<H", old.read_bytes(), 8) == (3,)
    decompress_file(sarz, tmp_path / "new.tif")
    decompress_file(old, tmp_path / "old.tif")
    new_db, old_db = read(tmp_path / "new.tif")[0], read(tmp_path / "old.tif")[0]
    np.testing.assert_array_equal(new_db[~targets], old_db[~targets])
    assert np.all(old_db[targets] <= DB_MAX + 1e-4), "without the section, targets come back clipped"
    with pytest.raises(ValueError):
        _rewrite(sarz.read_bytes(), 3, b"x")


def test_a_corrupted_bright_section_is_refused_and_nothing_written(tmp_path: Path) -> None:
    intensity, _ = scene_with_targets(seed=8)
    sarz, _, _ = encode(tmp_path, intensity)
    data = bytearray(sarz.read_bytes())
    section = len(fileformat.unpack(bytes(data)).exceptions)
    data[-4 - section // 2] ^= 0x20  # a byte inside the section (it ends just before the checksum)
    sarz.write_bytes(bytes(data))
    with pytest.raises(CompressedFileError, match="corrupted"):
        decompress_file(sarz, tmp_path / "d.tif")
    assert not (tmp_path / "d.tif").exists()


def test_a_malformed_section_with_a_valid_checksum_is_refused(tmp_path: Path) -> None:
    intensity, _ = scene_with_targets(seed=9)
    sarz, _, _ = encode(tmp_path, intensity)
    cf = fileformat.read_compressed(sarz)
    bad = bytearray(cf.exceptions)
    struct.pack_into("<Q", bad, 0, intensity.size + 1)  # more bright pixels than the raster has
    data = fileformat.pack(cf.header, cf.mask_bytes, cf.payload, bytes(bad))
    assert zlib.crc32(data[:-4]) & 0xFFFFFFFF == struct.unpack("<I", data[-4:])[0]
    sarz.write_bytes(data)
    with pytest.raises(CompressedFileError, match="bright-pixel section is damaged"):
        decompress_file(sarz, tmp_path / "d.tif")
    assert not (tmp_path / "d.tif").exists()


def test_layer_round_trip_with_wide_gaps_and_large_levels() -> None:
    rng = np.random.default_rng(0)
    gaps = np.concatenate([rng.integers(0, 20, 200), [2**16, 2**16 - 1, 2**33 + 5, 0, 1]])
    positions = np.cumsum(gaps + 1) - 1
    levels = np.concatenate([rng.integers(0, 60, 200), [15, 16, 2**20, 2**31 + 3, 0]])
    layer = BrightPixels(positions.astype(np.int64), levels.astype(np.int64), STEP_DB, 15.0)
    back = BrightPixels.from_bytes(layer.to_bytes(), int(positions[-1]) + 1)
    np.testing.assert_array_equal(back.positions, layer.positions)
    np.testing.assert_array_equal(back.levels, layer.levels)
    assert (back.step_db, back.base_db) == (STEP_DB, 15.0)
    with pytest.raises(CompressedFileError):
        BrightPixels.from_bytes(layer.to_bytes(), int(positions[-1]))  # one pixel short


def test_classes_split_values_exactly_at_powers_of_two() -> None:
    values = np.array([0, 15, 16, 31, 32, 2**40 - 1, 2**40, 2**62 + 1], dtype=np.int64)
    classes, bits = _classes(values)
    lengths = np.array([int(v).bit_length() for v in values])
    np.testing.assert_array_equal(bits, np.where(values >= 16, lengths - 1, 0))
    np.testing.assert_array_equal(classes, np.where(values >= 16, lengths + 11, values))


def test_restore_writes_only_the_pixels_of_its_window() -> None:
    layer = BrightPixels(np.array([3, 12, 13, 25], np.int64), np.array([0, 2, 4, 1], np.int64), 0.5, 10.0)
    block = np.zeros((2, 3), np.float32)
    layer.restore(block, Window(1, 1, 2, 3), width=10)  # rows 1-2, columns 1-3 of a 10-wide raster
    expected = np.zeros((2, 3), np.float32)
    expected[0, 1], expected[0, 2] = 11.0, 12.0  # pixels 12, 13; pixel 3 (row 0), 25 (column 5) outside
    np.testing.assert_array_equal(block, expected)
