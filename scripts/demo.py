"""`make demo`: the toolbox's main jobs on the embedded example, through QGIS Processing.

The embedded example is a seeded synthetic Sentinel-1-like scene pair (SAR sigma0 and
optical RGB+NIR, 10 m, EPSG:32631) whose SAR carries a known sub-pixel
misregistration. The demo runs the real ``sartoolbox:*`` algorithms in a headless
QGIS (the same code the Processing Toolbox, the modeler and ``qgis_process`` use):

1. ``syntheticscene`` writes the pair;
2. ``todb`` converts the SAR to dB;
3. ``compress`` / ``decompress`` / ``compressionquality`` at every shipped rate point;
4. ``coregister`` recovers the misregistration (global and local) and writes the
   corrected raster, tie points, Georeferencer ``.points``, JSON report and checkerboard.

Usage: ``python -m scripts.demo --output demo_output``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

LOG = logging.getLogger("sar_toolbox.demo")
REPO = Path(__file__).resolve().parents[1]

SIZE = 768
SEED = 2026
LOOKS = 4
TRUE_SHIFT = (3.4, -2.7)  # SAR content moved right / up (synthetic convention)


@contextmanager
def headless_processing() -> Iterator[Any]:
    """A QgsApplication without GUI, with Processing and the SAR Toolbox provider loaded."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, "/usr/share/qgis/python/plugins")
    sys.path.insert(0, str(REPO))
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    try:
        from processing.core.Processing import Processing

        Processing.initialize()
        from sar_toolbox_plugin.provider import SarToolboxProvider

        provider = SarToolboxProvider()
        QgsApplication.processingRegistry().addProvider(provider)
        import processing

        yield processing
        QgsApplication.processingRegistry().removeProvider(provider)
    finally:
        app.exitQgis()


def run(processing: Any, name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    from qgis.core import QgsProcessingFeedback

    LOG.info("-> sartoolbox:%s", name)
    feedback = QgsProcessingFeedback()
    result: dict[str, Any] = processing.run(f"sartoolbox:{name}", parameters, feedback=feedback)
    return result


def rate_points() -> list[tuple[int, str]]:
    """(RATE index, name) of the installed rate points that are not retired, in the RATE option order."""
    from engine.codec.models import shipped_rates
    from engine.codec.rate_choice import RATE_OPTIONS

    installed = set(shipped_rates())
    return [(index, rate) for index, rate in enumerate(RATE_OPTIONS) if rate in installed]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("demo_output"), help="folder for the outputs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out: Path = args.output.resolve()
    out.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []

    with headless_processing() as processing:
        sar, optical = out / "scene_sar_sigma0.tif", out / "scene_optical.tif"
        run(processing, "syntheticscene", {
            "WIDTH": SIZE, "HEIGHT": SIZE, "PIXEL_SIZE": 10.0, "CRS": "EPSG:32631", "SEED": SEED,
            "LOOKS": LOOKS, "SHIFT_X": TRUE_SHIFT[0], "SHIFT_Y": TRUE_SHIFT[1],
            "OUTPUT_SAR": str(sar), "OUTPUT_OPTICAL": str(optical),
        })
        lines += [f"synthetic SAR (sigma0, {SIZE}x{SIZE}, {LOOKS} looks)   {sar}",
                  f"synthetic optical (R, G, B, NIR)               {optical}"]

        sar_db = out / "scene_sar_db.tif"
        run(processing, "todb", {"INPUT": str(sar), "BAND": 1, "INPUT_KIND": 0, "INVERSE": False,
                                 "OUTPUT": str(sar_db)})
        lines.append(f"SAR in dB                                       {sar_db}")

        rates = rate_points()
        if not rates:
            lines.append("compression: no codec models are bundled in models/ (skipped)")
        for index, rate in rates:
            packed = out / f"scene_sar_{rate}.sarz"
            res = run(processing, "compress", {"INPUT": str(sar), "BAND": 1, "INPUT_KIND": 0, "RATE": index,
                                               "OUTPUT": str(packed)})
            restored = out / f"scene_sar_{rate}_decoded_db.tif"
            run(processing, "decompress", {"INPUT": str(packed), "OUTPUT_KIND": 0, "OUTPUT": str(restored)})
            report = out / f"quality_{rate}.html"
            q = run(processing, "compressionquality", {"REFERENCE": str(sar), "BAND": 1, "REFERENCE_KIND": 0,
                                                       "INPUT": str(packed), "OUTPUT_HTML": str(report)})
            lines.append(
                f"compression {rate}: {res['BPP']:.3f} bpp ({res['BYTES']} bytes), PSNR {q['PSNR']:.2f} dB, "
                f"SSIM {q['SSIM']:.3f}, ENL ratio {q['ENL_RATIO']:.2f}, EPI {q['EPI']:.3f}\n"
                f"    file {packed}\n    decoded {restored}\n    report {report}"
            )

        for mode, transform in (("global", 0), ("local", 1)):
            stem = out / f"coreg_{mode}"
            res = run(processing, "coregister", {
                "INPUT": str(sar), "REFERENCE": str(optical), "METHOD": 1,
                "MODE": 0 if mode == "global" else 1, "GRID_SPACING": 128, "WINDOW": 128, "MAX_SHIFT": 32,
                "TRANSFORM": transform, "RESAMPLE": mode == "local",
                "OUTPUT": f"{stem}_corrected.tif", "TIEPOINTS": f"{stem}_tiepoints.gpkg",
                "GCP_FILE": f"{stem}.points", "REPORT": f"{stem}_report.json",
                "CHECKERBOARD": f"{stem}_checkerboard.tif",
            })
            # the synthetic shift moves SAR content; the correction moves it back
            true_x, true_y = -TRUE_SHIFT[0], -TRUE_SHIFT[1]
            error = ((res["SHIFT_X"] - true_x) ** 2 + (res["SHIFT_Y"] - true_y) ** 2) ** 0.5
            outputs = ("OUTPUT", "TIEPOINTS", "GCP_FILE", "REPORT", "CHECKERBOARD")
            rmse = "n/a" if res["RMSE"] is None else f"{res['RMSE']:.2f} px"  # n/a: no redundant tie point
            lines.append(
                f"co-registration ({mode}, classical): recovered shift ({res['SHIFT_X']:+.2f}, "
                f"{res['SHIFT_Y']:+.2f}) px; true correction ({true_x:+.2f}, {true_y:+.2f}) px; "
                f"error {error:.2f} px; {res['N_POINTS']} tie points, RMSE {rmse}\n"
                + "".join(f"    {key.lower()} {res[key]}\n" for key in outputs if res.get(key))
            )

    LOG.info("\nSAR Toolbox demo finished. Outputs in %s:\n%s", out, "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
