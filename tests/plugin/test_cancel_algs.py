"""Cancel through QGIS: a feedback cancelled once the bar first moves stops the algorithm, writes nothing.

On a 2048 x 2048 scene pair (tiled GeoTIFFs), through ``processing.run`` with the QGIS feedback the
dialog uses (its Cancel button calls ``feedback.cancel()``). Keypoint registration and scene
generation report progress from their computation thread; co-registration from its window threads'
waiting loop.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

SIDE = 2048


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from engine.synthetic.writing import write_scene_pair

    folder = tmp_path_factory.mktemp("pair2048")
    files = write_scene_pair(folder / "sar.tif", folder / "optical.tif", width=SIDE, height=SIDE, seed=5,
                             shift_x=1.5, shift_y=2.0)
    return files.sar_path, files.optical_path


def _parameters(name: str, pair: tuple[Path, Path], out: Path) -> dict[str, Any]:
    sar, optical = (str(p) for p in pair)
    return {
        "syntheticscene": {"WIDTH": SIDE, "HEIGHT": SIDE, "OUTPUT_SAR": str(out / "s.tif"),
                           "OUTPUT_OPTICAL": str(out / "o.tif")},
        "compress": {"INPUT": sar, "OUTPUT": str(out / "c.sarz")},
        "coregister": {"INPUT": sar, "REFERENCE": optical, "OUTPUT": str(out / "c.tif")},
        "keypointregister": {"INPUT": sar, "REFERENCE": optical, "OUTPUT": str(out / "k.tif")},
        "translate": {"INPUT": sar, "OUTPUT": str(out / "t.tif")},
    }[name]


ALGORITHMS = ("syntheticscene", "compress", "coregister", "keypointregister", "translate")


@pytest.mark.parametrize("name", ALGORITHMS)
def test_cancel_once_the_bar_moves_stops_and_writes_nothing(
    name: str, pair: tuple[Path, Path], tmp_path: Path, run_algorithm: Callable[..., dict[str, Any]]
) -> None:
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    feedback = QgsProcessingFeedback()
    progress: list[float] = []

    def on_progress(value: float) -> None:
        progress.append(value)
        if value > 0.0:
            feedback.cancel()  # the user presses Cancel once the run is under way

    feedback.progressChanged.connect(on_progress)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(QgsProcessingException, match=r"(?i)cancel"):
        run_algorithm(name, _parameters(name, pair, out), feedback=feedback)
    assert feedback.isCanceled()
    assert progress and max(progress) < 100.0
    assert sorted(p.name for p in out.iterdir()) == [], "a cancelled run left files behind"
