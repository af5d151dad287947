"""``sartoolbox:keypointregister`` through processing.run (plumbing; accuracy is tested in tests/engine)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.engine.registration.keypoints.test_keypoints import block_mean, texture


@pytest.fixture(scope="module")
def scale_two(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from tests.conftest import write_test_geotiff

    d = tmp_path_factory.mktemp("kp")
    ref = texture(256, seed=5)
    return (write_test_geotiff(d / "in.tif", block_mean(ref)), write_test_geotiff(
        d / "ref.tif", ref, transform=(5.0, 0.0, 600000.0, 0.0, -5.0, 5000000.0)))


def test_keypointregister_writes_every_output(
    tmp_path: Path, scale_two: tuple[Path, Path], run_algorithm: Callable[..., dict[str, Any]],
    read_geotiff: Callable[..., Any],
) -> None:
    inp, ref = scale_two
    res = run_algorithm("keypointregister", {
        "INPUT": str(inp), "REFERENCE": str(ref), "TRANSFORM": 1,
        "OUTPUT": str(tmp_path / "out.tif"), "TIEPOINTS": str(tmp_path / "tp.gpkg"),
        "GCP_FILE": str(tmp_path / "g.points"), "MATCHES_PNG": str(tmp_path / "m.png"),
        "REPORT": str(tmp_path / "r.json"),
    })
    for key in ("OUTPUT", "TIEPOINTS", "GCP_FILE", "MATCHES_PNG", "REPORT"):
        assert Path(res[key]).is_file(), key
    assert res["N_INLIERS"] >= 8 and res["N_MATCHES"] >= res["N_INLIERS"]
    assert res["N_KEYPOINTS"] > 2 * res["N_INLIERS"] and res["RMSE"] < 1.5
    h = np.array(json.loads(Path(res["REPORT"]).read_text())["pixel_transform"])
    np.testing.assert_allclose(h[:2, :2], 2 * np.eye(2), atol=0.02)
    out, info = read_geotiff(res["OUTPUT"])
    _, ref_info = read_geotiff(ref)
    assert out.shape == (256, 256)
    np.testing.assert_allclose(info["transform"], ref_info["transform"])  # the REFERENCE grid


def test_keypointregister_featureless_input_fails_cleanly(
    tmp_path: Path, scale_two: tuple[Path, Path], run_algorithm: Callable[..., dict[str, Any]],
) -> None:
    from qgis.core import QgsProcessingException

    from tests.conftest import write_test_geotiff

    flat = write_test_geotiff(tmp_path / "flat.tif", np.full((64, 64), 3.0, np.float32))
    with pytest.raises(QgsProcessingException):
        run_algorithm("keypointregister", {"INPUT": str(flat), "REFERENCE": str(scale_two[1]),
                                            "OUTPUT": str(tmp_path / "out.tif")})
    assert not (tmp_path / "out.tif").exists()


def test_the_help_states_the_engine_size_limit() -> None:
    """The size the dialog promises is the one the engine enforces (engine MAX_PIXELS, not a copy)."""
    from math import isqrt

    from engine.registration.keypoints.api import MAX_PIXELS
    from sar_toolbox_plugin.algorithms.keypointregister import KeypointRegisterAlgorithm

    side = isqrt(MAX_PIXELS)
    assert f"up to {MAX_PIXELS / 1e6:.1f} Mpix ({side} x {side} px" in KeypointRegisterAlgorithm.HELP
