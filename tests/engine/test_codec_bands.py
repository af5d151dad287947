"""Every band of a dual-polarisation product is coded into one .sarz and restored with its description,
and a GCP-only product keeps its GCPs through compress -> decompress (format version 6); one-band files
without description or GCPs keep the previous format (version 4) and decode as before."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import rasterio

from engine.codec import fileformat
from engine.codec.decode import decompress_file
from engine.codec.encode import compress_raster
from engine.errors import CompressedFileError
from engine.preprocess import linear_to_db
from tests.conftest import assert_same_georeferencing, truncate_file, write_test_geotiff
from tests.engine.test_codec_roundtrip import _use_tiny_models, tiny_models  # noqa: F401


def _version(path: Path) -> int:
    return int(struct.unpack_from("<H", path.read_bytes(), len(fileformat.MAGIC))[0])


def _source_db(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        dn = src.read().astype(np.float64)
    return np.where(dn > 0, linear_to_db(np.maximum(dn, 1.0), "amplitude"), np.nan)


def test_dual_pol_grd_codes_both_bands_and_keeps_gcps(make_grd, tmp_path: Path) -> None:
    grd = make_grd()
    said: list[str] = []
    result = compress_raster(grd, tmp_path / "s1.sarz", input_kind="amplitude", rate="r1", post_filter=False,
                             log=said.append)
    scene = fileformat.read_scene(result.path)
    assert scene.version == 6 and [b.header.band for b in scene.bands] == [1, 2]
    assert [b.header.description for b in scene.bands] == ["VV", "VH"]
    assert [f.label for f in result.bands] == ["band 1 (VV)", "band 2 (VH)"]
    assert sum(f.bytes for f in result.bands) < result.bytes == result.path.stat().st_size
    assert "Band 2 (VH): No pixel above the model's range" in " ".join(said)  # per-band messages say which
    for f in result.bands:
        assert f.bpp == pytest.approx(8 * f.bytes / (96 * 128))
        assert any(line.startswith(f"Coded {f.label}: {f.bytes} bytes, {f.bpp:.3f} bits per pixel")
                   for line in said)

    decoded = decompress_file(result.path, tmp_path / "s1.tif")
    assert decoded.bands == 2
    assert_same_georeferencing(tmp_path / "s1.tif", grd)
    with rasterio.open(tmp_path / "s1.tif") as ds:
        assert ds.descriptions == ("VV", "VH")
        out = ds.read(masked=True).filled(np.nan)
    src = _source_db(grd)
    means, source_means = np.nanmean(out, axis=(1, 2)), np.nanmean(src, axis=(1, 2))
    assert source_means[0] - source_means[1] > 4.0  # VH is ~4.6 dB below VV
    assert np.abs(means - source_means).max() < 1.0  # each decoded band is its own source band
    assert np.isnan(out[:, :, :6]).all() and np.isfinite(out[:, :, 8:]).all()  # the zero border is nodata


def test_band_choice_codes_that_band_only_and_decodes_as_in_the_two_band_file(make_grd, tmp_path: Path
                                                                               ) -> None:
    grd = make_grd()
    result = compress_raster(grd, tmp_path / "vh.sarz", band=2, input_kind="amplitude", rate="r1")
    scene = fileformat.read_scene(result.path)
    assert [(b.header.band, b.header.description) for b in scene.bands] == [(2, "VH")]
    decompress_file(result.path, tmp_path / "vh.tif")
    both = compress_raster(grd, tmp_path / "both.sarz", input_kind="amplitude", rate="r1")
    decompress_file(both.path, tmp_path / "both.tif")
    with rasterio.open(tmp_path / "vh.tif") as vh, rasterio.open(tmp_path / "both.tif") as two:
        assert vh.count == 1 and vh.descriptions == ("VH",)
        np.testing.assert_array_equal(two.read(2), vh.read(1))  # each band is coded and decoded alone


def test_one_band_without_description_keeps_format_4_and_decodes(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    src = write_test_geotiff(tmp_path / "in.tif", rng.gamma(4.0, 0.0125, (64, 80)).astype(np.float32))
    result = compress_raster(src, tmp_path / "old.sarz", rate="r1", post_filter=False)
    assert _version(result.path) == fileformat.FACTORISED_VERSION
    assert "description" not in fileformat.read_compressed(result.path).header.to_json()
    decompress_file(result.path, tmp_path / "old.tif")
    with rasterio.open(tmp_path / "old.tif") as ds:
        assert ds.count == 1 and ds.descriptions[0].startswith("SAR backscatter (dB) decoded by")


def test_a_two_band_file_is_refused_by_the_one_band_reader(make_grd, tmp_path: Path) -> None:
    path = compress_raster(make_grd(), tmp_path / "s1.sarz", input_kind="amplitude", rate="r1",
                           post_filter=False).path
    with pytest.raises(CompressedFileError, match="holds 2 bands; decode it with 'sartoolbox:decompress'"):
        fileformat.read_compressed(path)


def test_a_damaged_two_band_file_fails_clearly_and_writes_nothing(make_grd, tmp_path: Path) -> None:
    path = compress_raster(make_grd(), tmp_path / "s1.sarz", input_kind="amplitude", rate="r1",
                           post_filter=False).path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.sarz"
    bad.write_bytes(bytes(data))
    with pytest.raises(CompressedFileError, match="corrupted"):
        decompress_file(bad, tmp_path / "bad.tif")
    with pytest.raises(CompressedFileError, match="truncated"):
        decompress_file(truncate_file(path, 0.7), tmp_path / "cut.tif")
    assert not (tmp_path / "bad.tif").exists() and not (tmp_path / "cut.tif").exists()


def test_version_6_fields_need_version_6() -> None:
    header = fileformat.CompressedHeader(
        width=8, height=8, crs_wkt=None, transform=(1.0, 0.0, 0.0, 0.0, -1.0, 0.0), source_dtype="uint16",
        source_nodata=None, band=1, input_kind="amplitude", db_min=-30.0, db_max=10.0, noise_floor_db=-40.0,
        model_id="m", weights_sha256="0" * 64, entropy_sha256="0" * 64, latent_channels=1, latent_height=1,
        latent_width=1, scale_factor=8, tile_size=64, overlap=16, valid_pixels=64, description="VV")
    with pytest.raises(ValueError, match="description or GCPs"):
        fileformat.pack(header, b"", b"", version=fileformat.FACTORISED_VERSION)
    assert fileformat.unpack(fileformat.pack(header, b"", b"")).header.description == "VV"


def test_quality_of_a_two_band_file_compares_the_chosen_band(make_grd, tmp_path: Path) -> None:
    from engine.codec.quality.metrics import assess

    grd = make_grd()
    result = compress_raster(grd, tmp_path / "s1.sarz", input_kind="amplitude", rate="r1", post_filter=False)
    single = compress_raster(grd, tmp_path / "vh.sarz", band=2, input_kind="amplitude", rate="r1",
                             post_filter=False)
    both = assess(grd, result.path, band=2, reference_kind="amplitude")
    alone = assess(grd, single.path, band=2, reference_kind="amplitude")
    assert both.bpp == pytest.approx(result.bands[1].bpp)
    assert both.psnr == pytest.approx(alone.psnr, abs=1e-6)  # the VH band, coded alike either way


def test_the_gcps_are_stored_once_and_every_band_gets_them(make_grd, tmp_path: Path) -> None:
    result = compress_raster(make_grd(), tmp_path / "s1.sarz", input_kind="amplitude", rate="r1",
                             post_filter=False)
    data = result.path.read_bytes()
    scene = fileformat.unpack_scene(data)
    assert scene.bands[0].header.control == scene.bands[1].header.control
    assert len(scene.bands[0].header.control["gcps"]) == 100
    stored = [json.loads(zlib.decompress(part)) for part in _headers(data)]
    assert ["control" in header for header in stored] == [True, False]
    assert result.bands[0].bytes > result.bands[1].bytes  # the first band's header carries them


def test_band_sizes_are_carried_from_packing_not_read_back(make_grd, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Each band's bytes come from packing (the file is not parsed again) and equal what the reader finds."""
    def no_parsing(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the packed file was parsed again")

    with monkeypatch.context() as patched:
        patched.setattr(fileformat, "unpack_scene", no_parsing)
        result = compress_raster(make_grd(), tmp_path / "s1.sarz", input_kind="amplitude", rate="r1",
                                 post_filter=False)
    scene = fileformat.read_scene(result.path)
    assert [f.bytes for f in result.bands] == [b.coded_bytes for b in scene.bands]
    assert [f.bpp for f in result.bands] == pytest.approx([b.bpp for b in scene.bands])
    one = scene.bands[1]
    data, sizes = fileformat.pack_scene([(one.header, one.mask_bytes, one.payload, one.exceptions)])
    assert sizes == (fileformat.unpack_scene(data).bands[0].coded_bytes,) and data == fileformat.pack(
        one.header, one.mask_bytes, one.payload, one.exceptions)


def _headers(data: bytes) -> list[bytes]:
    """The compressed header sections of a version 6 file (after magic, version, total length, count)."""
    pos, headers = 8 + 2 + 8 + 2, []
    for _band in range(struct.unpack_from("<H", data, 18)[0]):
        for i, size in enumerate(("<I", "<I", "<Q", "<Q")):  # header, mask, payload, bright pixels
            (n,) = struct.unpack_from(size, data, pos)
            pos += struct.calcsize(size)
            if i == 0:
                headers.append(data[pos : pos + n])
            pos += n
    return headers


def test_even_blocks_regroup_rows_whatever_the_blocks_given() -> None:
    from engine.codec.decode import _even_blocks
    from engine.tiling import Window

    rows = np.arange(150 * 3, dtype=np.float32).reshape(150, 3)
    given, top = [], 0
    for n in (10, 64, 3, 50, 23):  # as a restoration filter cuts them
        given.append((Window(top, 0, n, 3), rows[top : top + n]))
        top += n
    out = list(_even_blocks(given, 64))
    assert [(w.row_off, w.height) for w, _ in out] == [(0, 64), (64, 64), (128, 22)]
    np.testing.assert_array_equal(np.concatenate([v for _, v in out]), rows)


def test_a_psnr_target_decodes_a_trial_file_once_for_all_its_bands(make_grd, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The lowest PSNR of the coded bands (here source bands 1 and 3 of 3) from one decoding of the trial
    file, equal to each band's own ``assess`` of the file."""
    from engine.codec import decode
    from engine.codec.quality.metrics import assess
    from engine.codec.target import _decoded_psnr
    from engine.run import QUIET

    grd = make_grd(bands=3)
    result = compress_raster(grd, tmp_path / "s1.sarz", band=[1, 3], input_kind="amplitude", rate="r1",
                             post_filter=False)
    each = [assess(grd, result.path, band=b, reference_kind="amplitude").psnr for b in (1, 3)]
    decodings: list[Path] = []
    real = decode.decompress_file

    def counted(path: Path, *args: object, **kwargs: object) -> decode.DecodeResult:
        decodings.append(path)
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(decode, "decompress_file", counted)
    assert _decoded_psnr(grd, result.path, result, "amplitude", QUIET) == pytest.approx(min(each), abs=1e-9)
    assert len(decodings) == 1
    assert each[0] != pytest.approx(each[1], abs=1e-3)  # the bands differ: the minimum is a real choice
