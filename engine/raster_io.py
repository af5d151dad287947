"""Raster input/output with rasterio: inspection, boundless windowed reads, GeoTIFF writes.

rasterio is imported inside the functions (``import engine`` stays cheap) and
every access runs inside :func:`raster_env` (a scoped ``rasterio.Env`` with a
bounded GDAL block cache, so memory does not grow with the scene).

Outputs keep the CRS as WKT, the geotransform, nodata and band descriptions, and the
georeferencing a geotransform cannot hold: ground control points with their CRS (a Sentinel-1
GRD has only those) and RPCs (:class:`ControlPoints`, carried by :class:`RasterInfo` and applied by
:func:`default_profile`). They are written atomically through :func:`atomic_output`. Float outputs use
:data:`OUTPUT_NODATA` (-9999) as nodata: a value QGIS shows as transparent
out of the box and that no dB or linear SAR value can take.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .errors import DependencyError, InputError, RasterIOError, UnsupportedDataError
from .tiling import RowQueue, Window, band_list, pad_to_window

if TYPE_CHECKING:
    from affine import Affine

logger = logging.getLogger(__name__)

OUTPUT_NODATA = -9999.0
"""Nodata value of every float32 raster the engine writes."""

GDAL_CACHE_MB = 128
"""GDAL block cache in megabytes inside :func:`raster_env` (GDAL's default, 5% of RAM, grows)."""

GDAL_CACHE_BYTES = GDAL_CACHE_MB * 1024 * 1024
"""The same cache in bytes: rasterio hands an integer ``GDAL_CACHEMAX`` to GDAL as bytes, not megabytes."""

DEFLATE_LEVEL = 1
"""Deflate level of outputs: on speckled float SAR data level 6 is ~2x slower for ~1.5% smaller files."""

UNREADABLE = "the file is truncated, corrupted or unreadable: copy or export it again."
"""What to do when GDAL cannot read a raster's pixels (the end of every read error)."""

COMPLEX_DTYPES = ("complex_int16", "complex64", "complex128", "cint16", "cint32", "cfloat32", "cfloat64")


def _rasterio() -> Any:
    try:
        import rasterio
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DependencyError("rasterio", "Reading and writing rasters") from exc
    return rasterio


@contextlib.contextmanager
def raster_env(**options: Any) -> Iterator[None]:
    """Scoped GDAL configuration for raster I/O (bounded cache, no sidecar noise)."""
    rasterio = _rasterio()
    settings = {"GDAL_CACHEMAX": GDAL_CACHE_BYTES, "GDAL_PAM_ENABLED": "NO", "CPL_LOG_ERRORS": "OFF"}
    settings.update(options)
    with rasterio.Env(**settings):
        yield


@contextlib.contextmanager
def osgeo_cache(gdal: Any, limit: int = GDAL_CACHE_BYTES) -> Iterator[None]:
    """Bound the block cache of the system GDAL (``osgeo``, a library apart from rasterio's, which
    :func:`raster_env` configures) to ``limit`` bytes while the block runs. Its default is 5 % of the
    machine's memory, which a whole-raster ``gdal.Translate``/``gdal.Warp`` fills with dirty blocks. The
    setting is process-wide (GDAL has no scoped one): it is only ever lowered, and restored after."""
    previous = int(gdal.GetCacheMax())
    gdal.SetCacheMax(min(previous, int(limit)))
    try:
        yield
    finally:
        gdal.SetCacheMax(previous)


@contextlib.contextmanager
def osgeo_thread_options(gdal: Any, **options: str) -> Iterator[None]:
    """Configuration options of the system GDAL (``osgeo``) for the calling thread while the block runs,
    restored after (other threads and the process-wide settings are left as they are)."""
    previous = {key: gdal.GetThreadLocalConfigOption(key, None) for key in options}
    for key, value in options.items():
        gdal.SetThreadLocalConfigOption(key, value)
    try:
        yield
    finally:
        for key, value in previous.items():
            gdal.SetThreadLocalConfigOption(key, value)


class ControlPoint(NamedTuple):
    """A ground control point: pixel ``(row, col)`` at map ``(x, y, z)`` in its CRS."""

    row: float
    col: float
    x: float
    y: float
    z: float = 0.0


@dataclass(frozen=True)
class ControlPoints:
    """Georeferencing besides a geotransform: ground control points with their CRS, and RPCs.

    Empty (false) for a raster georeferenced by its geotransform alone.
    """

    gcps: tuple[ControlPoint, ...] = ()
    gcp_crs_wkt: str | None = None
    rpcs: tuple[tuple[str, str], ...] = ()
    """RPC metadata items as GDAL names them (``LINE_OFF``, ``SAMP_NUM_COEFF``, ...)."""

    def __bool__(self) -> bool:
        return bool(self.gcps or self.rpcs)

    @classmethod
    def of(cls, dataset: Any) -> ControlPoints:
        """The GCPs and RPCs of an open rasterio dataset."""
        points, crs = dataset.gcps
        rpcs = dataset.rpcs
        return cls(
            gcps=tuple(ControlPoint(float(p.row), float(p.col), float(p.x), float(p.y), float(p.z or 0.0))
                       for p in points),
            gcp_crs_wkt=crs.to_wkt() if points and crs else None,
            rpcs=tuple(sorted((str(k), str(v)) for k, v in rpcs.to_gdal().items())) if rpcs else (),
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (empty when there is nothing to keep)."""
        data: dict[str, Any] = {}
        if self.gcps:
            data["gcps"] = [list(p) for p in self.gcps]
            data["gcp_crs_wkt"] = self.gcp_crs_wkt
        if self.rpcs:
            data["rpcs"] = dict(self.rpcs)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ControlPoints:
        """The inverse of :meth:`to_json` (raises ``TypeError``/``ValueError`` on malformed data)."""
        gcps = tuple(ControlPoint(*(float(v) for v in p)) for p in data.get("gcps", ()))
        rpcs = tuple(sorted((str(k), str(v)) for k, v in dict(data.get("rpcs", {})).items()))
        return cls(gcps, data.get("gcp_crs_wkt") if gcps else None, rpcs)

    def rasterio_gcps(self) -> list[Any]:
        """The GCPs as rasterio ``GroundControlPoint`` objects (to write, or for GDAL's GCP transformer)."""
        from rasterio.control import GroundControlPoint

        return [GroundControlPoint(row=p.row, col=p.col, x=p.x, y=p.y, z=p.z) for p in self.gcps]

    def profile_items(self) -> dict[str, Any]:
        """What a rasterio profile needs to write them (GCPs replace the geotransform)."""
        if not self:
            return {}
        rasterio = _rasterio()
        items: dict[str, Any] = {}
        if self.gcps:
            items["gcps"] = self.rasterio_gcps()
            if self.gcp_crs_wkt:
                items["crs"] = rasterio.crs.CRS.from_wkt(self.gcp_crs_wkt)
        if self.rpcs:
            from rasterio.rpc import RPC

            items["rpcs"] = RPC.from_gdal(dict(self.rpcs))
        return items


NO_CONTROL_POINTS = ControlPoints()


@dataclass(frozen=True)
class RasterInfo:
    """What the engine needs to know about a raster (no pixel data)."""

    path: str
    width: int
    height: int
    count: int
    dtypes: tuple[str, ...]
    crs_wkt: str | None
    transform: Affine
    nodata: float | None
    descriptions: tuple[str | None, ...]
    control: ControlPoints = NO_CONTROL_POINTS
    """GCPs (with their CRS) and RPCs, kept on every output (empty for most rasters)."""

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def is_complex(self) -> bool:
        return any(is_complex_dtype(d) for d in self.dtypes)

    @property
    def map_crs_wkt(self) -> str | None:
        """The CRS of :meth:`pixel_to_map`'s coordinates: the raster's, or its GCPs' when it has GCPs only."""
        return self.crs_wkt or (self.control.gcp_crs_wkt if self.control.gcps else None)

    def pixel_to_map(self, xy: np.ndarray) -> np.ndarray:
        """Map coordinates ``(n, 2)`` of pixel positions ``xy`` (``(n, 2)`` column, row; pixel corners at
        integers): through the geotransform, or, for a raster with GCPs only, through GDAL's GCP
        transformer (the polynomial QGIS also uses to place such a raster)."""
        pts = np.atleast_2d(np.asarray(xy, dtype=np.float64))
        if self.control.gcps:
            from rasterio.transform import GCPTransformer

            with GCPTransformer(self.control.rasterio_gcps()) as transformer:
                xs, ys = transformer.xy(pts[:, 1], pts[:, 0], offset="ul")
            return np.column_stack([np.asarray(xs, np.float64), np.asarray(ys, np.float64)])
        t, x, y = self.transform, pts[:, 0], pts[:, 1]
        return np.column_stack([t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f])

    def dtype(self, band: int) -> str:
        """dtype name of a 1-based band."""
        return self.dtypes[band - 1]

    def check(self, bands: Sequence[int] | None = None) -> None:
        """Raise :class:`InputError`/:class:`UnsupportedDataError` if the raster cannot be processed."""
        if self.width < 1 or self.height < 1 or self.count < 1:
            raise InputError(
                f"Raster '{self.path}' is empty ({self.width} x {self.height} pixels, {self.count} bands); "
                "choose a raster with at least one pixel and one band."
            )
        for band in bands or ():
            if not 1 <= band <= self.count:
                raise InputError(
                    f"Band {band} does not exist in '{self.path}', which has {self.count} band(s); "
                    f"choose a band between 1 and {self.count}."
                )
        checked = bands if bands else range(1, self.count + 1)
        for band in checked:
            if is_complex_dtype(self.dtype(band)):
                raise UnsupportedDataError(
                    f"Band {band} of '{self.path}' holds complex values ({self.dtype(band)}, e.g. SLC); "
                    "complex SAR data is not supported yet. Convert it to intensity (|z|^2) first, e.g. "
                    "with a GDAL VRT derived band (PixelFunctionType 'intensity', SourceTransferType "
                    "'CFloat32') written out with 'gdal_translate -ot Float32', or with the QGIS raster "
                    "calculator (real^2 + imag^2 of separate real/imaginary bands), then run this tool on "
                    "the intensity raster."
                )


def band_label(band: int, description: str | None, capitalised: bool = False) -> str:
    """``band 2 (VH)`` (``Band 2 (VH)`` at the start of a sentence): how messages name a band (its
    description when it has one)."""
    return f"{'Band' if capitalised else 'band'} {band}" + (f" ({description})" if description else "")


def is_complex_dtype(dtype: str) -> bool:
    """True for complex GDAL/numpy dtype names (CInt16, complex64, ...)."""
    name = str(dtype).lower()
    return name in COMPLEX_DTYPES or name.startswith("complex") or name.startswith("cint") \
        or name.startswith("cfloat")


def inspect_raster(path: str | os.PathLike[str], band: int | Sequence[int] | None = None) -> RasterInfo:
    """Open a raster, check it can be processed and describe it.

    Raises:
        InputError: missing file, not a raster, empty raster, band out of range.
        UnsupportedDataError: complex (SLC) band.
        RasterIOError: the file exists but cannot be read (permissions, I/O).
    """
    rasterio = _rasterio()
    p = Path(path)
    if not p.exists():
        raise InputError(f"Input raster '{p}' does not exist; choose an existing raster file.")
    if p.is_dir() and not any(p.iterdir()):
        raise InputError(f"Input '{p}' is an empty folder, not a raster; choose a raster file.")
    if p.is_file() and not os.access(p, os.R_OK):
        raise RasterIOError(f"Input raster '{p}' cannot be read (permission denied); fix its permissions.")
    try:
        with raster_env(), rasterio.open(p) as src:
            info = RasterInfo(
                path=str(p),
                width=int(src.width),
                height=int(src.height),
                count=int(src.count),
                dtypes=tuple(str(d) for d in src.dtypes),
                crs_wkt=src.crs.to_wkt() if src.crs else None,
                transform=src.transform,
                nodata=None if src.nodata is None else float(src.nodata),
                descriptions=tuple(src.descriptions),
                control=ControlPoints.of(src),
            )
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(
            f"'{p}' is not a raster GDAL can read ({exc}); choose a GeoTIFF or another GDAL raster."
        ) from exc
    info.check(band_list(band))
    return info


@contextlib.contextmanager
def open_raster(path: str | os.PathLike[str]) -> Iterator[Any]:
    """Open a raster for reading inside :func:`raster_env`; yields the rasterio dataset."""
    rasterio = _rasterio()
    with raster_env():
        try:
            src = rasterio.open(path)
        except rasterio.errors.RasterioIOError as exc:
            raise InputError(f"'{path}' is not a raster GDAL can read ({exc}); choose another file.") from exc
        with src:
            yield src


def read_bands(source: Any, bands: Sequence[int], what: str, **kwargs: Any) -> np.ndarray:
    """``source.read(bands, **kwargs)``: the one place where a failed read becomes a
    :class:`RasterIOError` that names the file, the part read (``what``) and what to do."""
    rasterio = _rasterio()
    try:
        return np.asarray(source.read(list(bands), **kwargs))
    except rasterio.errors.RasterioIOError as exc:
        detail = f"{exc}: {exc.__cause__}" if exc.__cause__ else str(exc)
        raise RasterIOError(f"Reading {what} of '{source.name}' failed ({detail}); {UNREADABLE}") from exc


def read_window(
    source: Any, band: int | Sequence[int], window: Window, fill: float = np.nan,
    dtype: Any = np.float32, mirror: bool = False,
) -> np.ndarray:
    """The one boundless read: ``window`` may extend beyond the raster; outside pixels are ``fill``,
    or with ``mirror`` the inside mirrored at its edges (:func:`engine.tiling.pad_to_window`).

    Args:
        source: an open rasterio dataset or a path.
        band: 1-based band index (result ``(h, w)``) or a sequence of them (result ``(n, h, w)``).
        window: pixel window to read.
        fill: value of pixels outside the raster.
        dtype: dtype of the result.
        mirror: mirror the inside instead of filling (``window`` must overlap the raster).
    """
    if isinstance(source, str | os.PathLike):
        with open_raster(source) as src:
            return read_window(src, band, window, fill, dtype, mirror)
    bands = band_list(band)
    inside = window.intersection(Window(0, 0, source.height, source.width))
    data = np.zeros((len(bands), 0, 0), dtype=dtype)
    if not inside.is_empty:
        rasterio = _rasterio()
        data = read_bands(source, bands, f"rows {inside.row_off}-{inside.row_end}",
                          window=rasterio.windows.Window(inside.col_off, inside.row_off, inside.width,
                                                         inside.height))
    out = pad_to_window(data, inside, window, fill, mirror, dtype)
    return out[0] if isinstance(band, int | np.integer) else out


# ------------------------------------------------------------------ writing
def check_writable(path: str | os.PathLike[str]) -> Path:
    """Raise :class:`RasterIOError` unless ``path`` can be created (or replaced) as a file."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise RasterIOError(f"Output '{p}' is a folder; choose a file name such as '{p / 'output.tif'}'.")
    if not parent.exists():
        # A regular file among the ancestors makes the folder impossible to create.
        blocker = next((a for a in p.parents if a.exists()), None)
        if blocker is not None and not blocker.is_dir():
            raise RasterIOError(
                f"Cannot write '{p}': '{blocker}' is a file, not a folder; choose an output in an "
                "existing folder."
            )
        raise RasterIOError(f"Cannot write '{p}': folder '{parent}' does not exist; create it or choose "
                            "an output in an existing folder.")
    if not parent.is_dir():
        raise RasterIOError(f"Cannot write '{p}': '{parent}' is a file, not a folder; choose an output "
                            "in an existing folder.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RasterIOError(f"Cannot write '{p}': folder '{parent}' is not writable; choose another folder.")
    if p.exists() and not os.access(p, os.W_OK):
        raise RasterIOError(f"Cannot replace '{p}': the file is read-only; choose another output name.")
    return p


def _remove_quietly(path: Path) -> None:
    for candidate in (path, Path(str(path) + ".aux.xml"), Path(str(path) + ".msk"), Path(str(path) + ".ovr")):
        with contextlib.suppress(FileNotFoundError):
            candidate.unlink()


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success, remove it otherwise.

    Nothing is left behind on error or cancellation (the exception propagates).
    """
    final = check_writable(path)
    tmp = final.with_name(f".{final.stem}.tmp-{uuid.uuid4().hex[:8]}{final.suffix}")
    try:
        yield tmp
        if not tmp.exists():
            raise RasterIOError(f"No output was produced for '{final}'.")
        os.replace(tmp, final)
        aux = Path(str(tmp) + ".aux.xml")
        if aux.exists():
            os.replace(aux, Path(str(final) + ".aux.xml"))
    except BaseException:
        _remove_quietly(tmp)
        raise
    logger.debug("wrote %s", final)


def default_profile(
    width: int,
    height: int,
    count: int = 1,
    dtype: str = "float32",
    crs_wkt: str | None = None,
    transform: Affine | None = None,
    nodata: float | None = OUTPUT_NODATA,
    compress: str = "deflate",
    blocksize: int = 256,
    control: ControlPoints = NO_CONTROL_POINTS,
) -> dict[str, Any]:
    """The one output profile: tiled, compressed GeoTIFF (BIGTIFF if needed) with a predictor.

    ``control``: GCPs (they replace ``transform``, and their CRS ``crs_wkt``) and RPCs to write.
    """
    rasterio = _rasterio()
    floating = np.issubdtype(np.dtype(dtype), np.floating)
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": int(width),
        "height": int(height),
        "count": int(count),
        "dtype": dtype,
        "crs": rasterio.crs.CRS.from_wkt(crs_wkt) if crs_wkt else None,
        "transform": transform if transform is not None else rasterio.transform.Affine.identity(),
        "nodata": nodata,
        "tiled": True,
        "blockxsize": blocksize,
        "blockysize": blocksize,
        "compress": compress,
        "predictor": 3 if floating else 2,
        "BIGTIFF": "IF_SAFER",
    }
    if compress == "deflate":
        profile["zlevel"] = DEFLATE_LEVEL
    if control.gcps:
        del profile["transform"]  # a GeoTIFF holds GCPs or a geotransform, not both
    profile.update(control.profile_items())
    return profile


def profile_like(info: RasterInfo, count: int = 1, dtype: str = "float32",
                 nodata: float | None = OUTPUT_NODATA) -> dict[str, Any]:
    """:func:`default_profile` on the grid of ``info``: size, CRS, transform, GCPs and RPCs."""
    return default_profile(info.width, info.height, count, dtype, info.crs_wkt, info.transform, nodata,
                           control=info.control)


class RasterWriter:
    """An open output GeoTIFF written window by window (use through :func:`create_raster`).

    :meth:`write_rows` takes full-width strips top to bottom and writes them in whole
    block rows: writing a compressed GeoTIFF in strips that cut through blocks makes
    GDAL rewrite those blocks (slower, and the file keeps the dead copies).
    """

    def __init__(self, dataset: Any) -> None:
        self._ds = dataset
        self._block_rows = int(dataset.block_shapes[0][0]) if dataset.block_shapes else 256
        self._rows = RowQueue(axis=1)

    @property
    def width(self) -> int:
        return int(self._ds.width)

    @property
    def height(self) -> int:
        return int(self._ds.height)

    @property
    def count(self) -> int:
        return int(self._ds.count)

    def write(self, window: Window, data: np.ndarray) -> None:
        """Write ``data`` (``(h, w)`` or ``(bands, h, w)``) at ``window``, unbuffered."""
        rasterio = _rasterio()
        arr = data if data.ndim == 3 else data[np.newaxis]
        self._ds.write(arr.astype(self._ds.dtypes[0], copy=False),
                       window=rasterio.windows.Window(window.col_off, window.row_off, window.width,
                                                      window.height))

    def write_rows(self, row_off: int, data: np.ndarray) -> None:
        """Buffer full-width rows (``(h, w)`` or ``(bands, h, w)``), given top to bottom without gaps."""
        arr = data if data.ndim == 3 else data[np.newaxis]
        if arr.shape[2] != self.width:
            raise ValueError(f"write_rows needs full-width rows ({self.width}), got width {arr.shape[2]}.")
        if row_off != self._rows.end:
            raise ValueError(f"Rows must be written in order: expected row {self._rows.end}, got {row_off}.")
        self._rows.push(arr.astype(self._ds.dtypes[0], copy=False))
        end = self._rows.end
        aligned = end if end >= self.height else (end // self._block_rows) * self._block_rows
        if aligned > self._rows.top:
            self._flush_to(aligned)

    def _flush_to(self, row_end: int) -> None:
        top = self._rows.top
        (block,) = self._rows.take(row_end - top)
        self.write(Window(top, 0, block.shape[1], self.width), block)

    def flush(self) -> None:
        """Write rows still buffered by :meth:`write_rows`."""
        if self._rows.rows:
            self._flush_to(self._rows.end)

    def set_tags(self, tags: dict[str, str]) -> None:
        """Dataset-level metadata tags (default namespace)."""
        self._ds.update_tags(**tags)

    def set_descriptions(self, descriptions: Sequence[str | None]) -> None:
        for i, text in enumerate(descriptions, start=1):
            if text:
                self._ds.set_band_description(i, text)


@contextlib.contextmanager
def create_raster(path: str | os.PathLike[str], profile: dict[str, Any],
                  descriptions: Sequence[str | None] = ()) -> Iterator[RasterWriter]:
    """Create ``path`` with ``profile`` (not atomic by itself: pass a path from :func:`atomic_output`).

    Rows buffered by :meth:`RasterWriter.write_rows` are flushed when the block exits normally.
    """
    rasterio = _rasterio()
    with raster_env():
        try:
            dst = rasterio.open(path, "w", **profile)
        except (rasterio.errors.RasterioIOError, OSError) as exc:
            raise RasterIOError(f"Cannot create '{path}' ({exc}); choose another output path.") from exc
        with dst:
            writer = RasterWriter(dst)
            writer.set_descriptions(descriptions)
            yield writer
            writer.flush()


def write_raster(
    path: str | os.PathLike[str],
    data: np.ndarray,
    crs_wkt: str | None,
    transform: Affine,
    nodata: float | None = OUTPUT_NODATA,
    descriptions: Sequence[str | None] = (),
    compress: str = "deflate",
    control: ControlPoints = NO_CONTROL_POINTS,
) -> Path:
    """Write an in-memory array (``(h, w)`` or ``(bands, h, w)``) atomically as a GeoTIFF."""
    arr = data if data.ndim == 3 else data[np.newaxis]
    profile = default_profile(arr.shape[2], arr.shape[1], arr.shape[0], str(arr.dtype), crs_wkt, transform,
                              nodata, compress, control=control)
    with atomic_output(path) as tmp, create_raster(tmp, profile, descriptions) as writer:
        writer.write(Window(0, 0, arr.shape[1], arr.shape[2]), arr)
    return Path(path)
