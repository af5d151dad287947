"""Issue 27 item 4: METHOD=combined, two matchers' evidence in one correlation surface.

Tiny seeded feature volumes stand for the two matchers: each has the true peak and a decoy of
its own. Alone each is ambiguous (two equal peaks); stacked, the shared peak stands out and is
answered; when the two matchers put their only peak at different shifts, the stack is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.errors import RegistrationError
from engine.registration.correlation import Match, match
from engine.registration.shift import coregister
from engine.registration.shift.calibration import calibration
from engine.registration.shift.combined import CombinedFeatures, equal_energy
from engine.registration.shift.fitting import FitLimits, fit_single
from engine.registration.tiepoints import TiePoint
from engine.synthetic import generate_scene_pair
from tests.conftest import write_test_geotiff

SIDE, M = 40, 8
TRUE = (3, -2)


class Stored:
    """A fake extractor: the volume stored for the shape of the image it is given."""

    def __init__(self, name: str, volumes: dict[tuple[int, ...], np.ndarray], stride: int = 1) -> None:
        self.name, self.model_id, self.stride, self.volumes = name, name, stride, volumes

    def __call__(self, image: np.ndarray, valid: np.ndarray) -> np.ndarray:
        return self.volumes[image.shape]


def _matcher(name: str, seed: int, peaks: list[tuple[int, int]], gain: float) -> Stored:
    """Template: seeded noise ``(4, SIDE, SIDE)`` times ``gain``; search: the template placed at each
    shift of ``peaks`` (content moves by (dx, dy)) plus weak noise."""
    rng = np.random.default_rng(seed)
    template = rng.standard_normal((4, SIDE, SIDE)).astype(np.float32)
    search = 0.05 * rng.standard_normal((4, SIDE + 2 * M, SIDE + 2 * M)).astype(np.float32)
    for dx, dy in peaks:
        search[:, M + dy : M + dy + SIDE, M + dx : M + dx + SIDE] += template
    return Stored(name, {(SIDE, SIDE): gain * template, search.shape[1:]: gain * search})


def _match(extractor: CombinedFeatures | Stored) -> Match:
    t, s = np.zeros((SIDE, SIDE)), np.zeros((SIDE + 2 * M, SIDE + 2 * M))
    return match(extractor(t, np.ones(t.shape, bool)), extractor(s, np.ones(s.shape, bool)), M)


def _point(m: Match) -> TiePoint:
    return TiePoint(SIDE / 2, SIDE / 2, m.dx, m.dy, m.score, m.reliability, m.at_limit, m.distinctness)


def test_two_ambiguous_matchers_that_agree_are_answered_right() -> None:
    # the embedding's volume is 50 x stronger than the gradients': equal energy gives both a vote
    deep = _matcher("deep", 1, [TRUE, (-5, 4)], gain=50.0)
    classical = _matcher("classical", 2, [TRUE, (5, 5)], gain=1.0)
    threshold = calibration("combined").min_distinctness
    for alone in (deep, classical):
        assert _match(alone).distinctness < threshold  # each alone: two equal peaks, a guess
    both = _match(CombinedFeatures([deep, classical]))
    assert both.distinctness >= 2 * threshold
    fit = fit_single(_point(both), FitLimits(), "+-8 px", "combined")
    assert fit.transform.displacement(np.array([[0.0, 0.0]]))[0] == pytest.approx(TRUE, abs=0.05)


def test_two_matchers_that_disagree_are_refused() -> None:
    deep = _matcher("deep", 3, [TRUE], gain=50.0)
    classical = _matcher("classical", 4, [(-4, 5)], gain=1.0)
    for alone, where in ((deep, TRUE), (classical, (-4, 5))):
        m = _match(alone)
        assert (round(m.dx), round(m.dy)) == where and m.distinctness > 10  # each alone: sure of itself
    both = _match(CombinedFeatures([deep, classical]))
    with pytest.raises(RegistrationError, match="ambiguous"):
        fit_single(_point(both), FitLimits(), "+-8 px", "combined")


def test_equal_energy_ignores_invalid_pixels_and_keeps_zero_volumes() -> None:
    v = np.zeros((2, 4, 4), np.float32)
    v[:, :2] = 3.0
    valid = np.zeros((4, 4), bool)
    valid[:2] = True
    out = equal_energy(v, valid)
    assert float(np.mean((out[:, valid] ** 2).sum(axis=0))) == pytest.approx(1.0)
    assert not equal_energy(np.zeros_like(v), valid).any()


def test_a_single_part_is_refused_for_its_count_not_its_stride() -> None:
    with pytest.raises(RegistrationError, match="at least two feature extractors; got 1") as err:
        CombinedFeatures([Stored("a", {}, stride=1)])
    assert "stride" not in str(err.value)


def test_parts_on_different_grids_are_refused() -> None:
    with pytest.raises(RegistrationError, match="stride 1"):
        CombinedFeatures([Stored("a", {}, stride=1), Stored("b", {}, stride=4)])


def test_combined_is_the_default_and_reports_its_evidence(tmp_path: Path) -> None:
    pair = generate_scene_pair(128, 128, seed=12, shift_x=3.4, shift_y=-2.7)
    g = (10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0)
    inp = write_test_geotiff(tmp_path / "s.tif", pair.sar.astype(np.float32), transform=g)
    optical = pair.optical[:3].mean(axis=0).astype(np.float32)
    ref = write_test_geotiff(tmp_path / "r.tif", optical, transform=g)
    r = coregister(inp, ref, max_shift=8, report_path=tmp_path / "r.json")
    assert r.method == "combined" and "+cfog-classical-v1" in r.model_id
    assert np.hypot(r.shift_x + 3.4, r.shift_y - 2.7) < 1.0  # the SAR content must move back
    confidence = json.loads((tmp_path / "r.json").read_text())["confidence"]
    assert confidence["min_distinctness"] == calibration("combined").min_distinctness
    assert "learned embedding and the CFOG channels" in confidence["evidence"]


@pytest.mark.parametrize("method", ["classical", "combined"])
def test_the_sub_pixel_estimate_does_not_lock_onto_whole_pixels(method: str) -> None:
    """Issue 27 item 2: a seeded texture against itself moved by a fraction of a pixel (Fourier shift);
    the estimate follows the fraction (peak locking would pull it towards 0 or 1)."""
    from scipy import ndimage

    from engine.registration.shift.methods import make_extractor

    rng = np.random.default_rng(5)
    image = ndimage.gaussian_filter(rng.standard_normal((112, 112)), 1.5).astype(np.float32)
    extractor = make_extractor(method)
    spectrum = np.fft.fft2(image)
    ky, kx = np.fft.fftfreq(112, d=1.0)[:, None], np.fft.fftfreq(112, d=1.0)[None, :]
    for fraction in (0.25, 0.5, 0.75):
        moved = np.fft.ifft2(spectrum * np.exp(-2j * np.pi * (kx * fraction + ky * 0.4))).real
        template = moved[24:-24, 24:-24].astype(np.float32)  # content moved by (+fraction, +0.4)
        search = image[24 - M:-24 + M, 24 - M:-24 + M]
        t, s = (extractor(a, np.ones(a.shape, bool)) for a in (template, search))
        m = match(t, s, M)
        assert m.dx == pytest.approx(-fraction, abs=0.05) and m.dy == pytest.approx(-0.4, abs=0.05)
