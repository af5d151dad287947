"""Compressed file format: layout round trip and every parse error."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from engine.codec import fileformat as ff
from engine.errors import CompressedFileError


def _header(**changes: object) -> ff.CompressedHeader:
    values: dict[str, object] = dict(
        width=13, height=7, crs_wkt="LOCAL_CS[\"x\"]", transform=(10.0, 0.0, 5.0, 0.0, -10.0, 9.0),
        source_dtype="float32", source_nodata=float("nan"), band=1, input_kind="intensity",
        db_min=-30.0, db_max=10.0, noise_floor_db=-40.0, model_id="m", weights_sha256="a" * 64,
        entropy_sha256="b" * 64, latent_channels=2, latent_height=1, latent_width=1, scale_factor=16,
        tile_size=64, overlap=32, valid_pixels=50,
    )
    values.update(changes)
    return ff.CompressedHeader(**values)  # type: ignore[arg-type]


def _file() -> bytes:
    mask = np.random.default_rng(1).random((7, 13)) > 0.4
    writer = ff.MaskWriter(13)
    writer.add(mask[:3])
    writer.add(mask[3:])
    return ff.pack(_header(), writer.finish(), b"payload!")


def test_round_trip() -> None:
    data = _file()
    parsed = ff.unpack(data)
    assert parsed.header == _header() or np.isnan(parsed.header.source_nodata or 0.0)
    assert parsed.header.transform == _header().transform
    assert parsed.payload == b"payload!"
    assert parsed.size_bytes == len(data)
    mask = np.random.default_rng(1).random((7, 13)) > 0.4
    np.testing.assert_array_equal(parsed.mask(), mask)
    reader = parsed.mask_reader()
    np.testing.assert_array_equal(np.concatenate([reader.read(2), reader.read(5)]), mask)


@pytest.mark.parametrize("cut", [3, 8, 11, 20, -5, -1])
def test_truncated(cut: int) -> None:
    data = _file()
    with pytest.raises(CompressedFileError, match="truncated"):
        ff.unpack(data[:cut])


@pytest.mark.parametrize("position", [12, 19, 22, 30, -6, -1])
def test_corrupted(position: int) -> None:
    data = bytearray(_file())
    data[position] ^= 0x40
    with pytest.raises(CompressedFileError, match="corrupted"):
        ff.unpack(bytes(data))


@pytest.mark.parametrize("data", [b"GIF89a....", b"\x89PNG\r\n\x1a\n" + b"0" * 40, b"", b"II*\x00"])
def test_foreign(data: bytes) -> None:
    with pytest.raises(CompressedFileError, match="not a SAR Toolbox compressed file"):
        ff.unpack(data)


def test_unknown_version() -> None:
    data = bytearray(_file())
    struct.pack_into("<H", data, 8, ff.FORMAT_VERSION + 1)
    body = bytes(data[:-4])
    data[-4:] = struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)
    with pytest.raises(CompressedFileError, match=rf"format version {ff.FORMAT_VERSION + 1}.*update"):
        ff.unpack(bytes(data))


def test_version_1_files_are_still_read() -> None:
    """Version 1 wrote the payload as one strip; a version-2 reader decodes it as such."""
    parsed = ff.unpack(_file())
    data = bytearray(ff.pack(parsed.header, parsed.mask_bytes, parsed.payload, version=3))
    struct.pack_into("<H", data, 8, 1)
    body = bytes(data[:-4])
    data[-4:] = struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)
    header = ff.unpack(bytes(data)).header
    assert header.strip_rows == 0 and header.strip_heights() == [header.latent_height]


def test_strip_heights_cover_the_grid() -> None:
    import dataclasses

    header = dataclasses.replace(_header(), latent_height=40, strip_rows=16)
    assert header.strip_heights() == [16, 16, 8]
    assert dataclasses.replace(header, strip_rows=64).strip_heights() == [40]


def test_trailing_bytes() -> None:
    with pytest.raises(CompressedFileError, match="unexpected bytes"):
        ff.unpack(_file() + b"xx")


def test_missing_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CompressedFileError, match="does not exist"):
        ff.read_compressed(tmp_path / "nope.sarz")
