"""The bright-target table of the compression benchmark, on a tiny codec with planted targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.compression_bright import SECTION, bright_row, markdown_section
from engine.codec.decode import decompress_file
from engine.codec.encode import compress_raster
from engine.codec.quality import metrics as quality
from tests.conftest import write_test_geotiff
from tests.engine.test_codec_bright_pixels import scene_with_targets
from tests.engine.test_codec_roundtrip import _use_tiny_models, tiny_models  # noqa: F401


def test_the_row_measures_before_and_after_and_the_bits(tmp_path: Path) -> None:
    intensity, targets = scene_with_targets(seed=11)
    # a band description (format 6 on) must not stop the format-3 comparison file
    src = write_test_geotiff(tmp_path / "in.tif", intensity, descriptions=("sigma0 VV",))
    result = compress_raster(src, tmp_path / "c.sarz", rate="r1", shift_db=0.0)
    decompress_file(tmp_path / "c.sarz", tmp_path / "d.tif")
    ref_db = quality.read_db(src, 1, "intensity")
    row = bright_row("planted", "r1", ref_db, tmp_path / "c.sarz", tmp_path / "d.tif", tmp_path)
    assert row.above == int(targets.sum()) and row.section_bytes == result.exception_bytes > 0
    assert row.max_error_now <= 0.25 + 1e-3 and row.max_error_before > 10.0
    assert row.file_bytes == result.bytes and np.isclose(row.file_bpp, result.bpp)
    text = markdown_section([row], "python -m benchmarks.compression --bright-targets", "test machine")
    assert text.startswith(SECTION)
    assert f"| planted | r1 | {row.above} (" in text and f"| {row.section_bytes} |" in text
