"""Issue 27 item 4: co-registration's refusal threshold comes from the committed calibration, the
confidence is reported, and a refusal on a small scene says what size would work."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.errors import RegistrationError, SarToolboxError
from engine.registration.shift import calibration as calibration_module
from engine.registration.shift import coregister
from engine.registration.shift.calibration import CALIBRATION_FILE, FALLBACK_DISTINCTNESS, calibration
from engine.registration.shift.fitting import FitLimits, fit_single
from engine.registration.tiepoints import TiePoint
from engine.synthetic import generate_scene_pair
from tests.conftest import write_test_geotiff

CALIBRATED = ("deep", "classical", "combined")


def _point(distinctness: float) -> TiePoint:
    return TiePoint(64.0, 64.0, 1.0, -2.0, 0.5, 1.5, False, distinctness)


@pytest.mark.parametrize("method", CALIBRATED)
def test_the_threshold_is_the_calibrated_one_and_keeps_wrong_answers_under_1_percent(method: str) -> None:
    entry = json.loads(CALIBRATION_FILE.read_text())["methods"][method]
    cal = calibration(method)
    assert cal.calibrated and cal.min_distinctness == entry["min_distinctness"]
    assert FitLimits().for_method(method).min_distinctness == entry["min_distinctness"]
    assert FitLimits(min_distinctness=9.0).for_method(method).min_distinctness == 9.0  # explicit value wins
    t = cal.min_distinctness
    answered = [r for r in entry["rows"] if r["refused"] is None and r["distinctness"] >= t]
    wrong = [r for r in answered if r["error"] >= 3.0]
    assert answered and len(wrong) <= 0.01 * len(answered)
    # the smallest threshold of the curve that keeps that bound: no hand-raised value
    lower = [p for p in entry["curve"] if p["threshold"] < cal.min_distinctness]
    assert all(p["wrong_of_answered"] > 0.01 for p in lower)


def test_a_method_without_calibration_falls_back_to_the_hand_set_threshold_and_says_so(
        caplog: pytest.LogCaptureFixture) -> None:
    calibration.cache_clear()
    with caplog.at_level("WARNING", logger="engine.registration.shift.calibration"):
        cal = calibration("gradmag")  # a benchmark-only method, not calibrated
    assert not cal.calibrated and cal.min_distinctness == FALLBACK_DISTINCTNESS
    assert "No refusal calibration for gradmag" in caplog.text


def test_an_entry_without_its_threshold_names_the_file_and_the_make_target(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "refusal_calibration.json"
    broken.write_text(json.dumps({"methods": {"deep": {"answered_by_size": {"128": 0.5}}}}))
    monkeypatch.setattr(calibration_module, "CALIBRATION_FILE", broken)
    calibration.cache_clear()
    try:
        with pytest.raises(SarToolboxError, match=r"refusal_calibration\.json.*make calibrate-registration"):
            calibration("deep")
    finally:
        calibration.cache_clear()


def test_refusal_below_the_calibrated_threshold_and_small_scene_advice() -> None:
    threshold = calibration("deep").min_distinctness
    fit_single(_point(threshold + 0.01), FitLimits(), "+-32 px", "deep", 100)  # answered
    with pytest.raises(RegistrationError, match=r"ambiguous.*small \(100 px\).*at least \d+ px") as small:
        fit_single(_point(threshold - 0.01), FitLimits(), "+-32 px", "deep", 100)
    assert "nothing was written" in str(small.value)
    with pytest.raises(RegistrationError) as large:
        fit_single(_point(threshold - 0.01), FitLimits(), "+-32 px", "deep", 512)
    assert "The scene is small" not in str(large.value)
    edge = TiePoint(64.0, 64.0, 31.0, 0.0, 0.5, 1.5, True, 5.0)
    with pytest.raises(RegistrationError, match=r"edge of the search range.*small \(96 px\)"):
        fit_single(edge, FitLimits(), "+-32 px", "deep", 96)


def test_report_and_result_carry_the_confidence(tmp_path: Path) -> None:
    pair = generate_scene_pair(192, 192, seed=11, shift_x=4.0, shift_y=-3.0)
    g = (10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0)
    inp = write_test_geotiff(tmp_path / "s.tif", pair.sar.astype(np.float32), transform=g)
    ref = write_test_geotiff(tmp_path / "r.tif", pair.sigma0_aligned.astype(np.float32), transform=g)
    r = coregister(inp, ref, method="classical", max_shift=16, report_path=tmp_path / "r.json")
    confidence = json.loads((tmp_path / "r.json").read_text())["confidence"]
    assert confidence["distinctness"] == pytest.approx(r.distinctness)
    assert confidence["min_distinctness"] == calibration("classical").min_distinctness
    assert r.distinctness_or_none == pytest.approx(r.distinctness)
    assert "calibration" in confidence["threshold_source"]
