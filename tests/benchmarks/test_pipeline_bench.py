"""The pipeline benchmark machinery (not a timed test): section replacement and one tiny run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.common import replace_section
from benchmarks.pipeline import SECTION, main


def test_replace_section_keeps_other_sections(tmp_path: Path) -> None:
    doc = tmp_path / "B.md"
    doc.write_text(f"# Benchmarks\n\n## Compression\n\nc\n\n{SECTION}\n\nold\n\n## Registration\n\nr\n")
    replace_section(doc, f"{SECTION}\n\nnew\n")
    text = doc.read_text()
    assert "old" not in text and "new" in text
    assert text.index("## Compression") < text.index(SECTION) < text.index("## Registration")
    fresh = tmp_path / "fresh.md"
    replace_section(fresh, f"{SECTION}\n\nx\n")
    assert fresh.read_text().startswith("# Benchmarks\n\n" + SECTION)


@pytest.mark.slow
def test_tiny_run_writes_table_and_cleans_up(tmp_path: Path) -> None:
    doc, figures = tmp_path / "B.md", tmp_path / "m.json"
    work = tmp_path / "work"
    work.mkdir()
    assert main(["--sizes", "40", "70", "--tile-size", "32", "--overlap", "8", "--markdown", str(doc),
                 "--json", str(figures), "--workdir", str(work)]) == 0
    rows = json.loads(figures.read_text())
    assert [r["size"] for r in rows] == [40, 70]
    assert all(r["peak_rss_mb"] > 10 and r["mpix_per_s"] > 0 and r["tiles"] > 1 for r in rows)
    text = doc.read_text()
    assert "| 40 x 40 |" in text and "| 70 x 70 |" in text and "Memory does not follow the scene area" in text
    assert list(work.iterdir()) == []  # scenes and outputs deleted
