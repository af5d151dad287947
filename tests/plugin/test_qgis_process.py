"""End to end through ``/usr/bin/qgis_process.bin``: the source plugin, and the packaged zip.

Each qgis_process.bin call starts QGIS (a few seconds), so each scenario makes
as few calls as it can.
"""

from __future__ import annotations

import json
import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PLUGIN = "sar_toolbox_plugin"
DUMMY = "dummy_engine_plugin"

pytestmark = pytest.mark.qgis_process


@pytest.fixture
def sigma0(tmp_path: Path, write_geotiff: Callable[..., Path]) -> tuple[Path, np.ndarray]:
    values = np.array([[1.0, 10.0, 100.0], [0.1, 0.0, -9999.0]], dtype=np.float32)
    return write_geotiff(tmp_path / "sigma0.tif", values, nodata=-9999.0), values


def _check_todb(qgis_process: Any, sigma0: tuple[Path, np.ndarray], output: Path,
                read_geotiff: Callable[..., Any], **parameters: Any) -> None:
    """Run ``sartoolbox:todb`` on ``sigma0`` into ``output`` and check its dB values and nodata."""
    results = qgis_process.run_json("sartoolbox:todb", INPUT=sigma0[0], **parameters, OUTPUT=output)
    assert Path(results["OUTPUT"]) == output
    values = sigma0[1]
    db, info = read_geotiff(output)
    assert db[0].tolist() == pytest.approx((10.0 * np.log10(values[0])).tolist(), abs=1e-5)
    assert db[1, 0] == pytest.approx(-10.0, abs=1e-5)
    assert db[1, 1] == info["nodata"] and db[1, 2] == info["nodata"]


@pytest.mark.slow
def test_source_plugin_lists_and_runs(
    tmp_path: Path, qgis_process: Any, sigma0: tuple[Path, np.ndarray], read_geotiff: Callable[..., Any]
) -> None:
    listing = qgis_process("list")
    assert listing.returncode == 0, listing.stdout + listing.stderr
    for name in ("checkenvironment", "todb", "syntheticscene"):
        assert f"sartoolbox:{name}" in listing.stdout, listing.stdout[-3000:] + listing.stderr[-3000:]
    helped = qgis_process("help", "sartoolbox:compress")  # the quality table and the new parameters
    assert helped.returncode == 0, helped.stdout + helped.stderr
    assert "smallest | h1 |" in helped.stdout and "archive | h4 |" in helped.stdout
    assert all(name in helped.stdout for name in ("QUALITY", "TARGET_BPP", "TARGET_PSNR"))

    _check_todb(qgis_process, sigma0, tmp_path / "db.tif", read_geotiff, BAND=1, INPUT_KIND=0)


def _write_dummy_plugin(plugins: Path, marker: Path) -> None:
    """A plugin whose own top-level module is called ``engine`` (the collision the zip must survive)."""
    folder = plugins / DUMMY
    folder.mkdir()
    (folder / "engine.py").write_text(
        '"""The dummy plugin\'s own top-level engine."""\nIDENTITY = "dummy-engine"\n'
    )
    (folder / "metadata.txt").write_text(
        textwrap.dedent(
            """\
            [general]
            name=Dummy engine plugin
            qgisMinimumVersion=3.22
            description=Test plugin with a top-level module named engine
            about=Test fixture
            version=1.0
            author=tests
            email=tests@example.org
            repository=https://example.org
            hasProcessingProvider=yes
            """
        )
    )
    (folder / "__init__.py").write_text(
        textwrap.dedent(
            f"""\
            import json
            import os
            import sys

            sys.path.insert(0, os.path.dirname(__file__))
            import engine  # the dummy's own top-level module

            class DummyPlugin:
                def __init__(self, iface):
                    self.iface = iface

                def initProcessing(self):
                    top = sys.modules["engine"]
                    found = {{"identity": getattr(top, "IDENTITY", None), "file": top.__file__}}
                    with open({str(marker)!r}, "w") as handle:
                        json.dump(found, handle)

                def initGui(self):
                    self.initProcessing()

                def unload(self):
                    pass

            def classFactory(iface):
                return DummyPlugin(iface)
            """
        )
    )


@pytest.mark.slow
def test_packaged_zip_is_self_contained_beside_a_plugin_with_its_own_engine(
    tmp_path: Path,
    make_qgis_process: Callable[[Path], Any],
    sigma0: tuple[Path, np.ndarray],
    read_geotiff: Callable[..., Any],
    write_geotiff: Callable[..., Path],
) -> None:
    from scripts import package

    archive = tmp_path / "dist" / f"{PLUGIN}.zip"
    assert package.main(["--output", str(archive)]) == 0
    with zipfile.ZipFile(archive) as zipped:
        names = zipped.namelist()
        assert all(name.startswith(f"{PLUGIN}/") for name in names)
        assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)
        for required in (
            "__init__.py",
            "metadata.txt",
            "provider.py",
            "engine/__init__.py",
            "engine/errors.py",
        ):
            assert f"{PLUGIN}/{required}" in names
        assert "name=SAR Toolbox" in zipped.read(f"{PLUGIN}/metadata.txt").decode()
        assert f"{PLUGIN}/requirements/runtime.txt" in names
        # The real engine is vendored, every module of it (the source tree only has a symlink).
        engine_dir = REPO_ROOT / "engine"
        engine_modules = {
            f"{PLUGIN}/engine/{path.relative_to(engine_dir).as_posix()}"
            for path in engine_dir.rglob("*.py")
            if "__pycache__" not in path.parts
        }
        assert engine_modules <= set(names)
        plugins = tmp_path / "plugins"
        zipped.extractall(plugins)
    assert not any(path.is_symlink() for path in (plugins / PLUGIN).rglob("*"))

    marker = tmp_path / "dummy_marker.json"
    _write_dummy_plugin(plugins, marker)
    qgis_process = make_qgis_process(plugins)
    qgis_process.enable(DUMMY, PLUGIN)
    marker.unlink(missing_ok=True)  # written again by the run below

    _check_todb(qgis_process, sigma0, tmp_path / "db.tif", read_geotiff)
    loaded = json.loads(marker.read_text())  # the dummy was loaded in the same run, with its own engine
    assert loaded["identity"] == "dummy-engine"
    assert Path(loaded["file"]).parent == plugins / DUMMY

    # The shipped graphical models come with the zip and run from it.
    assert f"{PLUGIN}/graphical_models/compressandassess.model3" in names
    rng = np.random.default_rng(7)
    scene = write_geotiff(tmp_path / "scene.tif", rng.gamma(4.0, 0.0125, (64, 64)).astype(np.float32))
    assessed = qgis_process.run_json("sartoolbox:compressandassess", INPUT=scene, INPUT_KIND=0, RATE=0,
                                     OUTPUT=tmp_path / "scene.sarz", REPORT=tmp_path / "scene.html")
    assert Path(assessed["OUTPUT"]).is_file() and "PSNR" in Path(assessed["REPORT"]).read_text()

def _stderr_lines(completed: Any) -> list[str]:
    return [line for line in completed.stderr.splitlines() if "DeprecationWarning" not in line]


def test_command_line_errors_are_printed_once_and_say_what_to_give(
    tmp_path: Path, qgis_process: Any, sigma0: tuple[Path, np.ndarray]
) -> None:
    """Finding 15.8: enum values listed; band and output checked before the work; each printed once.

    (An error raised while an algorithm runs is printed three times by qgis_process 3.22 itself,
    for any Python algorithm; see sar_toolbox_plugin/algorithms/checks.py.)
    """
    raster = str(sigma0[0])
    out = tmp_path / "out"
    out.mkdir()

    enum = qgis_process("run", "sartoolbox:todb", "--", f"INPUT={raster}", "INPUT_KIND=amplitude",
                        f"OUTPUT={out / 'a.tif'}")
    band = qgis_process("run", "sartoolbox:todb", "--", f"INPUT={raster}", "BAND=3",
                        f"OUTPUT={out / 'b.tif'}")
    # BAND left out (it defaults to 1) and an output in a missing folder: refused before any work.
    unwritable = qgis_process("run", "sartoolbox:compressionquality", "--", f"REFERENCE={raster}",
                              f"INPUT={raster}", f"OUTPUT_HTML={out / 'missing' / 'report.html'}")
    expected = {
        "INPUT_KIND": (enum, "0 = intensity, 1 = amplitude"),
        "BAND": (band, "band 3 does not exist"),
        "OUTPUT_HTML": (unwritable, "folder"),
    }
    for name, (completed, detail) in expected.items():
        assert completed.returncode != 0, completed.stdout
        lines = _stderr_lines(completed)
        naming = [line for line in lines if f"({name})" in line]
        assert len(naming) == 1 and detail in naming[0], lines
        assert "mandatory" not in completed.stderr
    assert not any(out.iterdir())


def test_install_command_names_the_python_qgis_runs_with_a_shim_first_on_path(
    tmp_path: Path, qgis_process: Any
) -> None:
    """Finding 24.11 inside QGIS itself: its embedded Python takes sys.executable from the first python3
    on PATH (here a shim that is not a Python); the install command named the shim."""
    import sys

    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "python3").write_text("#!/bin/sh\necho 'another Python' >&2\nexit 3\n")
    (shims / "python3").chmod(0o755)
    qgis_process.env["PATH"] = f"{shims}:{qgis_process.env['PATH']}"
    done = qgis_process("run", "sartoolbox:checkenvironment")
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("Install or update every package"))
    python = line.split(": ", 1)[1].split(" -m pip", 1)[0]
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert "shims" not in python and Path(python).name == f"python{version}"
    assert Path(python).resolve() == Path(sys.executable).resolve()  # the interpreter QGIS embeds
