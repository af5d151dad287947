"""Progress from the start and prompt cancel in every engine entry point, on a 2048 x 2048 scene.

Each entry point runs on tiled GeoTIFFs of 2048 x 2048 pixels (a ``syntheticscene`` pair) with a
:class:`Probe` as its callbacks: it logs the progress reports, the cancel polls and every pixel read
through rasterio, and turns the cancel flag on after ``N`` polls or at the first progress report
above 0 %. The run must then raise the project's :class:`CancelledError`, leave its output folder
empty, and read little after the flag: no whole-raster pass between a cancel and its honouring.
Before anything moves the bar, no pixel may be read, and no single read may take most of the
raster (statistics come from samples or strips). Wall-clock latency is measured by
``benchmarks/cancel.py`` (docs/BENCHMARKS.md), not here.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.errors import CancelledError

SIDE = 2048
BAND_PIXELS = SIDE * SIDE
AFTER_FLAG_LIMIT = BAND_PIXELS // 4
"""Pixels a run may still read after its cancel flag turned on (a strip, not a pass)."""
LARGEST_READ = BAND_PIXELS // 2
"""No single read of the early stages may take more of a band than this (no whole-raster read)."""


@dataclass
class Probe:
    """Callbacks that log what a run does, and turn cancel on after ``polls`` polls or at the first
    progress report above 0 % (``on_progress``)."""

    polls: int | None = None
    on_progress: bool = False
    events: list[tuple[str, float]] = field(default_factory=list)
    flagged: bool = False

    def _flag(self) -> None:
        if not self.flagged:
            self.flagged = True
            self.events.append(("flag", 0.0))

    def progress(self, percent: float) -> None:
        self.events.append(("progress", float(percent)))
        if self.on_progress and percent > 0:
            self._flag()

    def is_cancelled(self) -> bool:
        self.events.append(("poll", 0.0))
        if self.polls is not None and sum(kind == "poll" for kind, _ in self.events) >= self.polls:
            self._flag()
        return self.flagged

    def read(self, pixels: int) -> None:
        self.events.append(("read", float(pixels)))

    def callbacks(self) -> dict[str, Any]:
        return {"progress": self.progress, "is_cancelled": self.is_cancelled}

    def reads(self, after: str | None = None, before: str | None = None) -> list[float]:
        """Pixels of each read after the first event ``after`` and before the first event ``before``."""
        kinds = [kind for kind, _ in self.events]
        start = kinds.index(after) if after in kinds else (len(kinds) if after else 0)
        stop = kinds.index(before) if before in kinds else len(kinds)
        return [v for kind, v in self.events[start:stop] if kind == "read"]


@pytest.fixture
def probe_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Probe]]:
    """Route every rasterio read to the active probe (the last one in the returned list)."""
    import rasterio.io

    active: list[Probe] = []
    original = rasterio.io.DatasetReader.read

    def read(self: Any, indexes: Any = None, *args: Any, **kwargs: Any) -> Any:
        window = kwargs.get("window")
        if window is None:
            area = self.width * self.height
        else:
            window = rasterio.windows.Window(*window.flatten()) if hasattr(window, "flatten") else window
            rows = min(window.row_off + window.height, self.height) - max(window.row_off, 0)
            cols = min(window.col_off + window.width, self.width) - max(window.col_off, 0)
            area = max(0, int(rows)) * max(0, int(cols))
        count = self.count if indexes is None else len(np.atleast_1d(indexes))
        if active:
            active[-1].read(area * count)
        return original(self, indexes, *args, **kwargs)

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", read)
    yield active


@dataclass(frozen=True)
class Scene:
    sar: Path
    optical: Path
    sarz: Path
    report: Path


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    """A 2048 x 2048 SAR/optical pair (tiled GeoTIFFs), its compressed file and a co-registration report."""
    from engine.codec.encode import compress_raster
    from engine.raster_io import inspect_raster
    from engine.registration.transforms import fit_transform
    from engine.synthetic.writing import write_scene_pair

    folder = tmp_path_factory.mktemp("scene2048")
    files = write_scene_pair(folder / "sar.tif", folder / "optical.tif", width=SIDE, height=SIDE, seed=3,
                             shift_x=2.5, shift_y=-1.5)
    sarz = compress_raster(files.sar_path, folder / "scene.sarz", rate="r1", post_filter=False).path
    info = inspect_raster(files.sar_path)
    x0, y0 = info.transform.c, info.transform.f
    points = np.array([[x0, y0], [x0 + 100, y0 - 100], [x0 + 300, y0 - 50]])
    shift = fit_transform(points, points + np.array([25.0, -15.0]), "shift")
    report = folder / "report.json"
    report.write_text(json.dumps({"transform_map": shift.to_dict(), "input_crs_wkt": info.crs_wkt}))
    return Scene(files.sar_path, files.optical_path, sarz, report)


def _entry_points(scene: Scene) -> dict[str, Callable[[Path, dict[str, Any]], object]]:
    """Each algorithm's engine entry point with the plugin's defaults, writing into a folder."""
    from engine.codec.decode import decompress_file
    from engine.codec.encode import compress_raster
    from engine.codec.quality.metrics import assess
    from engine.radiometry.convert import convert_db
    from engine.registration.keypoints.api import keypoint_register
    from engine.registration.shift.api import apply_transform, coregister
    from engine.synthetic.writing import write_scene_pair
    from engine.translation.api import translate

    return {
        "syntheticscene": lambda out, cb: write_scene_pair(out / "s.tif", out / "o.tif", width=SIDE,
                                                           height=SIDE, seed=4, **cb),
        "todb": lambda out, cb: convert_db(scene.sar, out / "db.tif", **cb),
        "compress": lambda out, cb: compress_raster(scene.sar, out / "c.sarz", rate="r2", **cb),
        "decompress": lambda out, cb: decompress_file(scene.sarz, out / "d.tif", **cb),
        "compressionquality": lambda out, cb: assess(scene.sar, scene.sarz, html_path=out / "q.html", **cb),
        "coregister": lambda out, cb: coregister(scene.sar, scene.optical, output_path=out / "c.tif",
                                                 report_path=out / "r.json", checkerboard_path=out / "k.tif",
                                                 resample=True, **cb),
        "applytransform": lambda out, cb: apply_transform(scene.report, scene.sar, out / "a.tif",
                                                          resample=True, **cb),
        "keypointregister": lambda out, cb: keypoint_register(
            scene.sar, scene.optical, output_path=out / "k.tif", report_path=out / "k.json", **cb),
        "translate": lambda out, cb: translate(scene.sar, out / "t.tif", **cb),
    }


ALGORITHMS = ("syntheticscene", "todb", "compress", "decompress", "compressionquality", "coregister",
              "applytransform", "keypointregister", "translate")


def _cancelled_run(scene: Scene, algorithm: str, probe: Probe, active: list[Probe], tmp_path: Path) -> None:
    """Run ``algorithm`` with ``probe``: it must stop with CancelledError and write nothing."""
    out = tmp_path / "out"
    out.mkdir()
    active.append(probe)
    with pytest.raises(CancelledError, match="cancelled"):
        _entry_points(scene)[algorithm](out, probe.callbacks())
    assert sorted(p.name for p in out.iterdir()) == [], "a cancelled run left files"
    after = sum(probe.reads(after="flag"))
    assert after <= AFTER_FLAG_LIMIT, f"{after:.0f} pixels read after the cancel flag (a whole pass)"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_progress_comes_first_and_cancel_at_the_first_move_stops_the_run(
    algorithm: str, scene: Scene, probe_reads: list[Probe], tmp_path: Path
) -> None:
    probe = Probe(on_progress=True)
    _cancelled_run(scene, algorithm, probe, probe_reads, tmp_path)
    assert probe.events and probe.events[0][0] in ("progress", "poll"), probe.events[:3]
    assert probe.reads(before="progress") == [], "pixels were read before the first progress report"
    early = probe.reads(before="flag")
    assert max(early, default=0) <= LARGEST_READ, (
        f"a read of {max(early):.0f} pixels (a whole-raster pass) before the bar first moved")


@pytest.mark.parametrize("polls", [1, 3])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_cancel_after_n_polls_stops_the_run_and_writes_nothing(
    algorithm: str, polls: int, scene: Scene, probe_reads: list[Probe], tmp_path: Path
) -> None:
    probe = Probe(polls=polls)
    _cancelled_run(scene, algorithm, probe, probe_reads, tmp_path)
    assert sum(kind == "poll" for kind, _ in probe.events) >= polls


BLOCKED_STEPS = {
    "syntheticscene": ("engine.synthetic.scene", "_render_sar"),
    "coregister": ("engine.registration.shift.grid", "_measure_one"),
    "keypointregister": ("engine.registration.keypoints.register", "prepare_image"),
}
"""A long computation of each algorithm that polls no cancel flag inside (a step of whole images)."""
STEP_TIMEOUT = 20.0
"""The blocked step gives up waiting after this many seconds (a run that waits for it then fails)."""


@pytest.mark.parametrize("algorithm", sorted(BLOCKED_STEPS))
def test_cancel_does_not_wait_for_a_long_step(algorithm: str, scene: Scene, monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    """Cancel pressed while a long step runs: the run returns before the step ends (its result dropped)."""
    module_name, name = BLOCKED_STEPS[algorithm]
    module = importlib.import_module(module_name)
    original = getattr(module, name)
    entered, release, finished = threading.Event(), threading.Event(), threading.Event()

    def long_step(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        release.wait(STEP_TIMEOUT)
        finished.set()
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, long_step)
    out = tmp_path / "out"
    out.mkdir()
    try:
        with pytest.raises(CancelledError, match="cancelled"):
            _entry_points(scene)[algorithm](out, {"is_cancelled": entered.is_set})
        assert entered.is_set()
        assert not finished.is_set(), "the run waited for the step in progress instead of honouring cancel"
    finally:
        release.set()
    assert sorted(p.name for p in out.iterdir()) == []
