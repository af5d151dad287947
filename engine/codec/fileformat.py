"""The self-describing compressed SAR file (``.sarz``).

Layout (all integers little-endian)::

    magic            8 bytes   b"SARZ\\r\\n\\x1a\\n"
    format version   u16
    total length     u64       size of the whole file in bytes (tells truncation from corruption)
    header length    u32       then the header: zlib-compressed UTF-8 JSON
    mask length      u32       then the validity mask: zlib of row-wise packed bits (1 = valid)
    payload length   u64       then the entropy-coded latents: with a factorised table
                               (EntropyModelTable.encode; class map first when the table is classified),
                               or, version 5, with the hyperprior (:mod:`.hypercoding`: per strip the
                               side information z, then the latents slice by slice)
    bright length    u64       (version 4 on) then the bright-pixel exception layer
                               (:mod:`.bright_pixels`; empty: none)
    checksum         u32       CRC-32 of every byte before it

Version 6 holds several bands (dual polarisation): after the total length comes a u16 band
count, then for each band its header, mask, payload and bright sections as above; one checksum
ends the file. Each band's header holds the size, CRS, geotransform and the source band's
``description``; the first also the GCPs with their CRS and the RPCs (``control``: about 7 kB for a
GRD's 210 GCPs), which the reader hands to every band.

The header holds everything needed to rebuild the raster (see
:class:`CompressedHeader`), including which entropy model coded the payload (``entropy_model``:
``factorised`` or ``hyperprior``; a hyperprior's side information is inside the payload, so the
checksum covers it). A file is written in the oldest version that holds it: one band without
description, GCPs or RPCs coded with a factorised table is still version 4, byte for byte as before
(the header then has no ``entropy_model`` field), with a hyperprior version 5; several bands, a band
description, GCPs or RPCs make it version 6.
The file's real size is what bits per pixel means.
Parsing checks, in this order: foreign file (magic), unknown version,
truncation, checksum; each raises :class:`CompressedFileError` saying what to do.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import struct
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CompressedFileError, InputError
from ..raster_io import ControlPoints
from .postfilter import PostFilter

MAGIC = b"SARZ\r\n\x1a\n"
FORMAT_VERSION = 6
"""Newest version written. 6: several bands in one file, and headers with a band ``description``
and ``control`` (GCPs, RPCs); same sections per band. 5: the payload is coded with the hyperprior
(header ``entropy_model`` ``hyperprior``, :mod:`.hyperprior`); same layout as 4. 4: a section after the
payload holds the pixels above the model's range (:mod:`.bright_pixels`); 3: the header may carry a
restoration filter (``post_filter``, :mod:`.postfilter`); 2: the payload is coded in strips of
``strip_rows`` latent rows (memory flat in scene size); 1: one strip. Versions 1-3 share one layout
(a file of an older one is also a valid file of the newer ones); version 4 adds the section. Files of
every readable version decode (pixels above the model's range come back clipped in files before
version 4)."""
READABLE_VERSIONS = (1, 2, 3, 4, 5, 6)
FACTORISED_VERSION = 4
"""Version written for files coded with a factorised table (their bytes are those of release 4)."""
HYPERPRIOR_VERSION = 5
"""First version (and version written) for files coded with the hyperprior."""
MULTIBAND_VERSION = 6
"""First version with a band count (several bands) and the ``description`` and ``control`` header fields."""
FACTORISED, HYPERPRIOR = "factorised", "hyperprior"
ENTROPY_MODELS = (FACTORISED, HYPERPRIOR)
EXCEPTIONS_VERSION = 4
"""First version with the bright-pixel section."""
SUFFIX = ".sarz"
_PREFIX = struct.Struct("<8sHQ")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


@dataclass(frozen=True)
class CompressedHeader:
    """Everything a decoder needs besides the mask and the payload.

    Attributes:
        width, height: raster size in pixels.
        crs_wkt: the source CRS as WKT (``None`` if the source had none).
        transform: GDAL-order geotransform ``(c, a, b, f, d, e)`` as affine ``a..f`` list
            ``[a, b, c, d, e, f]`` (rasterio ``Affine`` order).
        source_dtype: data type of the source band (informational; output is float32).
        source_nodata: the source's nodata value (``None`` if unset; NaN is stored as "nan").
        band: 1-based source band index.
        input_kind: what the source held: ``intensity``, ``amplitude`` or ``db``.
        db_min, db_max, noise_floor_db: dB clipping/normalisation used by the model.
        model_id, weights_sha256: the decoder that must be used.
        entropy_sha256: SHA-256 of the entropy table (must match the decoder's).
        latent_channels, latent_height, latent_width: shape of the integer latent grid.
        scale_factor: pixels per latent cell.
        tile_size, overlap: encoder tiling in pixels (decoding may use other values).
        valid_pixels: number of valid pixels (1 bits in the mask).
        strip_rows: latent rows per entropy-coded strip (0: the whole grid is one strip).
        shift_db: dB added to the source before encoding (subtracted when decoding).
        entropy_model: ``factorised`` (the decoder's table) or ``hyperprior`` (version 5 on).
        post_filter: the restoration filter the decoder applies to its output
            (:meth:`PostFilter.to_header`); empty: none.
        description: the source band's description (e.g. ``VV``; version 6 on), restored on decoding.
        control: the source's GCPs with their CRS and its RPCs (:meth:`ControlPoints.to_json`;
            version 6 on); empty: georeferenced by ``crs_wkt`` and ``transform`` alone.
        quantisation: how integers map back to latents.
        created_by: software that wrote the file.
    """

    width: int
    height: int
    crs_wkt: str | None
    transform: tuple[float, ...]
    source_dtype: str
    source_nodata: float | None
    band: int
    input_kind: str
    db_min: float
    db_max: float
    noise_floor_db: float
    model_id: str
    weights_sha256: str
    entropy_sha256: str
    latent_channels: int
    latent_height: int
    latent_width: int
    scale_factor: int
    tile_size: int
    overlap: int
    valid_pixels: int
    shift_db: float = 0.0
    strip_rows: int = 0
    post_filter: dict[str, Any] = field(default_factory=dict)
    quantisation: str = "q = round(y - median_c); y_hat = q + median_c"
    created_by: str = "sar-toolbox"
    extra: dict[str, str] = field(default_factory=dict)
    entropy_model: str = FACTORISED
    description: str | None = None
    control: dict[str, Any] = field(default_factory=dict)

    @property
    def control_points(self) -> ControlPoints:
        """The source's GCPs and RPCs (empty when it had none)."""
        return ControlPoints.from_json(self.control)

    @property
    def needs_multiband_version(self) -> bool:
        """Whether the header holds a field of version 6 on (``description``, ``control``)."""
        return bool(self.description or self.control)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.latent_channels, self.latent_height, self.latent_width)

    def strip_heights(self) -> list[int]:
        """Latent rows of each entropy-coded strip, top to bottom."""
        step = self.strip_rows if self.strip_rows > 0 else self.latent_height
        return [min(step, self.latent_height - top) for top in range(0, self.latent_height, step)]

    def to_json(self) -> str:
        data = asdict(self)
        data["transform"] = list(self.transform)
        nodata = self.source_nodata
        if nodata is not None and not math.isfinite(nodata):
            data["source_nodata"] = repr(float(nodata))  # "nan", "inf", "-inf": JSON has no NaN
        if self.entropy_model == FACTORISED:
            del data["entropy_model"]  # a factorised file's header is that of version 4, byte for byte
        for name in ("description", "control"):  # version 6 fields, absent when unused
            if not data[name]:
                del data[name]
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> CompressedHeader:
        try:
            data: dict[str, Any] = json.loads(text)
            if isinstance(data.get("source_nodata"), str):
                data["source_nodata"] = float(data["source_nodata"])
            data["transform"] = tuple(float(v) for v in data["transform"])
            header = cls(**data)
        except (TypeError, ValueError, KeyError) as exc:
            raise CompressedFileError(
                f"The compressed file's header is malformed ({exc}); the file is damaged or was "
                "written by incompatible software. Compress the source raster again."
            ) from exc
        if header.width < 1 or header.height < 1 or len(header.transform) != 6:
            raise CompressedFileError("The compressed file's header has an invalid size or geotransform.")
        if header.strip_rows < 0 or header.latent_height < 1 or header.latent_width < 1:
            raise CompressedFileError("The compressed file's header has an invalid latent grid or strips.")
        if header.entropy_model not in ENTROPY_MODELS:
            raise CompressedFileError(
                f"The compressed file was coded with entropy model '{header.entropy_model}', which this "
                "SAR Toolbox does not know; update the SAR Toolbox plugin.")
        try:
            header.control_points  # noqa: B018 - parsed to check it
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise CompressedFileError(
                f"The compressed file's GCPs or RPCs are malformed ({exc}); the file is damaged.") from exc
        if header.post_filter:
            try:
                PostFilter.from_header(header.post_filter)
            except (TypeError, ValueError, KeyError) as exc:
                raise CompressedFileError(
                    f"The compressed file's restoration filter is malformed ({exc}); the file is damaged."
                ) from exc
        return header


@dataclass(frozen=True)
class CompressedFile:
    """One coded band of a parsed compressed file: header, compressed mask bytes, payload bytes and
    bright-pixel section; ``size_bytes`` is the whole file's size, ``coded_bytes`` this band's share."""

    header: CompressedHeader
    mask_bytes: bytes
    payload: bytes
    size_bytes: int
    exceptions: bytes = b""
    coded_bytes: int = 0

    @property
    def bpp(self) -> float:
        """This band's bits per pixel: 8 x its bytes (its sections) / pixels."""
        return 8.0 * self.coded_bytes / (self.header.width * self.header.height)

    def mask_reader(self) -> MaskReader:
        """A reader that inflates the validity mask strip by strip, top to bottom."""
        return MaskReader(self.mask_bytes, self.header.width, self.header.height)

    def mask(self) -> np.ndarray:
        """The whole validity mask (``height x width`` bool); fine for moderate rasters."""
        return self.mask_reader().read(self.header.height)


@dataclass(frozen=True)
class CompressedScene:
    """A parsed compressed file: its coded bands, in the source's band order, and its size."""

    bands: tuple[CompressedFile, ...]
    size_bytes: int
    version: int

    @property
    def bpp(self) -> float:
        """Bits per pixel of the whole file: 8 x file bytes / pixels of one band."""
        header = self.bands[0].header
        return 8.0 * self.size_bytes / (header.width * header.height)

    def index_of(self, source_band: int) -> int:
        """0-based position of the band coded from ``source_band``; a one-band file's only band."""
        if len(self.bands) == 1:
            return 0
        coded = [b.header.band for b in self.bands]
        if source_band not in coded:
            raise InputError(f"The compressed file holds bands {', '.join(map(str, coded))} of its source, "
                             f"not band {source_band}; choose one of those.")
        return coded.index(source_band)


class MaskReader:
    """Inflate a mask written by :class:`MaskWriter`, a few rows at a time."""

    def __init__(self, data: bytes, width: int, height: int) -> None:
        self.width, self.height = width, height
        self._row_bytes = (width + 7) // 8
        self._inflater = zlib.decompressobj()
        try:
            self._pending = bytearray(self._inflater.decompress(data, 1 << 20))
        except zlib.error as exc:
            raise CompressedFileError(f"The nodata mask in the compressed file is unreadable ({exc}).") \
                from exc
        self.rows_read = 0

    def read(self, rows: int) -> np.ndarray:
        """The next ``rows`` rows of the mask as bool ``(rows, width)`` (True = valid pixel)."""
        if rows < 0 or self.rows_read + rows > self.height:
            raise ValueError(f"cannot read {rows} more mask rows after row {self.rows_read} of {self.height}")
        need = rows * self._row_bytes
        while len(self._pending) < need:
            try:
                chunk = self._inflater.decompress(self._inflater.unconsumed_tail, 1 << 20)
            except zlib.error as exc:
                raise CompressedFileError(f"The nodata mask in the compressed file is unreadable ({exc}).") \
                    from exc
            if not chunk:
                raise CompressedFileError(
                    "The nodata mask in the compressed file is incomplete; the file is damaged."
                )
            self._pending += chunk
        packed = np.frombuffer(bytes(self._pending[:need]), dtype=np.uint8).reshape(rows, self._row_bytes)
        del self._pending[:need]
        self.rows_read += rows
        return np.unpackbits(packed, axis=1, count=self.width).astype(bool)


class MaskWriter:
    """Compress a validity mask strip by strip (rows top to bottom) without holding all of it."""

    def __init__(self, width: int) -> None:
        self.width = width
        self._deflater = zlib.compressobj(9)
        self._parts: list[bytes] = []
        self.rows = 0
        self.valid = 0

    def add(self, strip: np.ndarray) -> None:
        strip = np.asarray(strip, dtype=bool)
        if strip.ndim != 2 or strip.shape[1] != self.width:
            raise ValueError(f"mask strip must have {self.width} columns, got shape {strip.shape}")
        self.rows += strip.shape[0]
        self.valid += int(strip.sum())
        self._parts.append(self._deflater.compress(np.packbits(strip, axis=1).tobytes()))

    def finish(self) -> bytes:
        self._parts.append(self._deflater.flush())
        return b"".join(self._parts)


Band = tuple[CompressedHeader, bytes, bytes, bytes]
"""One coded band as :func:`pack_bands` takes it: header, mask bytes, payload, bright-pixel section."""


def _band_sections(band: Band, version: int) -> list[bytes]:
    header, mask_bytes, payload, exceptions = band
    head = zlib.compress(header.to_json().encode("utf-8"), 9)
    sections = [_U32.pack(len(head)), head, _U32.pack(len(mask_bytes)), mask_bytes, _U64.pack(len(payload)),
                payload]
    if version >= EXCEPTIONS_VERSION:
        sections += [_U64.pack(len(exceptions)), exceptions]
    return sections


def _check_writable_version(band: Band, version: int) -> None:
    header, exceptions = band[0], band[3]
    if (version not in READABLE_VERSIONS or (exceptions and version < EXCEPTIONS_VERSION)
            or (header.entropy_model == HYPERPRIOR and version < HYPERPRIOR_VERSION)
            or (header.needs_multiband_version and version < MULTIBAND_VERSION)):
        extra = " and a description or GCPs/RPCs" if header.needs_multiband_version else ""
        raise ValueError(f"cannot write format version {version} with {len(exceptions)} exception bytes, "
                         f"entropy model {header.entropy_model}{extra}")


def _framed(version: int, sections: list[bytes]) -> bytes:
    total = _PREFIX.size + sum(len(part) for part in sections) + _U32.size
    body = b"".join([_PREFIX.pack(MAGIC, version, total), *sections])
    return body + _U32.pack(zlib.crc32(body) & 0xFFFFFFFF)


def pack(header: CompressedHeader, mask_bytes: bytes, payload: bytes, exceptions: bytes = b"",
         version: int | None = None) -> bytes:
    """Serialise a one-band compressed file to bytes (see the module docstring for the layout).

    ``version``: default the oldest that holds the band (:data:`FACTORISED_VERSION`, with a hyperprior
    :data:`HYPERPRIOR_VERSION`, with a description or GCPs/RPCs :data:`MULTIBAND_VERSION`); an older
    readable version may be written (no bright-pixel section before 4, no hyperprior before 5).
    """
    return pack_bands([(header, mask_bytes, payload, exceptions)], version)


def pack_bands(bands: list[Band], version: int | None = None) -> bytes:
    """Serialise the coded bands of one scene to bytes: one band in the oldest version that holds it
    (:func:`pack`), several in version 6."""
    return pack_scene(bands, version)[0]


def pack_scene(bands: list[Band], version: int | None = None) -> tuple[bytes, tuple[int, ...]]:
    """:func:`pack_bands` and each band's share of the bytes (its sections, as
    :attr:`CompressedFile.coded_bytes` reads them back)."""
    if not bands:
        raise ValueError("a compressed file needs at least one band")
    if version is None:
        header = bands[0][0]
        version = (MULTIBAND_VERSION if len(bands) > 1 or header.needs_multiband_version
                   else HYPERPRIOR_VERSION if header.entropy_model == HYPERPRIOR else FACTORISED_VERSION)
    for band in bands:
        _check_writable_version(band, version)
    if version < MULTIBAND_VERSION and len(bands) > 1:
        raise ValueError(f"format version {version} holds one band, not {len(bands)}")
    control = bands[0][0].control
    per_band = []
    for i, (header, mask_bytes, payload, exceptions) in enumerate(bands):
        if i and header.control == control:  # stored once, in the first band's header
            header = dataclasses.replace(header, control={})
        per_band.append(_band_sections((header, mask_bytes, payload, exceptions), version))
    count = [_U16.pack(len(bands))] if version >= MULTIBAND_VERSION else []
    sizes = tuple(sum(len(part) for part in sections) for sections in per_band)
    return _framed(version, count + [part for sections in per_band for part in sections]), sizes


def _corrupted(name: str) -> CompressedFileError:
    return CompressedFileError(
        f"{name} is corrupted (its checksum or its section sizes do not match its contents); "
        "the file was damaged in storage or transfer. Use an intact copy."
    )


def _sections(data: bytes, pos: int, version: int) -> tuple[list[bytes], int | None]:
    """One band's header, mask, payload (and bright pixels) as declared from ``pos``; the end, ``None``
    if a size runs past the data."""
    sections: list[bytes] = []
    sizes = (_U32, _U32, _U64, _U64) if version >= EXCEPTIONS_VERSION else (_U32, _U32, _U64)
    for fmt in sizes:
        if len(data) < pos + fmt.size:
            return sections, None
        (length,) = fmt.unpack_from(data, pos)
        pos += fmt.size
        if len(data) < pos + length:
            return sections, None
        sections.append(bytes(data[pos : pos + length]))
        pos += length
    return sections, pos


def _band_records(data: bytes, version: int) -> tuple[list[list[bytes]], int | None]:
    """The sections of every band as declared, and where they end (``None`` if a size runs past the data)."""
    if version < MULTIBAND_VERSION:
        sections, end = _sections(data, _PREFIX.size, version)
        return [sections], end
    if len(data) < _PREFIX.size + _U16.size:
        return [], None
    (count,) = _U16.unpack_from(data, _PREFIX.size)
    records: list[list[bytes]] = []
    pos: int | None = _PREFIX.size + _U16.size
    for _ in range(count):
        assert pos is not None
        sections, pos = _sections(data, pos, version)
        if pos is None:
            return records, None
        records.append(sections)
    return records, pos


def _truncated(name: str) -> CompressedFileError:
    return CompressedFileError(
        f"{name} is truncated (it ends before its declared end); the copy is incomplete. "
        "Copy or download the file again."
    )


def unpack(data: bytes, name: str = "The compressed file") -> CompressedFile:
    """Parse and verify a one-band file written by :func:`pack`; raise :class:`CompressedFileError` if
    unusable (a file of several bands too: read those with :func:`unpack_scene`)."""
    scene = unpack_scene(data, name)
    if len(scene.bands) > 1:
        raise CompressedFileError(f"{name} holds {len(scene.bands)} bands; decode it with "
                                  "'sartoolbox:decompress', which restores every band.")
    return scene.bands[0]


def _check_frame(data: bytes, name: str) -> int:
    """Signature and version of a compressed file (the version)."""
    if len(data) < len(MAGIC):
        if data and MAGIC.startswith(data):
            raise _truncated(name)
        raise CompressedFileError(
            f"{name} is not a SAR Toolbox compressed file (it is too short to hold the "
            f"'{SUFFIX}' signature); choose a file written by 'sartoolbox:compress'."
        )
    if data[: len(MAGIC)] != MAGIC:
        raise CompressedFileError(
            f"{name} is not a SAR Toolbox compressed file (its signature does not match); "
            f"choose a '{SUFFIX}' file written by 'sartoolbox:compress'."
        )
    if len(data) < struct.calcsize("<8sH"):
        raise _truncated(name)
    (version,) = struct.unpack_from("<H", data, len(MAGIC))
    if version not in READABLE_VERSIONS:
        newer = "newer" if version > FORMAT_VERSION else "older, unsupported"
        raise CompressedFileError(
            f"{name} uses compressed-file format version {version}, but this SAR Toolbox reads "
            f"versions {', '.join(map(str, READABLE_VERSIONS))} (the file comes from a {newer} release); "
            "update the SAR Toolbox plugin or decompress it with the release that wrote it."
        )
    if len(data) < _PREFIX.size:
        raise _truncated(name)
    return int(version)


def unpack_scene(data: bytes, name: str = "The compressed file") -> CompressedScene:
    """Parse and verify bytes written by :func:`pack_bands` (any readable version); raise
    :class:`CompressedFileError` if unusable."""
    version = _check_frame(data, name)
    _, _, total = _PREFIX.unpack_from(data)
    records, end = _band_records(data, version)
    if end is None or end + _U32.size != total:
        # the declared sizes disagree with each other: a damaged size field, or a cut inside one
        if len(data) < total and end is None:
            raise _truncated(name)
        raise _corrupted(name)
    if len(data) < total:
        raise _truncated(name)
    if len(data) > total:
        raise CompressedFileError(
            f"{name} has {len(data) - total} unexpected bytes after its end; it was damaged or "
            "appended to. Use an intact copy."
        )
    (stored,) = _U32.unpack_from(data, end)
    if zlib.crc32(data[:end]) & 0xFFFFFFFF != stored or not records:
        raise _corrupted(name)
    bands = tuple(_parsed_band(sections, version, len(data), name) for sections in records)
    if len({(b.header.width, b.header.height) for b in bands}) > 1:
        raise _corrupted(name)
    control = bands[0].header.control
    bands = tuple(dataclasses.replace(b, header=dataclasses.replace(b.header, control=control))
                  if control and not b.header.control else b for b in bands)
    return CompressedScene(bands, len(data), version)


def _parsed_band(sections: list[bytes], version: int, size: int, name: str) -> CompressedFile:
    try:
        text = zlib.decompress(sections[0]).decode("utf-8")
    except (zlib.error, UnicodeDecodeError) as exc:
        raise CompressedFileError(f"{name} has an unreadable header ({exc}).") from exc
    header = CompressedHeader.from_json(text)
    if header.entropy_model != FACTORISED and version < HYPERPRIOR_VERSION:
        raise CompressedFileError(
            f"{name} declares format version {version} but a {header.entropy_model} payload (version "
            f"{HYPERPRIOR_VERSION} on); it was written by incompatible software. Compress the source again.")
    bright = sections[3] if len(sections) > 3 else b""
    coded = sum(len(part) for part in sections) + (_U32.size * 2 + _U64.size * (len(sections) - 2))
    return CompressedFile(header, sections[1], sections[2], size, bright, coded)


def read_compressed(path: str | os.PathLike[str]) -> CompressedFile:
    """Read and verify a one-band compressed file from disk (:func:`unpack`)."""
    scene = read_scene(path)
    if len(scene.bands) > 1:
        raise CompressedFileError(f"'{Path(path).name}' holds {len(scene.bands)} bands; decode it with "
                                  "'sartoolbox:decompress', which restores every band.")
    return scene.bands[0]


def read_scene(path: str | os.PathLike[str]) -> CompressedScene:
    """Read and verify a compressed file from disk, every band (:func:`unpack_scene`)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CompressedFileError(
            f"Compressed file '{path}' does not exist; check the path."
        ) from None
    except IsADirectoryError:
        raise CompressedFileError(f"'{path}' is a folder, not a compressed file; choose a '{SUFFIX}' file.") \
            from None
    except OSError as exc:
        raise CompressedFileError(f"Compressed file '{path}' cannot be read ({exc}).") from exc
    return unpack_scene(data, name=f"'{path.name}'")
