"""The batch benchmark runs end to end on tiny scenes and writes its Markdown section."""

from __future__ import annotations

from pathlib import Path

from benchmarks.batch import SECTION, main


def test_tiny_batch_benchmark_writes_its_section(tmp_path: Path) -> None:
    doc = tmp_path / "B.md"
    assert main(["--size", "96", "--scenes", "2", "--workers", "1", "--algorithm", "todb",
                 "--markdown", str(doc)]) == 0
    text = doc.read_text()
    assert SECTION in text
    row = next(line for line in text.splitlines() if line.startswith("| 1 |"))
    wall, per_minute = (float(c) for c in row.strip("|").split("|")[1:3])
    assert wall > 0 and abs(per_minute - 60 * 2 / wall) < 0.05 * per_minute + 0.01
