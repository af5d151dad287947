"""The hull statement of ``make bench-compression`` (benchmarks.rate_hull) and the validation set of the
rate-point measurement (benchmarks.rate_points): none of the benchmark's images."""

from __future__ import annotations

from pathlib import Path

from benchmarks.compression.rows import CODEC, Row
from benchmarks.rate_hull import hull_lines, measurement_of
from benchmarks.rate_points import REAL_VALIDATION, SYNTHETIC_VALIDATION, centre_crop


def _row(image: str, method: str, setting: str, bpp: float, psnr: float) -> Row:
    return Row(image, method, setting, bpp, psnr, 0.8, 1.0, 0.9, 1.0, 1.0)


def test_the_statement_names_a_dominated_point_on_the_benchmark_images() -> None:
    rows = [_row("g1", CODEC, "lo", 0.3, 22.0), _row("g1", CODEC, "mid", 0.6, 21.0),
            _row("g1", CODEC, "hi", 1.2, 29.0), _row("g1", "JPEG2000", "QUALITY=3 (vs lo)", 0.3, 30.0),
            _row("synthetic 1024 px", CODEC, "lo", 0.3, 22.0),
            _row("synthetic 1024 px", CODEC, "hi", 1.2, 29.0)]
    measured = measurement_of(rows, CODEC, ["g1", "synthetic 1024 px"])
    assert [im["group"] for im in measured["images"]] == ["real", "synthetic"]
    assert len(measured["rows"]) == 5  # the codec's rows only
    lines = hull_lines(rows, CODEC, ["g1", "synthetic 1024 px"], ["lo", "mid", "hi"])
    benchmark = [line for line in lines if line.startswith("| benchmark")]
    assert benchmark[0].startswith("| benchmark, real | mid (0.600 bpp, 21.00 dB) is beaten by lo")
    assert any(line.startswith("| benchmark, synthetic | no point dominated") for line in benchmark)
    assert any(line.startswith("| validation, real |") for line in lines)


def test_the_validation_set_holds_none_of_the_benchmark_images() -> None:
    benchmark = {"os_sift/GF3", "sar_sar_r2d2/g1.png", "sar_sar_r2d2/g2.png", "sar_single_deepdespeckling"}
    for _, path in REAL_VALIDATION:
        assert not any(path.startswith(b) for b in benchmark), path
    assert 10_007 not in [seed for seed, _ in SYNTHETIC_VALIDATION]  # the benchmark's synthetic scene
    assert not any(Path(p).stem.split("_sar")[0] in ("SEN_city_2", "SEN_city_6") for _, p in REAL_VALIDATION)


def test_centre_crop() -> None:
    import numpy as np

    image = np.arange(20 * 30).reshape(20, 30)
    crop = centre_crop(image, 10)
    assert crop.shape == (10, 10) and crop[0, 0] == image[5, 10]
    assert centre_crop(image, 64).shape == (20, 30)
