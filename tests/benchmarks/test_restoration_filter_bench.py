"""The restoration-filter benchmark times and scores the three variants side by side on a tiny scene."""

from __future__ import annotations

from pathlib import Path

from benchmarks.restoration_filter import SECTION, main


def test_restoration_filter_bench_on_a_tiny_scene(tmp_path: Path) -> None:
    markdown = tmp_path / "BENCH.md"
    assert main(["--data", str(tmp_path / "no_data"), "--size", "256", "--rates", "r1",
                 "--markdown", str(markdown)]) == 0
    text = markdown.read_text()
    assert SECTION in text
    rows = [line for line in text.splitlines() if line.startswith("| synthetic 256 x 256 | r1 |")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert all(float(c) > 0 for c in cells[2:5])  # three encode times
