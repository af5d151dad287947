"""Choosing a rate point: the fixed RATE order, retired points with their deprecation message, quality
words, targets (engine.codec.rate_choice, engine.codec.target) and their precedence."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import pytest

from engine.codec.encode import EncodeResult, compress_raster
from engine.codec.models import MODELS_ENV, shipped_rates
from engine.codec.quality.metrics import read_db
from engine.codec.rate_choice import (
    QUALITIES,
    QUALITY_NAMES,
    RATE_OPTIONS,
    RETIRED,
    check_target,
    choice_table,
    first_guess,
    rate_for_quality,
    rate_label,
    resolve_rate,
    surviving_rates,
)
from engine.codec.rate_points import RateFigures
from engine.codec.target import _Search, compress_choice
from engine.errors import CancelledError, InputError
from engine.run import Run
from tests.conftest import write_test_geotiff
from tests.engine.test_codec_roundtrip import REPO_ROOT, smooth_db

FIGURES = {rate: RateFigures(rate, bpp, psnr, 0.9, 1.0, 0.9, 9) for rate, bpp, psnr in
           (("h1", 0.3, 22.0), ("r1", 0.5, 24.0), ("r2", 1.0, 27.0), ("r3", 1.4, 30.0), ("h4", 1.9, 32.0))}


def test_rate_options_keep_the_historical_order_and_every_point_has_a_word() -> None:
    assert RATE_OPTIONS[:6] == ("r1", "r2", "r3", "h1", "h4", "h5")
    assert sorted(surviving_rates()) == sorted(set(RATE_OPTIONS) - set(RETIRED))
    assert [q.name for q in QUALITIES] == ["archive", "high", "balanced", "compact", "smallest"]
    assert rate_label("r2") == "r2 - balanced" and rate_label("h5") == "h5 - retired, runs h1"


def test_a_retired_rate_runs_its_successor_with_a_message(caplog: pytest.LogCaptureFixture) -> None:
    said: list[str] = []
    with caplog.at_level(logging.WARNING):
        assert resolve_rate("h5", Run(log=said.append)) == "h1"
    assert "Deprecated" in said[0] and "RATE=5" in said[0] and "'smallest'" in said[0]
    assert any(r.levelno == logging.WARNING for r in caplog.records)
    said.clear()
    assert resolve_rate("r2", Run(log=said.append)) == "r2" and not said


def test_quality_words() -> None:
    assert rate_for_quality("archive") == "h4" and rate_for_quality(" Smallest ") == "h1"
    with pytest.raises(InputError, match="choose one of: archive, high"):
        rate_for_quality("lossless")


@pytest.mark.parametrize(("bpp", "psnr", "expected"), [
    (1.0, None, "r2"), (0.99, None, "r1"), (5.0, None, "h4"), (0.1, None, "h1"),
    (None, 27.0, "r2"), (None, 27.1, "r3"), (None, 10.0, "h1"), (None, 40.0, "h4"),
])
def test_first_guess_meets_the_target_with_typical_figures(bpp: float | None, psnr: float | None,
                                                           expected: str) -> None:
    assert first_guess(bpp, psnr, FIGURES) == expected


@pytest.mark.parametrize(("bpp", "psnr", "message"), [
    (0.5, 30.0, "not both"), (-1.0, None, "positive"), (None, float("nan"), "positive"),
])
def test_bad_targets_are_refused(bpp: float | None, psnr: float | None, message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_target(bpp, psnr)


def test_the_table_lists_every_quality_with_its_figures() -> None:
    text = choice_table(FIGURES, html=False)
    assert all(name in text for name in QUALITY_NAMES)
    assert "| h4 | 1.90 | 32.0 |" in text
    assert choice_table(FIGURES).startswith("<table>")


# ------------------------------------------------------------------ the search, with a made-up scene
def _search(scene: dict[str, tuple[float, float]], target: float, by_size: bool) -> tuple[str, list[str]]:
    tried: list[str] = []

    def encode(rate: str) -> tuple[Path, EncodeResult, float]:
        tried.append(rate)
        bpp, psnr = scene[rate]
        result = EncodeResult(Path(rate), 1, bpp, 1, 1, rate, 0.0)
        return Path(rate), result, bpp if by_size else psnr

    search = _Search(encode, target, by_size, FIGURES)
    kept = search.run(first_guess(target if by_size else None, None if by_size else target, FIGURES))
    return kept.rate, tried


def test_a_size_target_steps_down_when_the_scene_needs_more_bits_than_typical() -> None:
    busy = {r: (f.bpp * 1.3, f.psnr) for r, f in FIGURES.items()}  # 30 % more bits than typical
    assert _search(busy, 1.0, by_size=True) == ("r1", ["r2", "r1"])
    assert _search(busy, 0.1, by_size=True) == ("h1", ["h1"])  # nothing fits: the smallest


def test_a_size_target_steps_up_when_the_scene_predicts_room_for_more() -> None:
    calm = {r: (f.bpp * 0.6, f.psnr) for r, f in FIGURES.items()}
    assert _search(calm, 1.0, by_size=True) == ("r3", ["r2", "r3"])  # h4: 1.14 predicted, not tried


def test_a_quality_target_steps_up_when_missed_and_down_when_predicted_to_hold() -> None:
    hard = {r: (f.bpp, f.psnr - 1.5) for r, f in FIGURES.items()}
    assert _search(hard, 27.0, by_size=False) == ("r3", ["r2", "r3"])
    easy = {r: (f.bpp, f.psnr + 3.5) for r, f in FIGURES.items()}
    assert _search(easy, 27.0, by_size=False) == ("r1", ["r2", "r1"])
    assert _search(hard, 40.0, by_size=False) == ("h4", ["h4"])  # nothing reaches it: the highest


# ------------------------------------------------------------------ through the engine
@pytest.fixture
def scene(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(MODELS_ENV, raising=False)
    if not {"h1", "r1"} <= set(shipped_rates(REPO_ROOT / "models")):
        pytest.skip("codec models not installed")
    return write_test_geotiff(tmp_path / "in.tif", smooth_db(96, 112).astype(np.float32), nodata=float("nan"))


def test_an_old_index_of_a_retired_point_still_runs(scene: Path, tmp_path: Path) -> None:
    said: list[str] = []
    result = compress_raster(scene, tmp_path / "c.sarz", input_kind="db", rate=RATE_OPTIONS[5],
                             post_filter=False, log=said.append)
    assert result.model_id == "sarcodec-h1" and any("Deprecated" in s for s in said)


def test_quality_overrides_rate_and_target_overrides_quality(scene: Path, tmp_path: Path) -> None:
    out = tmp_path / "q.sarz"
    assert compress_choice(scene, out, rate="r3", quality="smallest", input_kind="db",
                           post_filter=False).model_id == "sarcodec-h1"
    small = compress_choice(scene, out, rate="r3", quality="archive", target_bpp=0.6, input_kind="db",
                            post_filter=False)
    assert small.path == out and out.is_file()
    assert small.bpp <= 0.6 or small.model_id == "sarcodec-h1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "q.sarz"]  # no trial file left


def test_a_psnr_target_is_met_on_the_scene(scene: Path, tmp_path: Path) -> None:
    said: list[str] = []
    bar: list[float] = []
    result = compress_choice(scene, tmp_path / "p.sarz", target_psnr=30.0, input_kind="db",
                             post_filter=False, log=said.append, progress=bar.append)
    # several trial encodings share one progress bar that never goes back
    assert sum(s.startswith("Rate point") for s in said) >= 2
    assert bar and all(b >= a for a, b in itertools.pairwise(bar)) and bar[-1] <= 100.0
    kept = [s for s in said if s.startswith("Kept rate point")]
    assert kept and f"sarcodec-{kept[0].split()[3].rstrip(':')}" == result.model_id
    assert float(kept[0].split(": ")[1].split()[0]) >= 30.0
    assert read_db(scene, 1, "db").shape == (96, 112)


def test_targets_refuse_optimised_quantisation_and_cancel_leaves_nothing(scene: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not combine"):
        compress_choice(scene, tmp_path / "x.sarz", target_bpp=1.0, rdo=True, input_kind="db")
    with pytest.raises(CancelledError):
        compress_choice(scene, tmp_path / "x.sarz", target_bpp=1.0, input_kind="db",
                        is_cancelled=lambda: True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]
