"""Calibration of the refusal threshold of global co-registration (peak distinctness).

For every real pair with a known alignment (the 15 3MOS pairs and the OSdataset
pair), per seed: one seeded shift inside a ±40 px search, one beyond it (45-90
px), and one inside the default search. Each is registered in global mode with
the refusal threshold switched off, and the distinctness of the answer is kept
with whether the answer is right (error < 3 px). The table says, for each
candidate threshold, how many wrong answers it would let through and how many
right ones it would refuse. Matches at the search edge are refused in any case.

``python -m benchmarks.registration.refusal --seeds 1 2 3``
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.registration.shifted import _gray, _write_tif, fourier_shift

logger = logging.getLogger(__name__)

THRESHOLDS = (1.0, 1.5, 2.0, 2.5, 3.0)
BORDER = 33
"""Pixels cropped from each side of the shifted SAR (the reference keeps them)."""


def trials(data: Path, seed: int, method: str, work: Path) -> list[tuple[bool | None, float, str]]:
    """(right answer? None = refused at the search edge, distinctness, description) per trial."""
    from engine.errors import RegistrationError
    from engine.registration.shift.api import coregister
    from engine.registration.shift.fitting import FitLimits

    rng = np.random.default_rng(seed)
    folder = data / "opt_sar_3mos"
    pairs = [(p.name[:-8], folder / f"{p.name[:-8]}_sar.png", p) for p in sorted(folder.glob("*_opt.png"))]
    osd = data / "osdataset_hscp"
    pairs.append(("osdataset", osd / "SAR.png", osd / "VIS_unwarped_derived.png"))
    out: list[tuple[bool | None, float, str]] = []
    m = BORDER
    for name, sar_path, opt_path in pairs:
        sar, opt = _gray(sar_path), _gray(opt_path)
        for lo, hi, radius in ((0, 32, 40), (45, 90, 40), (0, 32, None)):
            mag, ang = rng.uniform(lo, hi), rng.uniform(0, 2 * np.pi)
            sx, sy = mag * np.cos(ang), mag * np.sin(ang)
            inp, ref = work / "inp.tif", work / "ref.tif"
            _write_tif(inp, fourier_shift(sar, sx, sy)[m:-m, m:-m], m, m)
            _write_tif(ref, opt)
            what = f"{name} |shift| {mag:.1f} px, search {radius or 'default'}"
            try:
                r = coregister(
                    inp, ref, method=method, max_shift=radius, limits=FitLimits(min_distinctness=0.0)
                )
            except RegistrationError:
                out.append((None, float("nan"), what))
                continue
            err = float(np.hypot(r.shift_x + sx, r.shift_y + sy))
            out.append((err < 3.0, r.tiepoints[0].distinctness, f"{what}: error {err:.2f} px"))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.registration.refusal",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/real"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--method", default="classical")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("engine").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="bench_refusal_") as tmp:
        rows = [t for seed in args.seeds for t in trials(args.data, seed, args.method, Path(tmp))]
    right = [d for ok, d, _ in rows if ok]
    wrong = [d for ok, d, _ in rows if ok is False]
    edge = sum(ok is None for ok, _, _ in rows)
    print(f"{args.method}, seeds {args.seeds}: {len(rows)} trials, {edge} refused at the search edge, "
          f"{len(right)} right, {len(wrong)} wrong (error >= 3 px)")  # fmt: skip
    print("| threshold | wrong answers let through | right answers refused |\n|---|---|---|")
    for th in THRESHOLDS:
        let_through, refused = sum(d >= th for d in wrong), sum(d < th for d in right)
        print(f"| {th:g} | {let_through} of {len(wrong)} | {refused} of {len(right)} |")
    for ok, d, what in rows:
        logger.info("%s distinctness %.2f  %s", {True: "right", False: "WRONG", None: "edge "}[ok], d, what)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
