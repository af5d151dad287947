"""The compression-quality memory benchmark runs end to end on a tiny scene and checks its own figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.quality_memory import SECTION, main, measure


@pytest.mark.slow
def test_benchmark_measures_both_paths_and_writes_its_section(tmp_path: Path) -> None:
    row = measure(320, 200, tmp_path, check_up_to_mpix=1.0)
    assert row.peak_rss_mb > 50 and row.in_memory_rss_mb is not None and row.largest_difference is not None
    assert max(row.largest_difference.values()) < 1e-4  # the issue asks 0.01 dB
    markdown = tmp_path / "BENCH.md"
    assert main(["--sizes", "300x200", "--in-memory-check", "0", "--markdown", str(markdown),
                 "--workdir", str(tmp_path)]) == 0
    text = markdown.read_text()
    assert SECTION in text and "| 300 x 200 |" in text and "--sizes 300x200" in text
    assert list(tmp_path.glob("quality*")) == []  # the scenes are removed
