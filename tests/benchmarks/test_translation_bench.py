"""benchmarks.translation: the target verdict, the Markdown section and the co-registration aid's sign."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.translation import _verdict, coregistration_aid, markdown_section
from tests.engine.tiny_translation import build_tiny_translation


def _summary(structure: float, colour: float) -> dict[str, dict[str, dict[str, float]]]:
    row = {"psnr": 15.0, "ssim": 0.3}
    return {
        "3mos_sentinel1": {
            "grey-stretch": {**row, "structure": 0.04, "colour_error": 0.38, "colour_distribution": 0.2},
            "mean-colour": {**row, "structure": 0.0, "colour_error": 0.24, "colour_distribution": 0.1},
            "m": {**row, "structure": structure, "colour_error": colour, "colour_distribution": colour / 2},
        }
    }


def test_verdict_says_met_or_missed_against_each_trivial_rendering() -> None:
    text = "\n".join(_verdict(_summary(0.10, 0.20), "m"))
    assert "structure 0.100: vs grey stretch 0.040 (met, difference +0.060); vs flat mean colour" in text
    assert "colour distribution distance 0.100: vs flat mean colour 0.100 (missed, difference +0.000)" in text
    text = "\n".join(_verdict(_summary(0.02, 0.30), "m"))
    assert "structure 0.020: vs grey stretch 0.040 (missed, difference -0.020)" in text
    assert "colour error 0.300: vs flat mean colour 0.240 (missed, difference +0.060); vs grey" in text
    assert "absent" in _verdict({}, "m")[0]


def test_markdown_section_has_the_table_speed_and_aid() -> None:
    report = {"summary": _summary(0.1, 0.2), "pairs": {"3mos_sentinel1": ["SEN_a"]}}
    speed = {
        "tiles_per_second": 3.0,
        "tile_size": 256,
        "overlap": 64,
        "size": 1024,
        "tiles": 25,
        "seconds": 8.3,
    }
    aid = {"SAR dB": {"median_px": 0.4, "under_1px": 0.8, "n": 20}}
    text = markdown_section(report, speed, "m", Path("ex.png"), "python -m benchmarks.translation", aid=aid)
    assert text.startswith("## SAR-to-optical translation (make bench-translation)")
    assert "| 3MOS held-out, Sentinel-1 (4 pairs) | m | 15.00 | 0.300 | 0.100 | 0.200 | 0.100 |" in text
    assert "3.00 tiles/s" in text and "| SAR dB | 0.40 | 0.80 | 20 |" in text and "(ex.png)" in text


@pytest.mark.slow
def test_coregistration_aid_control_finds_the_known_shift(tmp_path: Path) -> None:
    model = build_tiny_translation(tmp_path / "tiny.onnx")
    aid = coregistration_aid(str(model), str(tmp_path), synthetic=1, shifts=2)
    assert aid["optical (control)"]["median_px"] < 0.2 and aid["optical (control)"]["n"] == 2
    assert set(aid) == {"optical (control)", "SAR dB", "translated SAR"}
