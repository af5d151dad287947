"""The rate-distortion hull check (engine.codec.rate_points) on made-up points, and on the committed
validation measurement: every offered rate point is on the hull of each group, every retired one is
not, and a retired point maps to its nearest surviving neighbour in bits per pixel."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from engine.codec.rate_choice import QUALITIES, RETIRED, surviving_rates
from engine.codec.rate_points import (
    HULL_GROUPS,
    MEASUREMENT,
    dominated,
    group_images,
    hull_check,
    hull_points,
    load_measurement,
    typical,
)
from engine.errors import ModelError


def test_a_point_with_more_bits_and_less_psnr_is_dominated() -> None:
    reasons = dominated({"a": (0.4, 24.2), "b": (0.5, 24.1), "c": (1.0, 28.0)})
    assert set(reasons) == {"b"} and "beaten by a" in reasons["b"]


def test_equal_bits_less_psnr_and_equal_psnr_more_bits_are_dominated() -> None:
    assert set(dominated({"a": (0.5, 25.0), "b": (0.5, 24.0)})) == {"b"}
    assert set(dominated({"a": (0.4, 25.0), "b": (0.5, 25.0)})) == {"b"}
    assert dominated({"a": (0.5, 25.0), "b": (0.5, 25.0)}) == {}


def test_a_point_below_the_mix_of_two_others_is_dominated() -> None:
    # mixing a and c half and half: 1.0 bpp and the mean of their squared errors
    mix = -10 * math.log10(0.5 * (10 ** -2.0 + 10 ** -3.0))  # 22.6 dB
    assert set(dominated({"a": (0.5, 20.0), "b": (1.0, mix - 0.05), "c": (1.5, 30.0)})) == {"b"}
    assert dominated({"a": (0.5, 20.0), "b": (1.0, mix + 0.05), "c": (1.5, 30.0)}) == {}
    reasons = dominated({"a": (0.5, 20.0), "b": (1.0, 21.0), "c": (1.5, 30.0)})
    assert "below the mix of a and c" in reasons["b"]


def test_the_mix_is_drawn_in_squared_error_not_in_psnr() -> None:
    # 24.9 dB is below the straight PSNR chord (25 dB) but above what mixing a and c can give
    assert dominated({"a": (0.5, 20.0), "b": (1.0, 24.9), "c": (1.5, 30.0)}) == {}


def test_tolerance_keeps_points_within_it() -> None:
    points = {"a": (0.4, 24.2), "b": (0.5, 24.15)}
    assert set(dominated(points)) == {"b"}
    assert dominated(points, tolerance_db=0.1) == {}


def test_the_lowest_and_highest_points_need_a_dominating_point_not_a_mix() -> None:
    assert dominated({"a": (0.2, 10.0), "b": (1.0, 30.0), "c": (3.0, 31.0)}) == {}


def _measurement() -> dict:
    images = [{"name": "r1", "group": "real"}, {"name": "r2", "group": "real"},
              {"name": "s1", "group": "synthetic"}]
    rows = []
    for image, offset in (("r1", 0.0), ("r2", 2.0), ("s1", 1.0)):
        for rate, bpp, psnr in (("lo", 0.3, 22.0), ("mid", 0.6, 24.0), ("hi", 1.2, 29.0)):
            rows.append({"image": image, "rate": rate, "bpp": bpp * (1 + offset), "psnr": psnr + offset,
                         "ssim": 0.5, "enl_ratio": 1.0, "epi": 0.8})
    rows.append({"image": "s1", "rate": "bad", "bpp": 1.0, "psnr": 20.0, "ssim": 0.5, "enl_ratio": 1.0,
                 "epi": 0.8})
    return {"images": images, "rows": rows}


def test_hull_points_average_bits_and_squared_error() -> None:
    points = hull_points(_measurement()["rows"], ["r1", "r2"])
    bpp, psnr = points["lo"]
    assert bpp == pytest.approx(0.3 * 2)  # (0.3 + 0.9) / 2
    assert psnr == pytest.approx(-10 * math.log10(0.5 * (10 ** -2.2 + 10 ** -2.4)))


def test_hull_check_per_group_and_typical_means() -> None:
    data = _measurement()
    result = hull_check(data)
    assert set(result) == {*HULL_GROUPS, "all"}
    assert result["real"] == {} and set(result["synthetic"]) == {"bad"}
    assert hull_check(data, ["lo", "mid", "hi"])["synthetic"] == {}
    figures = typical(data["rows"], group_images(data, "real"))
    assert figures["mid"].psnr == pytest.approx(25.0) and figures["mid"].images == 2


def test_an_unreadable_measurement_says_how_to_remake_it(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="make bench-rate-points"):
        load_measurement(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(ModelError, match="not a rate-point measurement"):
        load_measurement(tmp_path / "bad.json")


# ------------------------------------------------------------------ the committed measurement
def test_every_offered_point_is_on_the_hull_of_the_validation_set() -> None:
    data = load_measurement(MEASUREMENT)
    assert data["set"] == "validation"
    measured = {row["rate"] for row in data["rows"]}
    assert set(surviving_rates()) | set(RETIRED) <= measured
    for group in HULL_GROUPS:
        assert group_images(data, group), f"no {group} validation image"
        assert hull_check(data, surviving_rates())[group] == {}, group


def test_every_retired_point_is_dominated_and_maps_to_its_nearest_survivor() -> None:
    data = load_measurement(MEASUREMENT)
    checks = hull_check(data, [*surviving_rates(), *RETIRED])
    figures = typical(data["rows"], group_images(data, "real"))
    for old, new in RETIRED.items():
        assert any(old in checks[group] for group in HULL_GROUPS), f"{old} is on the hull: do not retire it"
        nearest = min(surviving_rates(), key=lambda r: abs(math.log(figures[r].bpp / figures[old].bpp)))
        assert new == nearest


def test_quality_words_go_from_most_to_fewest_bits() -> None:
    figures = typical(load_measurement(MEASUREMENT)["rows"])
    bpp = [figures[q.rate].bpp for q in QUALITIES]
    psnr = [figures[q.rate].psnr for q in QUALITIES]
    assert bpp == sorted(bpp, reverse=True) and psnr == sorted(psnr, reverse=True)
