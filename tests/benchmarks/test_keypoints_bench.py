"""benchmarks.keypoints: the random homographies, the warp convention, the metrics and one small run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks import keypoints as bench
from benchmarks.common import replace_section
from engine.registration.transforms import corner_error, degeneracy, project


def test_random_homographies_stay_in_the_protocol_range() -> None:
    for seed in range(50):
        g = bench.random_homography(np.random.default_rng(seed), 256, 256)
        assert degeneracy(g, 256, 256) is None
        jac_scale = np.sqrt(abs(np.linalg.det(g[:2, :2])))
        assert 0.7 < jac_scale < 1.4
        angle = np.degrees(np.arctan2(g[1, 0], g[0, 0]))
        assert abs(angle) <= 30.5


def test_warp_follows_the_corner_convention() -> None:
    """A warped impulse lands where the homography sends the pixel's centre."""
    img = np.zeros((64, 64), np.float32)
    img[20, 30] = 1.0
    g = np.array([[1.0, 0, 5.25], [0, 1.0, -3.5], [0, 0, 1]])
    out, ok = bench.warp(img, np.ones_like(img, bool), g)
    r, c = np.unravel_index(np.argmax(out), out.shape)
    target = project(g, np.array([[30.5, 20.5]]))[0] - 0.5
    assert abs(c - target[0]) <= 0.5 and abs(r - target[1]) <= 0.5
    assert not ok[:, :5].any() and ok[10:50, 10:50].all()


def test_evaluate_counts_correct_matches_and_success() -> None:
    truth = np.eye(3)
    img = np.zeros((100, 100), np.float32)
    case = bench.Case("s", "c", img, img > -1, "db", img, img > -1, "db", truth)
    src = np.array([[10.0, 10.0], [50.0, 50.0], [80.0, 20.0]])
    dst = src + np.array([[1.0, 0.0], [0.0, 2.0], [10.0, 0.0]])  # two correct (< 3 px), one wrong
    row = bench.evaluate(case, lambda c: (np.eye(3), src, dst))
    assert row["ncm"] == 2 and row["cmr"] == pytest.approx(2 / 3) and row["success"]
    assert row["rmse_correct"] == pytest.approx(np.sqrt((1 + 4) / 2))
    shifted = np.array([[1.0, 0, 4.0], [0, 1, 0], [0, 0, 1]])
    off = bench.evaluate(case, lambda c: (shifted, src, dst))
    assert not off["success"] and off["wrong"] and not row["wrong"]
    assert corner_error(shifted, truth, 100, 100) == pytest.approx(4.0)


@pytest.mark.slow
def test_benchmark_runs_on_a_synthetic_case(tmp_path: Path) -> None:
    md = tmp_path / "B.md"
    assert bench.main(["--data", str(tmp_path / "absent"), "--synthetic", "1", "--no-opencv",
                       "--markdown", str(md), "--json", str(tmp_path / "rows.json")]) == 0
    text = md.read_text()
    assert bench.HEADING in text and "| synthetic opt-SAR | ours classical | 1 |" in text


def test_a_refusal_is_not_counted_as_wrong() -> None:
    img = np.zeros((50, 50), np.float32)
    case = bench.Case("s", "c", img, img > -1, "db", img, img > -1, "db", np.eye(3))

    def refuses(c: bench.Case) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise RuntimeError("too few matches")

    row = bench.evaluate(case, refuses) | {"method": "m"}
    assert not row["success"] and not row["wrong"]
    off = np.array([[1.0, 0, 5.0], [0, 1, 0], [0, 0, 1]])
    returned = bench.evaluate(case, lambda c: (off, np.zeros((0, 2)), np.zeros((0, 2)))) | {"method": "m"}
    summary = bench.summarise([row, returned])
    assert summary[0]["wrong"] == pytest.approx(0.5) and summary[0]["success"] == 0.0


def test_regenerating_the_table_keeps_the_hand_written_notes(tmp_path: Path) -> None:
    md = tmp_path / "B.md"
    md.write_text(f"# Benchmarks\n\n{bench.HEADING}\n\nold table\n\n{bench.NOTES_MARKER}\n\n"
                  "Notes: keep me.\n\n## Next section\n\nother text\n")
    replace_section(md, bench.markdown([], "python -m benchmarks.keypoints --gf3 1"), keep=bench.NOTES_MARKER)
    text = md.read_text()
    assert "old table" not in text and "`python -m benchmarks.keypoints --gf3 1`" in text
    assert "Notes: keep me." in text and text.count(bench.NOTES_MARKER) == 1
    assert text.index("Notes: keep me.") < text.index("## Next section")
