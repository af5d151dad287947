"""Bright targets in the compression benchmark: the error at pixels above the codec model's range
and the bits the exception layer (:mod:`engine.codec.bright_pixels`) costs, per rate point.

"Before" decodes the same file rewritten as format version 3 (no bright-pixel section: those
pixels come back clipped to the top of the model's range, as every file did before version 4).
Used by :mod:`benchmarks.compression` (``--bright-targets`` runs only this on the chosen images).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import section_head
from engine.codec import fileformat
from engine.codec.decode import decompress_file
from engine.codec.quality import metrics as quality

SECTION = "## Compression: bright targets (python -m benchmarks.compression --bright-targets)"
NEAR_TOP_DB = 10.0
"""Also reported: the codec's own error at the pixels this many dB below the top of the range."""


@dataclass(frozen=True)
class BrightRow:
    image: str
    rate: str
    above: int
    valid: int
    top_db: float
    max_error_before: float
    max_error_now: float
    section_bytes: int
    file_bytes: int
    pixels: int
    near_top: int
    max_error_near_top: float

    @property
    def section_bpp(self) -> float:
        return 8.0 * self.section_bytes / self.pixels

    @property
    def file_bpp(self) -> float:
        return 8.0 * self.file_bytes / self.pixels


def _max(values: np.ndarray) -> float:
    return float(values.max()) if values.size else float("nan")


def bright_row(image: str, rate: str, ref_db: np.ndarray, sarz: Path, decoded: Path,
               work: Path) -> BrightRow:
    """Errors at the pixels above the model's range of ``sarz`` (decoded to ``decoded``, dB), their bits."""
    data = sarz.read_bytes()
    cf = fileformat.unpack(data)
    header = cf.header
    old = work / f"{sarz.stem}_v3.sarz"
    # format 3 had no bright-pixel section, nor band descriptions and GCPs/RPCs (which leave pixels alone)
    v3_header = dataclasses.replace(header, description=None, control={})
    old.write_bytes(fileformat.pack(v3_header, cf.mask_bytes, cf.payload, version=3))
    before_tif = work / f"{sarz.stem}_v3.tif"
    decompress_file(old, before_tif, output_kind="db")
    now = quality.read_db(decoded, 1, "db")
    before = quality.read_db(before_tif, 1, "db")
    valid = np.isfinite(ref_db) & np.isfinite(now)
    top = header.db_max - header.shift_db
    above = valid & (ref_db > top)
    near = valid & (ref_db <= top) & (ref_db > top - NEAR_TOP_DB)
    return BrightRow(
        image=image, rate=rate, above=int(above.sum()), valid=int(valid.sum()), top_db=top,
        max_error_before=_max(np.abs(before - ref_db)[above]),
        max_error_now=_max(np.abs(now - ref_db)[above]),
        section_bytes=len(cf.exceptions), file_bytes=len(data), pixels=header.width * header.height,
        near_top=int(near.sum()), max_error_near_top=_max(np.abs(now - ref_db)[near]),
    )


def markdown_section(rows: list[BrightRow], command: str, machine: str) -> str:
    """The bright-target table; ``machine``: the machine line (:func:`benchmarks.common.machine_line`)."""
    lines = [
        *section_head(SECTION, command, machine),
        "Pixels above the model's range (dB above `db_max - shift_db` of the file) are coded apart "
        "(`engine/codec/bright_pixels.py`, 0.5 dB steps). Max error = largest |decoded - source| in dB at "
        "those pixels; *before* = the same file without the section (format 3: clipped to the top of "
        "the range). The section's bits are part of the file's bpp. Last column: the codec's own error at "
        f"the pixels up to {NEAR_TOP_DB:.0f} dB below the top (inside the range, not coded apart).",
        "",
        "| Image | Rate | Pixels above the range (share of valid) | Top of the range (dB) "
        "| Max error before (dB) | Max error now (dB) | Section bytes | Section bpp "
        f"| File bpp (section share) | Max error, {NEAR_TOP_DB:.0f} dB below the top (dB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.image} | {r.rate} | {r.above} ({100 * r.above / max(r.valid, 1):.3f} %) "
            f"| {r.top_db:.2f} | "
            f"{r.max_error_before:.2f} | {r.max_error_now:.3f} | {r.section_bytes} | {r.section_bpp:.4f} | "
            f"{r.file_bpp:.3f} ({100 * r.section_bytes / r.file_bytes:.1f} %) | {r.max_error_near_top:.2f} |"
        )
    return "\n".join(lines) + "\n"
