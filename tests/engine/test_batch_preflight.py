"""What the batch runner checks on the workers before submitting, and what it ships (issue 30)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import engine
from engine.batch import remote
from engine.batch.preflight import ENGINE_PACKAGE, models_needed, needs_of, stage_engine
from engine.setup import bundled

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_models_each_algorithm_loads_are_named(tmp_path: Path) -> None:
    assert models_needed("compress", [], {"rate": "r1"}) == ["sarcodec-r1-encoder.onnx",
                                                             "sarcodec-r1-decoder.onnx"]
    assert models_needed("translate", [], {"model": None}) == ["sar2opt-colourise-v1.onnx"]
    assert models_needed("translate", [], {"model": "mine.onnx"}) == []
    assert models_needed("coregister", [], {"method": "deep"}) == ["regembed-guided-v3.onnx"]
    assert models_needed("coregister", [], {"method": "combined"}) == ["regembed-guided-v3.onnx"]
    assert models_needed("coregister", [], {"method": "classical"}) == []
    assert models_needed("todb", [], {}) == []
    (tmp_path / "bad.sarz").write_bytes(b"not a sarz")  # fails on its own later, needs nothing now
    assert models_needed("decompress", [tmp_path / "bad.sarz"], {}) == []


def test_compress_needs_every_rate_point_its_choices_may_run() -> None:
    """A quality word, a retired rate and a target run other points than --rate names."""
    def rates(**options: object) -> list[str]:
        names = models_needed("compress", [], {"rate": "r2", **options})
        return sorted({n.split("-")[1] for n in names})

    assert rates() == ["r2"]
    assert rates(quality="smallest") == ["h1"]
    assert models_needed("compress", [], {"rate": "h5"}) == ["sarcodec-h1-encoder.onnx",
                                                              "sarcodec-h1-decoder.onnx"]
    assert rates(target_bpp=1.0) == rates(target_psnr=30.0) == ["h1", "h4", "r1", "r2", "r3"]


def test_decompress_needs_the_decoder_of_every_band(make_geotiff: Callable[..., Path],
                                                    tmp_path: Path) -> None:
    from engine.codec.encode import compress_raster

    source = make_geotiff(height=64, width=64, bands=2, descriptions=("VV", "VH"))
    sarz = compress_raster(source, tmp_path / "dual.sarz", rate="r1", post_filter=False).path
    assert models_needed("decompress", [sarz], {}) == ["sarcodec-r1-decoder.onnx"]


def test_an_unknown_rate_is_refused_before_anything_is_submitted() -> None:
    with pytest.raises(engine.InputError, match="Rate point 'r9' is not installed"):
        needs_of("compress", [], Path("."), {"rate": "r9"})


def test_the_probe_says_what_a_worker_lacks(tmp_path: Path) -> None:
    report = remote.probe("no_such_engine", ["numpy", "no_such_package"], [], [str(tmp_path / "gone.tif")],
                          str(tmp_path / "no_such_folder"))
    problems = " | ".join(report["problems"])
    assert report["missing_modules"] == ["no_such_package"]
    assert "cannot import the engine ('no_such_engine')" in problems
    assert "gone.tif" in problems and "no_such_folder" in problems
    needs = needs_of("compress", [REPO_ROOT / "metadata.txt"], tmp_path, {"rate": "r1"})
    ready = remote.probe(*needs.probe_args())
    assert ready["problems"] == [] and ready["version"] == engine.__version__
    missing = remote.probe(ENGINE_PACKAGE, [], ["sarcodec-r0-encoder.onnx"], [], None)
    assert missing["missing_models"] == ["sarcodec-r0-encoder.onnx"]


def test_the_shipped_folder_imports_on_its_own_and_finds_its_models(tmp_path: Path) -> None:
    stage = stage_engine(["sarcodec-r1-encoder.onnx", "sarcodec-r1-decoder.onnx"], tmp_path / "ship")
    assert not list(stage.rglob("__pycache__"))  # sources only
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import engine, engine.batch.jobs; "
            "from engine.codec.models import shipped_rates; "
            "print(json.dumps([engine.__file__, str(engine.setup.bundled.models_dir()), engine.__version__, "
            "shipped_rates(), len(engine.setup.bundled.runtime_requirements())]))")
    env = {"PATH": "/usr/bin:/bin"}  # no PYTHONPATH, no SAR_TOOLBOX_MODELS_DIR
    done = subprocess.run([sys.executable, "-c", code, str(stage)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    where, models, version, rates, requirements = json.loads(done.stdout)
    assert Path(where).is_relative_to(stage) and Path(models) == stage / "models"
    assert version == bundled.version() and rates == ["r1"]
    assert requirements == len(bundled.runtime_requirements())
