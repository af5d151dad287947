"""The cancel-latency and large co-registration benchmarks' machinery (not timed tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks import cancel, coregistration_large
from benchmarks.common import replace_section


def test_longest_gap_counts_the_start_and_the_return() -> None:
    assert cancel.longest_gap([0.5, 0.7], 3.0) == (2.3, 0.7)  # from the last poll to the return
    assert cancel.longest_gap([2.0, 2.5], 2.6) == (2.0, 0.0)  # from the start to the first poll
    assert cancel.longest_gap([], 1.5) == (1.5, 0.0)  # never polled
    assert cancel.percent_at([(0.1, 0.0), (1.0, 40.0), (2.0, 80.0)], 1.5) == 40.0


def test_clock_flags_at_the_first_report_above_a_percentage() -> None:
    clock = cancel.Clock(cancel_at_percent=0.0)
    clock.progress(0.0)
    assert not clock.is_cancelled()
    clock.progress(3.0)
    assert clock.is_cancelled() and clock.flagged is not None
    middle = cancel.Clock(cancel_at_percent=49.99)
    middle.progress(40.0)
    assert not middle.is_cancelled() and middle.polls
    middle.progress(50.0)
    assert middle.is_cancelled()


def test_markdown_states_the_target_and_whether_it_is_met() -> None:
    row = cancel.Row("todb", 1.0, 0.01, 0.01, 0.2, 10.0, 8, 0.001, 0.01, 0)
    slow = cancel.Row("keypointregister", 9.0, 0.01, 0.01, 1.5, 70.0, 80, 0.1, 0.1, 0)
    text = cancel.markdown_section([row, slow], 2048, "python -m benchmarks.cancel --size 2048")
    assert text.startswith(cancel.SECTION)
    assert "| todb | 1.00 |" in text and "1.50 s (keypointregister); target 1 s missed" in text


def test_stage_times_follow_the_progress_reports() -> None:
    marks = [(0.1, 0.0), (0.5, 2.0), (10.0, 85.0), (11.0, 90.0), (14.0, 100.0)]
    assert coregistration_large.stage_times(marks, 14.5) == {
        "plan": 0.5, "measure": 9.5, "fit and preview": 1.0, "write": 3.0}


def test_pair_is_written_strip_by_strip_with_the_sar_shifted(tmp_path: Path) -> None:
    import rasterio

    sar, optical = coregistration_large.write_pair(tmp_path, 96)
    with rasterio.open(sar) as s, rasterio.open(optical) as o:
        assert (s.count, o.count, s.width, o.height) == (1, 3, 96, 96)
        assert s.crs == o.crs and s.transform == o.transform
        intensity, reflectance = s.read(1), o.read()
    assert np.all(intensity > 0) and np.all(np.isfinite(reflectance))


def test_only_rerun_keeps_the_other_rows_and_judges_them_too(tmp_path: Path) -> None:
    doc = tmp_path / "B.md"
    old = [cancel.Row("todb", 1.0, 0.01, 0.01, 0.2, 10.0, 8, 0.001, 0.01, 0),
           cancel.Row("coregister", 9.0, 0.01, 0.01, 2.5, 70.0, 80, 0.1, 0.1, 0)]
    replace_section(doc, cancel.markdown_section(old, 2048, "python -m benchmarks.cancel"))
    new = [cancel.Row("todb", 2.0, 0.01, 0.01, 0.3, 10.0, 8, 0.001, 0.01, 0)]
    kept = cancel.kept_rows(doc, new)
    assert len(kept) == 1 and kept[0].startswith("| coregister |")
    text = cancel.markdown_section(new, 2048, "python -m benchmarks.cancel --only todb", kept=kept)
    assert "| todb | 2.00 |" in text and "| todb | 1.00 |" not in text and "| coregister | 9.00 |" in text
    assert "2.50 s (coregister); target 1 s missed" in text and "(`--only`)" in text
