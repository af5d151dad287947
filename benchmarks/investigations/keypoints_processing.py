"""``keypointregister`` through QGIS Processing on fresh independent-speckle SAR-SAR cases in dB.

Issue 27 measured the SAR-SAR keypoints as a user runs them: the algorithm with its default settings
(TRANSFORM homography, kinds auto), INPUT and REFERENCE GeoTIFFs in dB, 512 px GF-3 crops whose two sides
carry their own speckle, the INPUT warped by a random homography (0 of 6 registered then). This repeats
that measurement on cases no benchmark or calibration uses: the cases of
:func:`benchmarks.keypoints.cases_gf3` with another seed (:data:`SEED`: other speckle and homographies;
the crops are of the same 1385 px GF-3 image, so their scenes overlap the benchmark's 512 px crops, by
32-92 % of the area for the first 10, and the calibration's windows), written to GeoTIFF in dB
(nodata outside the valid area) and registered by ``sartoolbox:keypointregister`` in a headless QGIS
(the Processing code the Toolbox, the modeler and ``qgis_process`` run). The report's
``pixel_transform`` is compared with the truth (mean corner error; correct < 3 px).

With ``--product`` each side is written as a Sentinel-1-GRD-shaped product instead (:func:`write_product`:
uint16 amplitude numbers, two bands, GCPs only, 0 outside the valid area, no nodata value), as a user's
products come.

``python -m benchmarks.investigations.keypoints_processing --data ../shared/data/real --count 10 [--product]``
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.keypoints import CORRECT_PX, Case, cases_gf3, outcome_counts

logger = logging.getLogger(__name__)

SEED = 91_000
"""Seed of these cases' crops, speckle and homographies (the benchmark's GF-3 cases use 3000)."""
NODATA = -9999.0


def write_db(path: Path, amplitude: np.ndarray, valid: np.ndarray) -> None:
    """``amplitude`` as a float32 dB GeoTIFF on a 10 m UTM grid, ``NODATA`` outside ``valid``."""
    import rasterio
    from rasterio.transform import from_origin

    from benchmarks.common import float32_tiled_profile
    from engine.preprocess import linear_to_db

    db = np.where(valid, linear_to_db(amplitude, "amplitude"), NODATA).astype(np.float32)
    profile = float32_tiled_profile(db.shape[1], "EPSG:32650", from_origin(500_000, 4_000_000, 10, 10),
                                    height=db.shape[0], nodata=NODATA)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(db, 1)


def write_product(path: Path, amplitude: np.ndarray, valid: np.ndarray, seed: int) -> None:
    """``amplitude`` as a Sentinel-1-GRD-shaped product: uint16 amplitude numbers, a second band (VH-like:
    the same scene 9 dB lower under its own speckle, band 1 being the one registered), georeferenced by
    GCPs only (:func:`benchmarks.common.grd_gcps`, EPSG:4326), no nodata value: 0 outside ``valid``."""
    import rasterio
    from rasterio.crs import CRS

    from benchmarks.common import grd_gcps

    rng = np.random.default_rng(seed)
    cross = amplitude * np.sqrt(0.125 * rng.gamma(1.0, 1.0, amplitude.shape))
    dn = np.clip(np.round(np.stack([amplitude, cross])), 1, 65535).astype(np.uint16)
    dn[:, ~valid] = 0
    with rasterio.open(path, "w", driver="GTiff", width=dn.shape[2], height=dn.shape[1], count=2,
                       dtype="uint16") as dst:
        dst.gcps = (grd_gcps(*amplitude.shape), CRS.from_epsg(4326))
        dst.write(dn)
        dst.descriptions = ("VV", "VH")


def register_case(processing: Any, case: Case, folder: Path, product: bool = False) -> dict[str, Any]:
    """Run ``keypointregister`` on one case, written as dB GeoTIFFs or (``product``) as GRD-shaped products
    (:func:`write_product`); its corner error, or the refusal."""
    from scripts.demo import run

    inp, ref, report = folder / "input.tif", folder / "reference.tif", folder / "report.json"
    if product:
        write_product(inp, case.inp, case.inp_valid, SEED + 1)
        write_product(ref, case.ref, case.ref_valid, SEED + 2)
    else:
        write_db(inp, case.inp, case.inp_valid)
        write_db(ref, case.ref, case.ref_valid)
    started = time.perf_counter()
    try:
        run(processing, "keypointregister", {"INPUT": str(inp), "REFERENCE": str(ref),
                                             "OUTPUT": str(folder / "registered.tif"), "REPORT": str(report)})
    except Exception as exc:  # QgsProcessingException: the refusal the user sees
        seconds = time.perf_counter() - started
        return {"case": case.name, "refused": str(exc).splitlines()[0], "seconds": seconds}
    found = json.loads(report.read_text())
    error = case.corner_error(np.array(found["pixel_transform"]))
    return {"case": case.name, "error": error, "model_id": found.get("model_id"),
            "seconds": time.perf_counter() - started}


def summary(rows: list[dict[str, Any]]) -> str:
    """answered / correct / wrong and the corner errors of the correct answers."""
    errors = np.array([r.get("error", np.inf) for r in rows])
    counts = outcome_counts(errors)
    good = errors[errors < CORRECT_PX]
    spread = f", corner error mean {good.mean():.2f} px, median {np.median(good):.2f}, max {good.max():.2f}" \
        if good.size else ""
    answered, seconds = counts["correct"] + counts["wrong"], np.median([r["seconds"] for r in rows])
    return (f"{len(rows)} cases: answered {answered}, correct {counts['correct']}, wrong {counts['wrong']}"
            f"{spread}; median {seconds:.1f} s per pair")


def main(argv: list[str] | None = None) -> int:
    from scripts.demo import headless_processing

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/real"))
    parser.add_argument("--count", type=int, default=10, help="crops per speckle setting")
    parser.add_argument("--looks", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--product", action="store_true",
                        help="each side as a GRD-shaped product (uint16, 2 bands, GCPs only, 0 borders)")
    parser.add_argument("--json", type=Path, help="write the per-case rows here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results: dict[int, list[dict[str, Any]]] = {}
    with headless_processing() as processing, tempfile.TemporaryDirectory() as scratch:
        for looks in args.looks:
            results[looks] = []
            for case in cases_gf3(args.data, args.count, looks=(looks,), seed=SEED):
                row = register_case(processing, case, Path(scratch), args.product)
                logger.info("%d-look %s", looks, json.dumps(row, default=float))
                results[looks].append(row)
    for looks, rows in results.items():
        logger.info("%d-look: %s", looks, summary(rows))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
