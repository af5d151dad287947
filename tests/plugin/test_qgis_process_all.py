"""Every algorithm and every shipped graphical model, end to end under ``/usr/bin/qgis_process.bin``.

One fresh profile, the source plugin enabled once, then one ``qgis_process.bin run`` per algorithm
on tiny inputs made by the toolbox itself (a synthetic SAR/optical pair). A broken ``.model3``
placed in the models folder is logged and skipped without breaking the provider.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PLUGIN = "sar_toolbox_plugin"

pytestmark = [pytest.mark.qgis_process, pytest.mark.slow]

SHIPPED_MODELS = ("coregisterandcompress", "compressandassess")



def _listed(qgis_process: Any) -> set[str]:
    listing = qgis_process("list")
    assert listing.returncode == 0, listing.stdout + listing.stderr
    return {word for word in listing.stdout.split() if word.startswith("sartoolbox:")}


def test_every_algorithm_and_shipped_model_runs(tmp_path: Path, qgis_process: Any) -> None:
    listed = _listed(qgis_process)
    for name in SHIPPED_MODELS:
        assert f"sartoolbox:{name}" in listed, sorted(listed)

    ran: set[str] = set()

    def run(algorithm: str, **parameters: Any) -> dict[str, Any]:
        ran.add(algorithm)
        return dict(qgis_process.run_json(algorithm, **parameters))

    env = run("sartoolbox:checkenvironment", OUTPUT=tmp_path / "env.html")
    assert env["ONNX_PROVIDER"] and Path(env["OUTPUT"]).is_file()

    sar, optical = tmp_path / "sar.tif", tmp_path / "optical.tif"
    scene = run("sartoolbox:syntheticscene", WIDTH=192, HEIGHT=160, SEED=3, SHIFT_X=2.5, SHIFT_Y=-1.5,
                CRS="EPSG:32631", OUTPUT_SAR=sar, OUTPUT_OPTICAL=optical)
    assert Path(scene["OUTPUT_SAR"]) == sar and optical.is_file()

    db = run("sartoolbox:todb", INPUT=sar, INPUT_KIND=0, OUTPUT=tmp_path / "db.tif")
    assert Path(db["OUTPUT"]).is_file()

    sarz = tmp_path / "scene.sarz"
    packed = run("sartoolbox:compress", INPUT=sar, BAND=1, INPUT_KIND=0, RATE=0, OUTPUT=sarz)
    assert sarz.is_file() and float(packed["BPP"]) > 0
    decoded = run("sartoolbox:decompress", INPUT=sarz, OUTPUT_KIND=0, OUTPUT=tmp_path / "decoded.tif")
    assert Path(decoded["OUTPUT"]).is_file()
    quality = run("sartoolbox:compressionquality", REFERENCE=sar, BAND=1, REFERENCE_KIND=0, INPUT=sarz)
    assert 10 < float(quality["PSNR"]) < 60

    report = tmp_path / "coreg.json"
    coreg = run("sartoolbox:coregister", INPUT=sar, REFERENCE=optical, OUTPUT=tmp_path / "coreg.tif",
                REPORT=report)
    # The synthetic SAR content sits (+2.5, -1.5) px from the optical: it must move by minus that.
    assert abs(float(coreg["SHIFT_X"]) + 2.5) < 1.0 and abs(float(coreg["SHIFT_Y"]) - 1.5) < 1.0
    applied = run("sartoolbox:applytransform", SOURCE=report, INPUT=sar, OUTPUT=tmp_path / "applied.tif")
    assert Path(applied["OUTPUT"]).is_file()

    second = run("sartoolbox:syntheticscene", WIDTH=192, HEIGHT=160, SEED=3, LOOKS=2, CRS="EPSG:32631",
                 OUTPUT_SAR=tmp_path / "sar2.tif", OUTPUT_OPTICAL=tmp_path / "optical2.tif")
    keypoints = run("sartoolbox:keypointregister", INPUT=sar, REFERENCE=second["OUTPUT_SAR"], TRANSFORM=0,
                    OUTPUT=tmp_path / "kp.tif", REPORT=tmp_path / "kp.json", MATCHES_PNG=tmp_path / "kp.png")
    assert int(keypoints["N_INLIERS"]) >= 8
    assert (tmp_path / "kp.json").is_file() and (tmp_path / "kp.png").is_file()

    rgb = run("sartoolbox:translate", INPUT=sar, INPUT_KIND=0, OUTPUT=tmp_path / "rgb.tif")  # shipped model
    assert Path(rgb["OUTPUT"]).is_file() and float(rgb["VALID_PIXELS"]) > 0

    chained = run("sartoolbox:coregisterandcompress", INPUT=sar, REFERENCE=optical, RATE=0,
                  OUTPUT=tmp_path / "chained.sarz")
    assert Path(chained["OUTPUT"]) == tmp_path / "chained.sarz" and (tmp_path / "chained.sarz").is_file()
    assessed = run("sartoolbox:compressandassess", INPUT=sar, INPUT_KIND=0, RATE=0,
                   OUTPUT=tmp_path / "assessed.sarz", REPORT=tmp_path / "assessed.html")
    assert (tmp_path / "assessed.sarz").is_file() and (tmp_path / "assessed.html").is_file()
    assert set(assessed) == {"OUTPUT", "REPORT"} and "PSNR" in (tmp_path / "assessed.html").read_text()

    assert ran >= listed, f"algorithms listed but not run by this test: {sorted(listed - ran)}"


def test_a_broken_model3_in_the_models_folder_is_skipped(tmp_path: Path, qgis_process: Any) -> None:
    models = tmp_path / "models"
    models.mkdir()
    for f in (REPO_ROOT / "models").iterdir():
        (models / f.name).symlink_to(f)
    (models / "broken.model3").write_text("<!DOCTYPE model>\n<Option type=\"Map\"><Option")
    qgis_process.env["SAR_TOOLBOX_MODELS_DIR"] = str(models)
    listed = _listed(qgis_process)
    assert {"sartoolbox:todb", *(f"sartoolbox:{m}" for m in SHIPPED_MODELS)} <= listed
    help_text = qgis_process("help", "sartoolbox:coregisterandcompress")
    assert help_text.returncode == 0 and "Co-registers the SAR raster" in help_text.stdout


def test_the_shipped_model_files_are_what_the_build_script_writes() -> None:
    shipped = REPO_ROOT / PLUGIN / "graphical_models"
    assert sorted(p.stem for p in shipped.glob("*.model3")) == sorted(SHIPPED_MODELS)
    for path in shipped.glob("*.model3"):
        text = path.read_text()
        assert "sartoolbox:" in text and json.dumps(path.stem)[1:-1] in text
