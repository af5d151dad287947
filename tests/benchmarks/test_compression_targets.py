"""The targets table of ``make bench-compression``: each codec mode against its own matched JPEG2000."""

from __future__ import annotations

from benchmarks.compression.report import _target_rows
from benchmarks.compression.rows import CODEC, CODEC_RDO, RDO_SUFFIX, Row


def _row(image: str, method: str, setting: str, psnr: float, enl: float = 1.0, epi: float = 0.9) -> Row:
    return Row(image, method, setting, 0.5, psnr, 0.8, enl, epi, 1.0, 1.0)


def test_each_mode_is_scored_against_its_own_anchor() -> None:
    rows = [
        _row("a", CODEC, "r1", 30.0), _row("a", "JPEG2000", "QUALITY=3 (vs r1)", 28.5),
        _row("b", CODEC, "r1", 25.0, enl=1.5), _row("b", "JPEG2000", "QUALITY=4 (vs r1)", 25.5),
        _row("a", CODEC_RDO, "r1", 29.0), _row("a", "JPEG2000", "QUALITY=2 (vs r1 RDO)", 27.0),
        _row("b", CODEC_RDO, "r1", 24.0), _row("b", "JPEG2000", "QUALITY=3 (vs r1 RDO)", 22.5),
        _row("synthetic", CODEC, "r1", 10.0), _row("synthetic", "JPEG2000", "QUALITY=3 (vs r1)", 30.0),
    ]
    plain = _target_rows(rows, ["a", "b"], ["r1"], CODEC, "")
    assert len(plain) == 1
    cells = [c.strip() for c in plain[0].split("|")[1:-1]]
    assert cells[0] == "r1" and cells[1] == "2"
    assert cells[3] == "+0.50"  # (+1.5 - 0.5) / 2; the synthetic image is not a real one
    assert cells[4] == "1/2" and cells[5] == "1.00-1.50"
    assert cells[7].startswith("no: PSNR short by up to 1.50 dB; ENL ratio outside")
    rdo = _target_rows(rows, ["a", "b"], ["r1"], CODEC_RDO, RDO_SUFFIX)
    cells = [c.strip() for c in rdo[0].split("|")[1:-1]]
    assert cells[0] == "r1 RDO" and cells[3] == "+1.75" and cells[4] == "2/2" and cells[7] == "yes"


def test_a_mode_without_rows_adds_nothing() -> None:
    assert _target_rows([_row("a", CODEC, "r1", 30.0)], ["a"], ["r1"], CODEC_RDO, RDO_SUFFIX) == []
